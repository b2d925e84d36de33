"""Attention of query row 0 alone, under the same pattern and padding rules as every backend.

Why: a classifier that reads only the [CLS] state (row 0) needs only that row from its last
layer; the other rows' queries, attention, output projection and MLP are work whose result is
thrown away (5/6 of that layer's linear work: ~40% of a 2-layer encoder's FLOPs, ~20% of a
4-layer one's). Row 0 sits in a global block by default and then attends to every real key;
otherwise (`num_global_blocks=0`) to its window and random blocks. One row is O(N) memory
whatever the pattern, so a boolean key mask taken from the block layout and SDPA are exact and
cheap here: no sparse kernel is needed.
"""

from __future__ import annotations

import torch

from bigbird_genomics.attention.config import SparsityConfig
from bigbird_genomics.attention.layout import (
    NONE,
    block_layout,
    global_block_ids,
    num_blocks_for,
)
from bigbird_genomics.attention.masking import masked_sdpa, real_token_mask, zero_padded_queries
from bigbird_genomics.attention.plans import cached_plan


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
    pattern = _row_zero_keys(num_tokens, config, layer_index, step, heads, k.device)
    if pattern is not None:
        mask = pattern if mask is None else mask & pattern
    out = masked_sdpa(q_first, k, v, mask)
    return zero_padded_queries(out, None if real is None else real[:, :1])


@cached_plan
def _row_zero_keys(
    num_tokens: int,
    config: SparsityConfig,
    layer_index: int,
    step: int | None,
    num_heads: int,
    device: torch.device,
) -> torch.Tensor | None:
    """bool [1, layout_heads, 1, tokens]: the keys query block 0 attends to; None = all of them
    (backend `full`, or block 0 global, the default). Cached per layer and step, like the
    other backends' plans, so a forward pass does not rebuild it."""
    blocks = num_blocks_for(num_tokens, config.block_size)
    if config.backend == "full" or global_block_ids(blocks, config.num_global_blocks)[0] >= 1:
        return None
    kinds = block_layout(blocks, config, layer_index=layer_index, step=step, num_heads=num_heads)
    allowed = (kinds[:, 0] != NONE).repeat_interleave(config.block_size, dim=-1)[:, :num_tokens]
    return allowed.to(device)[None, :, None, :]
