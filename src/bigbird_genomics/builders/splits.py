"""Train/val/test splits that keep shared sequence inside one split.

Real promoter sets hold near-duplicates (alternative TSSs a few bases apart, paralogues), so a
per-record split would leak: the model would see half of a test promoter during training.
Records that share any exact `shared_k`-mer are grouped (union-find) and a group is assigned
to one split as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
DEFAULT_SHARED_K = 50


def parse_fractions(text: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' -> (0.8, 0.1, 0.1); raises ValueError with what is wrong."""
    parts = [float(p) for p in text.split(",")]
    if len(parts) != 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-6:
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1, got {text!r}"
        )
    return parts[0], parts[1], parts[2]


def shared_sequence_groups(
    sequences: Sequence[np.ndarray], shared_k: int = DEFAULT_SHARED_K
) -> np.ndarray:
    """Group id per sequence; sequences sharing an exact `shared_k`-mer (no N) share a group.

    Both strands count: a k-mer and its reverse complement are the same piece of genome.
    """
    from bigbird_genomics.builders.motifs import reverse_complement

    parent = list(range(len(sequences)))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    first_owner: dict[bytes, int] = {}
    for index, sequence in enumerate(sequences):
        for strand in (sequence, reverse_complement(sequence)):
            data = strand.tobytes().upper()
            # non-overlapping k-mers of one strand against all k-mers of the others is not
            # enough (offsets differ), so every position is hashed: O(total bases).
            for start in range(0, len(data) - shared_k + 1):
                kmer = data[start : start + shared_k]
                owner = first_owner.setdefault(kmer, index)
                if owner != index:
                    root_a, root_b = find(owner), find(index)
                    if root_a != root_b:
                        parent[root_b] = root_a
    return np.array([find(i) for i in range(len(sequences))])


def assign_group_splits(
    groups: np.ndarray,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> list[str]:
    """Split name per record; whole groups go to one split, filled in a seeded random order."""
    rng = np.random.default_rng(seed)
    unique, sizes = np.unique(groups, return_counts=True)
    order = rng.permutation(len(unique))
    targets = np.cumsum(np.array(fractions) * len(groups))
    group_split: dict[int, str] = {}
    filled = 0
    for index in order:
        # a group goes to the first split whose quota its midpoint falls under
        midpoint = filled + sizes[index] / 2
        split = int(np.searchsorted(targets, midpoint, side="right"))
        group_split[int(unique[index])] = SPLIT_NAMES[min(split, len(SPLIT_NAMES) - 1)]
        filled += int(sizes[index])
    return [group_split[int(g)] for g in groups]


def overlap_groups(chroms: Sequence[str], starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Group id per genomic window; windows that overlap (same chromosome) share a group.

    For windows cut from a genome this is exact and O(n log n), where k-mer hashing of
    8 kbp windows would cost minutes.
    """
    order = sorted(range(len(chroms)), key=lambda i: (chroms[i], int(starts[i])))
    groups = np.empty(len(chroms), dtype=np.int64)
    group, current_chrom, current_end = -1, None, -1
    for index in order:
        if chroms[index] != current_chrom or starts[index] >= current_end:
            group += 1
            current_chrom, current_end = chroms[index], int(ends[index])
        else:
            current_end = max(current_end, int(ends[index]))
        groups[index] = group
    return groups
