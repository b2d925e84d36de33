"""Span masking for masked-LM pretraining on overlapping k-mers.

With stride-1 6-mers a token's bases also sit in its 5 neighbours on each side, so masking single
tokens lets the model read the answer off the neighbours. Each masked span therefore has a
*core* of tokens that are predicted, widened on both sides by the tokens that overlap the core's
bases (`reach` = ceil(k / stride) - 1); those flanks are masked too but not scored, so nothing of
a scored token's bases is visible.
"""

from __future__ import annotations

import math

import torch

IGNORE_INDEX = -100  # the label value torch's cross_entropy skips


def overlap_reach(k: int, stride: int) -> int:
    """How many neighbouring tokens on each side share bases with a token."""
    return max(math.ceil(k / stride) - 1, 0)


def span_positions(
    attention_mask: torch.Tensor,
    *,
    k: int,
    stride: int,
    mask_fraction: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden, scored) bool [batch, tokens]: spans to hide and their scored cores.

    Position 0 ([CLS]) and padding are never chosen; every sequence gets at least one scored
    token so every batch has a loss.
    """
    reach = overlap_reach(k, stride)
    core = reach + 1
    span = core + 2 * reach
    batch, length = attention_mask.shape
    maskable = attention_mask.clone()
    maskable[:, 0] = False
    starts = (torch.rand(batch, length, generator=generator) < mask_fraction / span) & maskable
    hidden = torch.zeros_like(maskable)
    scored = torch.zeros_like(maskable)
    for offset in range(span):
        shifted = torch.zeros_like(starts)
        shifted[:, offset:] = starts[:, : length - offset]
        hidden |= shifted
        if reach <= offset < reach + core:
            scored |= shifted
    hidden &= maskable
    scored &= maskable
    no_target = ~scored.any(dim=1)
    if no_target.any():
        rows = no_target.nonzero(as_tuple=True)[0]
        lengths = maskable[rows].sum(dim=1).clamp_min(1)
        cols = ((torch.rand(len(rows), generator=generator) * lengths).long() + 1).clamp_max(
            length - 1
        )
        for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
            if maskable[row, col]:
                scored[row, col] = True
                lo, hi = max(col - reach, 1), min(col + reach + 1, length)
                hidden[row, lo:hi] |= maskable[row, lo:hi]
    return hidden, scored


def mask_spans(
    tokens: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    k: int,
    stride: int,
    mask_token_id: int,
    first_kmer_id: int,
    vocab_size: int,
    mask_fraction: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (masked input, labels) with `labels == IGNORE_INDEX` outside scored span cores.

    About `mask_fraction` of the real k-mer tokens are hidden; of the hidden tokens 80 % become
    [MASK], 10 % a random k-mer and 10 % stay (BERT's recipe, so fine-tuning inputs without
    [MASK] are not out of distribution).
    """
    hidden, scored = span_positions(
        attention_mask, k=k, stride=stride, mask_fraction=mask_fraction, generator=generator
    )
    labels = torch.where(scored, tokens, torch.full_like(tokens, IGNORE_INDEX))
    roll = torch.rand(tokens.shape, generator=generator)
    random_kmers = torch.randint(first_kmer_id, vocab_size, tokens.shape, generator=generator)
    masked = torch.where(hidden & (roll < 0.8), torch.full_like(tokens, mask_token_id), tokens)
    masked = torch.where(hidden & (roll >= 0.8) & (roll < 0.9), random_kmers, masked)
    return masked, labels
