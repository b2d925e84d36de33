"""Small helpers shared by the scoring modules (scan, variant effects, ISM)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

# Probabilities are clipped before the log-odds so a saturated model gives a finite value.
PROBABILITY_EPS = 1e-6


def batches(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of `size` items (the last one shorter), read lazily: a stream of
    windows or mutants is batched without holding it whole."""
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def log_odds(probability: np.ndarray) -> np.ndarray:
    """logit(p) with p clipped to [eps, 1 - eps], so effects of a saturated model stay finite
    and apart where probabilities near 1 would squash them to 0."""
    clipped = np.clip(probability, PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    return np.log(clipped) - np.log1p(-clipped)
