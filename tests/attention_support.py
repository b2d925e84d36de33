"""Shared helpers of the attention tests: inputs, padding masks and the dense reference.

A plain module beside the tests (pytest puts tests/ on sys.path), so `pytest`,
`python -m pytest` and `pytest tests/test_x.py` all import it the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bigbird_genomics.attention import dense_mask

ATOL = 1e-5
BATCH, HEADS, HEAD_DIM = 2, 2, 8


def make_inputs(num_tokens: int, seed: int, head_dim: int = HEAD_DIM) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    shape = (BATCH, HEADS, num_tokens, head_dim)
    q, k, v, weights = (torch.randn(shape, generator=generator) for _ in range(4))
    return q, k, v, weights


def padding_mask(num_tokens: int, kind: str) -> torch.Tensor | None:
    """Right padding of different lengths per batch element (real tokens come first)."""
    if kind == "none":
        return None
    mask = torch.ones(BATCH, num_tokens, dtype=torch.bool)
    mask[1, max(1, num_tokens // 3) :] = False
    if kind == "both":
        mask[0, num_tokens - 1 :] = False
    return mask


def oracle(q, k, v, config, key_padding_mask, layer_index=0, step=None) -> torch.Tensor:  # noqa: ANN001
    """Plain SDPA with dense_mask & key padding; padded query rows zeroed."""
    mask = dense_mask(
        q.shape[2], config, layer_index=layer_index, step=step, num_heads=q.shape[1]
    ).unsqueeze(0).to(q.device)
    if key_padding_mask is not None:
        mask = mask & key_padding_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if key_padding_mask is not None:
        out = out.masked_fill(~key_padding_mask[:, None, :, None], 0.0)
    return out


def outputs_and_grads(function, q, k, v, weights) -> tuple[torch.Tensor, ...]:  # noqa: ANN001
    q, k, v = (x.clone().requires_grad_(True) for x in (q, k, v))
    out = function(q, k, v)
    (out * weights).sum().backward()
    return out.detach(), q.grad, k.grad, v.grad
