"""A synthetic long-range task: the label needs information from both ends of the sequence.

Layout of one record (`length_bp` long, background from a Markov chain fitted to a genome,
e.g. E. coli, or independent bases with a given GC):

    |margin| start cluster |  middle slot 1  |  middle slot 2  | end cluster |margin|
    |<------ edge_bp ----->|                                   |<-- edge_bp ->|

A *cluster* is `copies` exact copies of one motif (A or B, forward strand, 16 bp by default)
at random, non-overlapping places inside a stretch of `edge_bp - margin_bp` bases (starts at
multiples of `frame_bp`: 6 puts every copy in frame with non-overlapping 6-mer tokens, so
each copy reads as the same two tokens and detecting a motif is trivial). The start
cluster lies within `edge_bp` of the start, the end cluster within `edge_bp` of the end.
Each middle slot holds one distractor cluster of the same shape: slot 1 the motif the start
cluster lacks, slot 2 the motif the end cluster lacks. So every record, whatever its label,
holds exactly two A clusters and two B clusters (`2 * copies` copies of each motif, and no
other copy on either strand: stray occurrences in the background are mutated away).

Rules (the start-cluster motif, the end-cluster motif -> label):
- "xor" (default): 1 when the two end motifs differ (A..B or B..A), 0 when they are the same
  (A..A or B..B: both motifs are still present, in the middle). Labels are balanced and the
  start motif is drawn independently of the label (A with probability `start_a_fraction`),
  so the start alone never says anything. With `start_a_fraction=0.5` (pure XOR) the end
  alone says nothing either: no single feature correlates with the label, and gradient
  descent sits on a long plateau (no model here left it within a CPU budget). With 0.2, the
  end alone predicts the label 80 % of the time (end A -> start mostly B -> label mostly 1):
  a model that carries the far end to [CLS] learns first, and only relating both ends reaches
  100 %. The start alone, the motif counts and the composition still say nothing.
- "and" (issue 6's literal wording): 1 for A near the start AND B near the end, 0 for the
  other three combinations. Here each end alone already reaches 75 % accuracy.

Why the controls fail (by construction, not by luck):
- Motif counts, clusters and composition are the same in every record, so any bag-of-motifs
  model (a CNN with global max or mean pooling, k-mer counts) sees no difference between
  the classes: it can detect each cluster but not which end it sits at.
- `margin_bp` keeps every planted motif away from the sequence ends, so a CNN cannot learn
  "motif next to the left (zero-padded) boundary" within its receptive field.
- A transformer that reads the label from a [CLS] token at position 0 with window-only
  attention sees `num_layers * block` tokens around the start: the start cluster (and maybe
  middle slot 1, which mirrors it) but never the end cluster or slot 2. Global blocks (which
  hold [CLS]) and random blocks reach the far end in one layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bigbird_genomics.builders.markov import MarkovChain
from bigbird_genomics.builders.motifs import mutate, reverse_complement_text, to_array
from bigbird_genomics.io.writers import format_header, write_fasta

# Random 16-mers: 40-60 % GC, not their own reverse complement, no self-overlap of 4+ bases,
# and no 6-mer shared between A, B and their reverse complements (so a non-overlapping 6-mer
# token never belongs to both motifs).
MOTIF_A = "AACAGTGCGGTATAGC"
MOTIF_B = "GTCCGATGATTTCACC"
ROLES = ("start", "end", "middle")
GAP_BP = 4  # at least this many background bases between copies of a cluster


@dataclass
class LongRangeRecord:
    """One record; `sites` lists every planted copy as (start, motif, role), role in ROLES."""

    record_id: str
    sequence: np.ndarray
    label: int
    split: str
    start_motif: str  # "A" or "B"
    end_motif: str
    sites: list[tuple[int, str, str]]


@dataclass(frozen=True)
class LongRangeSettings:
    num_records: int = 2000
    length_bp: int = 8192
    edge_bp: int = 500
    margin_bp: int = 100
    copies: int = 3
    frame_bp: int = 1  # motif starts are multiples of this (6: in frame with 6-mer tokens)
    positive_fraction: float = 0.5
    motif_a: str = MOTIF_A
    motif_b: str = MOTIF_B
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    rule: str = "xor"
    start_a_fraction: float = 0.5  # xor: how often the start cluster is A (see the docstring)
    seed: int = 0

    @property
    def cluster_bp(self) -> int:
        """Width of the stretch one cluster's copies are scattered over."""
        return self.edge_bp - self.margin_bp

    def validate(self) -> None:
        if self.rule not in ("xor", "and"):
            raise ValueError(f"rule must be 'xor' or 'and', got {self.rule!r}")
        if not 0.0 < self.start_a_fraction < 1.0:
            raise ValueError(
                f"start_a_fraction must lie strictly between 0 and 1, got {self.start_a_fraction}"
            )
        if self.num_records < 1:
            raise ValueError(f"num_records must be >= 1, got {self.num_records}")
        if self.copies < 1:
            raise ValueError(f"copies must be >= 1, got {self.copies}")
        if self.margin_bp < 0:
            raise ValueError(f"margin_bp must be >= 0, got {self.margin_bp}")
        if self.frame_bp < 1:
            raise ValueError(f"frame_bp must be >= 1, got {self.frame_bp}")
        if len(self.motif_a) != len(self.motif_b):
            raise ValueError("motif A and motif B must have the same length")
        step = -(-(len(self.motif_a) + GAP_BP) // self.frame_bp) * self.frame_bp
        needed = self.copies * step + self.frame_bp
        if self.cluster_bp < needed:
            raise ValueError(
                f"edge_bp - margin_bp = {self.cluster_bp} bp cannot hold {self.copies} copies "
                f"of a {len(self.motif_a)} bp motif ({needed} bp with gaps); raise edge_bp"
            )
        if self.length_bp - 2 * self.edge_bp < 2 * self.cluster_bp:
            raise ValueError(
                f"length_bp={self.length_bp} leaves no middle for two distractor clusters "
                f"after two edges of {self.edge_bp} bp; use a longer sequence or a smaller edge"
            )
        if self.motif_a == self.motif_b or self.motif_a == reverse_complement_text(self.motif_b):
            raise ValueError("motif A and motif B must differ (on both strands)")
        for motif in (self.motif_a, self.motif_b):
            if motif == reverse_complement_text(motif):
                raise ValueError(f"motif {motif} is its own reverse complement; pick another")


def background_chain(
    fasta: str | Path | None = None, order: int = 3, gc: float = 0.5
) -> MarkovChain:
    """A chain fitted to every record of `fasta`, or an independent-base chain with GC `gc`."""
    if fasta is None:
        return MarkovChain.uniform(order=order, gc=gc)
    from bigbird_genomics.io.fasta import read_fasta

    return MarkovChain.fit((record.sequence for record in read_fasta(fasta)), order=order)


def _purge(
    rng: np.random.Generator,
    row: np.ndarray,
    motifs: list[str],
    keep: list[tuple[int, str, str]],
) -> None:
    """Break, in place, every occurrence of a motif (either strand) except the planted `keep`
    copies, by mutating one of its bases that lies outside the planted copies (copies are
    `GAP_BP` apart, so a stray occurrence always has such a base)."""
    patterns = motifs + [reverse_complement_text(m) for m in motifs]
    planted = {(start, motif) for start, motif, _ in keep}
    protected = np.zeros(len(row), dtype=bool)
    for start, motif, _ in keep:
        protected[start : start + len(motif)] = True
    while True:
        text = row.tobytes().decode("ascii")
        stray = [
            (start, len(p))
            for p in patterns
            for start in _occurrences(text, p)
            if (start, p) not in planted
        ]
        if not stray:
            return
        for start, length in stray:
            free = np.flatnonzero(~protected[start : start + length]) + start
            position = int(free[len(free) // 2])
            row[position : position + 1] = mutate(rng, row[position : position + 1], 1.0)


def _occurrences(text: str, pattern: str) -> list[int]:
    found, start = [], text.find(pattern)
    while start >= 0:
        found.append(start)
        start = text.find(pattern, start + 1)
    return found


def _end_motifs(
    rule: str, label: int, rng: np.random.Generator, start_a_fraction: float
) -> tuple[int, int]:
    """(start, end) motif indices (0 = A, 1 = B) for a record of `label` under `rule`."""
    if rule == "xor":
        first = int(rng.random() >= start_a_fraction)
        return first, first ^ label
    if label:
        return 0, 1
    return [(0, 0), (1, 0), (1, 1)][int(rng.integers(3))]


def _cluster(
    rng: np.random.Generator, lo: int, width: int, motif_bp: int, copies: int, frame: int
) -> list[int]:
    """Sorted starts (multiples of `frame`) of `copies` motifs inside [lo, lo + width), at
    least GAP_BP apart. Counted in units of `frame` bases."""
    first, last = -(-lo // frame), (lo + width - motif_bp) // frame  # allowed starts
    step = -(-(motif_bp + GAP_BP) // frame)
    slack = last - first - (copies - 1) * step  # free units once the copies are packed
    offsets = np.sort(rng.integers(0, slack + 1, size=copies))
    return [(first + int(offset) + index * step) * frame for index, offset in enumerate(offsets)]


def generate_longrange(
    chain: MarkovChain, settings: LongRangeSettings = LongRangeSettings()
) -> list[LongRangeRecord]:
    """Records in id order; seeded, deterministic for a given chain and settings."""
    settings.validate()
    rng = np.random.default_rng(settings.seed)
    count, length, edge = settings.num_records, settings.length_bp, settings.edge_bp
    margin, width, copies = settings.margin_bp, settings.cluster_bp, settings.copies
    motifs = [settings.motif_a, settings.motif_b]
    motif_bp = len(settings.motif_a)
    sequences = chain.sample(rng, count, length)
    labels = rng.permutation(
        (np.arange(count) < round(settings.positive_fraction * count)).astype(int)
    )
    split_names = np.array(["train", "val", "test"])
    splits = split_names[rng.choice(3, size=count, p=list(settings.fractions))]
    slot = (length - 2 * edge) // 2  # two middle slots that cannot overlap
    records = []
    for index in range(count):
        first, last = _end_motifs(settings.rule, int(labels[index]), rng, settings.start_a_fraction)
        clusters = [
            (margin, first, "start"),
            (length - edge, last, "end"),
            # the middle holds whatever makes the totals two A and two B clusters
            (edge + int(rng.integers(0, slot - width + 1)), 1 - first, "middle"),
            (edge + slot + int(rng.integers(0, slot - width + 1)), 1 - last, "middle"),
        ]
        sites = [
            (start, motifs[which], role)
            for lo, which, role in clusters
            for start in _cluster(rng, lo, width, motif_bp, copies, settings.frame_bp)
        ]
        for start, motif, _ in sites:
            sequences[index, start : start + len(motif)] = to_array(motif)
        _purge(rng, sequences[index], motifs, sites)
        records.append(
            LongRangeRecord(
                f"lr_{index + 1:05d}",
                sequences[index],
                int(labels[index]),
                str(splits[index]),
                "AB"[first],
                "AB"[last],
                sites,
            )
        )
    return records


def write_longrange(
    out_fasta: str | Path,
    chain: MarkovChain,
    settings: LongRangeSettings = LongRangeSettings(),
) -> dict[str, int]:
    """Write the labelled FASTA (`label=`, `split=`, `ends=` the end motifs); split counts."""
    records = generate_longrange(chain, settings)
    write_fasta(
        out_fasta,
        (
            (
                format_header(
                    r.record_id,
                    {"label": r.label, "split": r.split, "ends": r.start_motif + r.end_motif},
                ),
                r.sequence,
            )
            for r in records
        ),
    )
    return {name: sum(r.split == name for r in records) for name in ("train", "val", "test")}
