"""A synthetic long-range task: the label needs information from both ends of the sequence.

Layout of one record (`length_bp` long, background from a Markov chain fitted to a genome,
e.g. E. coli, or independent bases with a given GC):

    |margin| start cluster |  middle slot 1  |  middle slot 2  | end cluster |margin|
    |<------ edge_bp ----->|                                   |<-- edge_bp ->|

A *cluster* is `copies` exact copies of one motif (A or B, forward strand, 16 bp by default)
at random, non-overlapping places inside a stretch of `edge_bp - margin_bp` bases. The start
cluster lies within `edge_bp` of the start, the end cluster within `edge_bp` of the end.
Each middle slot holds one distractor cluster of the same shape: slot 1 the motif the start
cluster lacks, slot 2 the motif the end cluster lacks. So every record, whatever its label,
holds exactly two A clusters and two B clusters (`2 * copies` copies of each motif, and no
other copy on either strand: stray occurrences in the background are mutated away).

Rules (the start-cluster motif, the end-cluster motif -> label):
- "xor" (default): 1 when the two end motifs differ (A..B or B..A), 0 when they are the same
  (A..A or B..B: both motifs are still present, in the middle). Neither end alone says
  anything; a model must relate the two ends, thousands of bases apart.
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

from bigbird_genomics.datasets.io import format_header, write_fasta
from bigbird_genomics.datasets.markov import MarkovChain
from bigbird_genomics.datasets.motifs import mutate, reverse_complement_text, to_array

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
    positive_fraction: float = 0.5
    motif_a: str = MOTIF_A
    motif_b: str = MOTIF_B
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    rule: str = "xor"
    seed: int = 0

    @property
    def cluster_bp(self) -> int:
        """Width of the stretch one cluster's copies are scattered over."""
        return self.edge_bp - self.margin_bp

    def validate(self) -> None:
        if self.rule not in ("xor", "and"):
            raise ValueError(f"rule must be 'xor' or 'and', got {self.rule!r}")
        if self.num_records < 1:
            raise ValueError(f"num_records must be >= 1, got {self.num_records}")
        if self.copies < 1:
            raise ValueError(f"copies must be >= 1, got {self.copies}")
        if self.margin_bp < 0:
            raise ValueError(f"margin_bp must be >= 0, got {self.margin_bp}")
        if len(self.motif_a) != len(self.motif_b):
            raise ValueError("motif A and motif B must have the same length")
        needed = self.copies * (len(self.motif_a) + GAP_BP)
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
    from bigbird_genomics.fasta import read_fasta

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


def _end_motifs(rule: str, label: int, rng: np.random.Generator) -> tuple[int, int]:
    """(start, end) motif indices (0 = A, 1 = B) for a record of `label` under `rule`."""
    if rule == "xor":
        first = int(rng.integers(2))
        return first, first ^ label
    if label:
        return 0, 1
    return [(0, 0), (1, 0), (1, 1)][int(rng.integers(3))]


def _cluster(
    rng: np.random.Generator, lo: int, width: int, motif_bp: int, copies: int
) -> list[int]:
    """Sorted starts of `copies` motifs inside [lo, lo + width), at least GAP_BP apart."""
    step = motif_bp + GAP_BP
    slack = width - copies * step + GAP_BP  # free bases once the copies are packed together
    offsets = np.sort(rng.integers(0, slack + 1, size=copies))
    return [lo + int(offset) + index * step for index, offset in enumerate(offsets)]


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
        first, last = _end_motifs(settings.rule, int(labels[index]), rng)
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
            for start in _cluster(rng, lo, width, motif_bp, copies)
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
