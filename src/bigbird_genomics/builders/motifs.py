"""DNA helpers shared by the synthetic generators: background sampling, motif planting and
mutation. Sequences are upper-case ASCII uint8 arrays, as in `fasta`."""

from __future__ import annotations

import numpy as np

from bigbird_genomics.io.fasta import reverse_complement

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
# ASCII code -> 0..3 for ACGT (either case), 4 for anything else.
BASE_INDEX = np.full(256, 4, dtype=np.int64)
for _i, _c in enumerate(b"ACGT"):
    BASE_INDEX[_c] = _i
    BASE_INDEX[_c + 32] = _i


def to_array(sequence: str) -> np.ndarray:
    """ASCII uint8 array of a DNA string (a copy, writable)."""
    return np.frombuffer(sequence.encode("ascii"), dtype=np.uint8).copy()


def reverse_complement_text(sequence: str) -> str:
    return reverse_complement(to_array(sequence)).tobytes().decode("ascii")


def random_bases(
    rng: np.random.Generator, length: int, probs: np.ndarray | None = None
) -> np.ndarray:
    """`length` independent bases drawn with probabilities `probs` over A, C, G, T."""
    return BASES[rng.choice(4, size=length, p=probs)]


def mutate(rng: np.random.Generator, motif: np.ndarray, rate: float) -> np.ndarray:
    """A copy of `motif` with each base replaced by a different base with probability `rate`."""
    mutated = motif.copy()
    hit = rng.random(len(motif)) < rate
    if hit.any():
        # adding 1..3 modulo 4 always changes the base
        current = BASE_INDEX[mutated[hit]] % 4
        mutated[hit] = BASES[(current + rng.integers(1, 4, size=int(hit.sum()))) % 4]
    return mutated


def contains(sequence: np.ndarray, motif: str, both_strands: bool = True) -> bool:
    """Whether `motif` occurs exactly (case-insensitive) in `sequence`, on either strand."""
    text = sequence.tobytes().decode("ascii").upper()
    if motif in text:
        return True
    return both_strands and reverse_complement_text(motif) in text


def find_all(sequence: np.ndarray, motif: str) -> list[int]:
    """Start positions of exact, possibly overlapping, forward-strand occurrences of `motif`."""
    text = sequence.tobytes().decode("ascii").upper()
    hits, start = [], text.find(motif)
    while start >= 0:
        hits.append(start)
        start = text.find(motif, start + 1)
    return hits
