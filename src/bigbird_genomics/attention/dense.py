"""Reference backends: the sparse pattern as a boolean mask (`dense`) and no sparsity (`full`)."""

from __future__ import annotations

import torch

from bigbird_genomics.attention.config import SparsityConfig
from bigbird_genomics.attention.layout import dense_mask
from bigbird_genomics.attention.masking import masked_sdpa, real_token_mask, zero_padded_queries


def dense_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SparsityConfig,
    *,
    layer_index: int = 0,
    key_padding_mask: torch.Tensor | None = None,
    step: int | None = None,
) -> torch.Tensor:
    """BigBird as an [N, N] boolean mask + SDPA: O(N^2) memory, the executable specification."""
    batch, heads, num_tokens, _ = q.shape
    real = real_token_mask(key_padding_mask, batch, num_tokens, num_tokens, q.device)
    allowed = dense_mask(
        num_tokens, config, layer_index=layer_index, step=step, num_heads=heads
    ).to(q.device)
    mask = allowed.unsqueeze(0)  # [1, layout_heads, N, N]
    if real is not None:
        mask = mask & real[:, None, None, :]
    return zero_padded_queries(masked_sdpa(q, k, v, mask), real)


def full_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_padding_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Ordinary attention (no sparsity) with the same padding rules: the dense baseline."""
    batch, _, num_tokens, _ = q.shape
    real = real_token_mask(key_padding_mask, batch, num_tokens, num_tokens, q.device)
    mask = None if real is None else real[:, None, None, :]
    return zero_padded_queries(masked_sdpa(q, k, v, mask), real)


def full_backend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SparsityConfig,
    *,
    layer_index: int = 0,
    key_padding_mask: torch.Tensor | None = None,
    step: int | None = None,
) -> torch.Tensor:
    """`full_attention` with the backend signature (the pattern arguments do not apply)."""
    return full_attention(q, k, v, key_padding_mask)
