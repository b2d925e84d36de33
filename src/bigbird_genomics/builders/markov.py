"""Markov-chain DNA backgrounds: fit to real sequence, sample many sequences at once.

A first-order chain reproduces dinucleotide frequencies (the composition artefact that makes
the DeePromoter recipe easy); higher orders give a more realistic genomic background for the
long-range generator. Written with numpy because no kept library fits and samples DNA Markov
chains vectorised over many sequences.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from bigbird_genomics.builders.motifs import BASE_INDEX, BASES


@dataclass(frozen=True)
class MarkovChain:
    """Order-`order` chain over A, C, G, T.

    `initial[state]` is the probability of the first `order` bases (state = base-4 number),
    `transition[state, base]` the probability of the next base given the previous `order`.
    """

    order: int
    initial: np.ndarray
    transition: np.ndarray

    @classmethod
    def uniform(cls, order: int = 1, gc: float = 0.5) -> MarkovChain:
        """A chain whose bases are independent with GC content `gc`: the built-in background."""
        if not 0.0 < gc < 1.0:
            raise ValueError(f"gc must lie strictly between 0 and 1, got {gc}")
        base = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
        states = 4**order
        initial = np.ones(states)
        for position in range(order):
            digit = (np.arange(states) // 4 ** (order - 1 - position)) % 4
            initial = initial * base[digit]
        return cls(order, initial / initial.sum(), np.tile(base, (states, 1)))

    @classmethod
    def fit(
        cls, sequences: Iterable[np.ndarray], order: int = 1, pseudocount: float = 1.0
    ) -> MarkovChain:
        """Fit by counting (order+1)-mers of ACGT-only stretches; case is ignored."""
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        states = 4**order
        counts = np.zeros((states, 4))
        for sequence in sequences:
            codes = BASE_INDEX[np.asarray(sequence, dtype=np.uint8)]
            if len(codes) <= order:
                continue
            windows = np.lib.stride_tricks.sliding_window_view(codes, order + 1)
            windows = windows[(windows < 4).all(axis=1)]
            if len(windows) == 0:
                continue
            weights = 4 ** np.arange(order, -1, -1)
            kmer = windows @ weights  # (order+1)-mer as a base-4 number: state * 4 + next base
            counts += np.bincount(kmer, minlength=states * 4).reshape(states, 4)
        counts += pseudocount
        initial = counts.sum(axis=1)
        return cls(order, initial / initial.sum(), counts / counts.sum(axis=1, keepdims=True))

    def sample(self, rng: np.random.Generator, num_sequences: int, length: int) -> np.ndarray:
        """`[num_sequences, length]` ASCII uint8 array; sequences are sampled in parallel."""
        if length < self.order:
            codes = rng.choice(4, size=(num_sequences, length))
            return BASES[codes]
        codes = np.empty((num_sequences, length), dtype=np.int64)
        state = rng.choice(len(self.initial), size=num_sequences, p=self.initial)
        for position in range(self.order):
            codes[:, position] = (state // 4 ** (self.order - 1 - position)) % 4
        cumulative = np.cumsum(self.transition, axis=1)
        cumulative[:, -1] = 1.0
        uniforms = rng.random((num_sequences, length))
        states = 4**self.order
        for position in range(self.order, length):
            next_base = (uniforms[:, position, None] > cumulative[state]).sum(axis=1)
            codes[:, position] = next_base
            state = (state * 4 + next_base) % states
        return BASES[codes]

    def continue_from(
        self, rng: np.random.Generator, prefix: np.ndarray, length: int
    ) -> np.ndarray:
        """`length` bases that follow `prefix` under the chain (a uniform start if it is short)."""
        codes = BASE_INDEX[np.asarray(prefix, dtype=np.uint8)][-self.order :]
        if len(codes) < self.order or (codes > 3).any():
            return self.sample(rng, 1, length)[0]
        state = int(codes @ (4 ** np.arange(self.order - 1, -1, -1)))
        cumulative = np.cumsum(self.transition, axis=1)
        cumulative[:, -1] = 1.0
        out = np.empty(length, dtype=np.int64)
        uniforms = rng.random(length)
        states = 4**self.order
        for position in range(length):
            out[position] = int((uniforms[position] > cumulative[state]).sum())
            state = (state * 4 + out[position]) % states
        return BASES[out]


def dinucleotide_frequencies(sequences: Iterable[np.ndarray]) -> np.ndarray:
    """`[4, 4]` frequencies of adjacent ACGT pairs (case-insensitive), summing to 1."""
    counts = np.zeros(16)
    for sequence in sequences:
        codes = BASE_INDEX[np.asarray(sequence, dtype=np.uint8)]
        pairs = codes[:-1] * 4 + codes[1:]
        pairs = pairs[(codes[:-1] < 4) & (codes[1:] < 4)]
        counts += np.bincount(pairs, minlength=16)
    return (counts / max(counts.sum(), 1.0)).reshape(4, 4)
