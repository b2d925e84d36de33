"""A synthetic long-range task: the label needs information from both ends of the sequence.

Each record holds one motif (A or B) within `edge_bp` of its start, one within `edge_bp` of its
end, and "distractor" copies in the middle chosen so that every record holds exactly two A and
two B: motif counts and composition say nothing about the label. The background is a Markov
chain fitted to a genome (e.g. E. coli) or any FASTA, or independent bases with a given GC.

Rules (the motif at the start, the motif at the end -> label):
- "xor" (default): 1 when the two end motifs differ (A..B or B..A), 0 when they are the same.
  Neither end alone says anything; a model must relate the two ends, thousands of bases
  apart. A translation-invariant CNN, or window-only attention read from a [CLS] token,
  stays at chance; global or random BigBird blocks can carry the information.
- "and" (issue 6's wording): 1 for A near the start AND B near the end, 0 for the other three
  combinations. Here each end alone already reaches 75 % accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bigbird_genomics.datasets.io import format_header, write_fasta
from bigbird_genomics.datasets.markov import MarkovChain
from bigbird_genomics.datasets.motifs import mutate, reverse_complement_text, to_array

MOTIF_A = "TGACGTCATGCA"
MOTIF_B = "GGATCCTTAGGC"


@dataclass
class LongRangeRecord:
    """One record; `sites` lists every planted (start, motif), end motifs first."""

    record_id: str
    sequence: np.ndarray
    label: int
    split: str
    start_motif: str
    end_motif: str
    sites: list[tuple[int, str]]


@dataclass(frozen=True)
class LongRangeSettings:
    num_records: int = 2000
    length_bp: int = 8192
    edge_bp: int = 500
    positive_fraction: float = 0.5
    motif_a: str = MOTIF_A
    motif_b: str = MOTIF_B
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    rule: str = "xor"
    seed: int = 0

    def validate(self) -> None:
        if self.rule not in ("xor", "and"):
            raise ValueError(f"rule must be 'xor' or 'and', got {self.rule!r}")
        if self.edge_bp < max(len(self.motif_a), len(self.motif_b)):
            raise ValueError(f"edge_bp={self.edge_bp} is shorter than a motif")
        if 2 * self.edge_bp + 4 * max(len(self.motif_a), len(self.motif_b)) > self.length_bp:
            raise ValueError(
                f"length_bp={self.length_bp} leaves no middle for distractor motifs after two "
                f"edges of {self.edge_bp} bp; use a longer sequence or a smaller edge"
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
    keep: list[tuple[int, str]],
) -> None:
    """Break, in place, every occurrence of a motif (either strand) except the planted `keep`
    copies, by mutating one of its bases that lies outside the planted copies."""
    patterns = motifs + [reverse_complement_text(m) for m in motifs]
    protected = np.zeros(len(row), dtype=bool)
    for start, motif in keep:
        protected[start : start + len(motif)] = True
    while True:
        text = row.tobytes().decode("ascii")
        stray = [
            (start, len(p))
            for p in patterns
            for start in _occurrences(text, p)
            if (start, p) not in keep
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


def generate_longrange(
    chain: MarkovChain, settings: LongRangeSettings = LongRangeSettings()
) -> list[LongRangeRecord]:
    """Records in id order; seeded, deterministic for a given chain and settings."""
    settings.validate()
    rng = np.random.default_rng(settings.seed)
    count, length, edge = settings.num_records, settings.length_bp, settings.edge_bp
    motifs = [settings.motif_a, settings.motif_b]
    sequences = chain.sample(rng, count, length)
    labels = rng.permutation(
        (np.arange(count) < round(settings.positive_fraction * count)).astype(int)
    )
    split_names = np.array(["train", "val", "test"])
    splits = split_names[rng.choice(3, size=count, p=list(settings.fractions))]
    records = []
    for index in range(count):
        first, last = _end_motifs(settings.rule, int(labels[index]), rng)
        # the middle holds whatever makes the totals two A and two B
        middle = [1 - first, 1 - last]
        sites: list[tuple[int, str]] = [
            (int(rng.integers(0, edge - len(motifs[first]) + 1)), motifs[first]),
            (int(rng.integers(length - edge, length - len(motifs[last]) + 1)), motifs[last]),
        ]
        gap = (length - 2 * edge) // 2  # two middle slots that cannot overlap
        for slot, which in enumerate(middle):
            lo = edge + slot * gap
            sites.append((int(rng.integers(lo, lo + gap - len(motifs[which]) + 1)), motifs[which]))
        for start, motif in sites:
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
    """Write the labelled FASTA (`label=`, `split=`, and where the motifs are); split counts."""
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
