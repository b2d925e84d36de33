"""Padding and masked SDPA shared by the backends, so padding means the same thing everywhere."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def real_token_mask(
    key_padding_mask: torch.Tensor | None,
    batch: int,
    num_tokens: int,
    num_padded: int,
    device: torch.device,
) -> torch.Tensor | None:
    """bool [batch, num_padded], True = real token; None when every position is real.

    Positions added to reach a multiple of the block size count as padding.
    """
    if key_padding_mask is not None:
        if key_padding_mask.shape != (batch, num_tokens):
            raise ValueError(
                f"key_padding_mask must have shape [batch, tokens] = {(batch, num_tokens)}, "
                f"got {tuple(key_padding_mask.shape)}"
            )
        if key_padding_mask.dtype != torch.bool:
            raise ValueError(
                f"key_padding_mask must be bool (True = real token), got {key_padding_mask.dtype}"
            )
    if num_padded == num_tokens:
        return None if key_padding_mask is None else key_padding_mask.to(device)
    real = key_padding_mask.to(device) if key_padding_mask is not None else None
    if real is None:
        real = torch.ones(batch, num_tokens, dtype=torch.bool, device=device)
    return F.pad(real, (0, num_padded - num_tokens), value=False)


def pad_tokens(x: torch.Tensor, num_padded: int) -> torch.Tensor:
    """Zero-pad [batch, heads, tokens, dim] along tokens to `num_padded`."""
    extra = num_padded - x.shape[-2]
    return F.pad(x, (0, 0, 0, extra)) if extra else x


def masked_sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """SDPA with a boolean mask (True = attend); a row with no attendable key outputs zeros.

    SDPA returns NaN for fully masked rows (and NaN gradients even under a later masked_fill),
    so such rows attend to everything and are zeroed afterwards.
    """
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v)
    has_key = mask.any(dim=-1, keepdim=True)
    if bool(has_key.all()):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~has_key)
    return out.masked_fill(~has_key, 0.0)


def zero_padded_queries(out: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
    """Zero the output rows of padded query positions ([batch, heads, tokens, dim])."""
    if real is None:
        return out
    return out.masked_fill(~real[:, None, :, None], 0.0)
