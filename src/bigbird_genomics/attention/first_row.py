"""Attention of query row 0 alone, under the same pattern and padding rules as every backend.

Why: a classifier that reads only the [CLS] state (row 0) needs only that row from its last
layer; the other rows' attention, output projection and MLP are work whose result is thrown away
(about a third of the encoder's FLOPs with 2 layers, a fifth with 4). Row 0 sits in a global
block by default and then attends to every real key; otherwise (`num_global_blocks=0`) to its
window and random blocks. One row is O(N) memory whatever the pattern, so a boolean key mask
taken from the block layout and SDPA are exact and cheap here: no sparse kernel is needed.
"""

from __future__ import annotations

import torch

from bigbird_genomics.attention.config import SparsityConfig
from bigbird_genomics.attention.layout import NONE, block_layout, num_blocks_for
from bigbird_genomics.attention.masking import masked_sdpa, real_token_mask, zero_padded_queries


def first_row_attention(
    q_first: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SparsityConfig,
    *,
    layer_index: int = 0,
    key_padding_mask: torch.Tensor | None = None,
    step: int | None = None,
) -> torch.Tensor:
    """Row 0 of `bigbird_attention(q, k, v, ...)` given only that row of q.

    `q_first` is [batch, heads, 1, head_dim]; k and v are [batch, heads, tokens, head_dim].
    Returns [batch, heads, 1, head_dim] (zeros where token 0 is padding, as every backend does).
    """
    batch, heads, num_tokens, head_dim = k.shape
    if q_first.shape != (batch, heads, 1, head_dim) or v.shape != k.shape:
        raise ValueError(
            "q_first must be [batch, heads, 1, head_dim] and k, v [batch, heads, tokens, "
            f"head_dim], got {tuple(q_first.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    config.validate()
    real = real_token_mask(key_padding_mask, batch, num_tokens, num_tokens, k.device)
    mask = None if real is None else real[:, None, None, :]  # [batch, 1, 1, tokens]
    if config.backend != "full":
        blocks = num_blocks_for(num_tokens, config.block_size)
        kinds = block_layout(
            blocks, config, layer_index=layer_index, step=step, num_heads=heads
        )[:, 0]  # [layout_heads, blocks]: what query block 0 attends to
        allowed = (kinds != NONE).repeat_interleave(config.block_size, dim=-1)[:, :num_tokens]
        if not bool(allowed.all()):  # a global row 0 attends to every key: no pattern mask
            pattern = allowed.to(k.device)[None, :, None, :]  # [1, layout_heads, 1, tokens]
            mask = pattern if mask is None else mask & pattern
    out = masked_sdpa(q_first, k, v, mask)
    return zero_padded_queries(out, None if real is None else real[:, :1])
