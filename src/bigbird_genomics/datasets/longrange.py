"""A synthetic long-range task: the label needs information from both ends of the sequence.

Every record holds motif A once and motif B once, on a realistic background (a Markov chain
fitted to a genome, e.g. E. coli, or any user FASTA; a uniform-GC chain when none is given).
Positives: A within `edge_bp` of the start AND B within `edge_bp` of the end. Negatives: the
other combination, B near the start and A near the end. Motif counts and composition are the
same in both classes, so a model must relate the two ends, thousands of bases apart: a
translation-invariant CNN or window-only attention read from a [CLS] token cannot; global
or random BigBird blocks can. (A model that mean-pools position-aware local features could
still combine the ends, so the benchmark compares encoders under [CLS] pooling.)
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


@dataclass(frozen=True)
class LongRangeSettings:
    num_records: int = 2000
    length_bp: int = 8192
    edge_bp: int = 500
    positive_fraction: float = 0.5
    motif_a: str = MOTIF_A
    motif_b: str = MOTIF_B
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0

    def validate(self) -> None:
        if self.edge_bp < max(len(self.motif_a), len(self.motif_b)):
            raise ValueError(f"edge_bp={self.edge_bp} is shorter than a motif")
        if 2 * self.edge_bp > self.length_bp:
            raise ValueError(
                f"edge_bp={self.edge_bp} must be at most half of length_bp={self.length_bp}"
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
    keep: list[tuple[int, str]] = (),
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


def generate_longrange(
    chain: MarkovChain, settings: LongRangeSettings = LongRangeSettings()
) -> list[tuple[str, np.ndarray, int, str, int, int]]:
    """(id, sequence, label, split, start of A, start of B) per record; seeded, deterministic."""
    settings.validate()
    rng = np.random.default_rng(settings.seed)
    count, length = settings.num_records, settings.length_bp
    motifs = [settings.motif_a, settings.motif_b]
    sequences = chain.sample(rng, count, length)
    labels = (np.arange(count) < round(settings.positive_fraction * count)).astype(int)
    labels = rng.permutation(labels)
    split_names = np.array(["train", "val", "test"])
    splits = split_names[rng.choice(3, size=count, p=list(settings.fractions))]
    records = []
    for index in range(count):
        first, last = (
            (settings.motif_a, settings.motif_b)
            if labels[index]
            else (settings.motif_b, settings.motif_a)
        )
        start_first = int(rng.integers(0, settings.edge_bp - len(first) + 1))
        start_last = int(rng.integers(length - settings.edge_bp, length - len(last) + 1))
        sequences[index, start_first : start_first + len(first)] = to_array(first)
        sequences[index, start_last : start_last + len(last)] = to_array(last)
        a_start, b_start = (start_first, start_last) if labels[index] else (start_last, start_first)
        _purge(rng, sequences[index], motifs, [(start_first, first), (start_last, last)])
        records.append(
            (
                f"lr_{index + 1:05d}",
                sequences[index],
                int(labels[index]),
                str(splits[index]),
                a_start,
                b_start,
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
            (format_header(rid, {"label": label, "split": split, "motif_a": a, "motif_b": b}), seq)
            for rid, seq, label, split, a, b in records
        ),
    )
    return {name: sum(r[3] == name for r in records) for name in ("train", "val", "test")}
