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
    [MASK] are not out of distribution). Position 0 ([CLS]) and padding are never masked.
    """
    reach = overlap_reach(k, stride)
    core = reach + 1
    span = core + 2 * reach
    batch, length = tokens.shape
    maskable = attention_mask.clone()
    maskable[:, 0] = False
    starts_probability = mask_fraction / span
    starts = (torch.rand(batch, length, generator=generator) < starts_probability) & maskable
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
    # Guarantee at least one scored token per sequence so every batch has a loss.
    no_target = ~scored.any(dim=1)
    if no_target.any():
        lengths = maskable.sum(dim=1).clamp_min(1)
        positions = (torch.rand(batch, generator=generator) * lengths).long() + 1
        rows = no_target.nonzero(as_tuple=True)[0]
        cols = positions[rows].clamp_max(length - 1)
        scored[rows, cols] = maskable[rows, cols]
        hidden[rows, cols] |= maskable[rows, cols]
    labels = torch.where(scored, tokens, torch.full_like(tokens, IGNORE_INDEX))
    roll = torch.rand(batch, length, generator=generator)
    random_kmers = torch.randint(first_kmer_id, vocab_size, tokens.shape, generator=generator)
    masked = tokens.clone()
    masked = torch.where(hidden & (roll < 0.8), torch.full_like(tokens, mask_token_id), masked)
    masked = torch.where(hidden & (roll >= 0.8) & (roll < 0.9), random_kmers, masked)
    return masked, labels
