"""The `flex` backend: FlexAttention with a BlockMask built from the same block layout (CUDA path).

The mask_mod encodes the whole layout (not only padding) because eager FlexAttention ignores the
BlockMask's sparsity and applies mask_mod to the full score matrix; compiled kernels use the
BlockMask to skip blocks and evaluate mask_mod only on partial blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import torch
from torch.nn.attention.flex_attention import BlockMask, flex_attention

from bigbird_genomics.attention.config import SparsityConfig
from bigbird_genomics.attention.layout import NONE, attended_first, block_layout, num_blocks_for
from bigbird_genomics.attention.masking import pad_tokens, real_token_mask, zero_padded_queries


def flex_attention_available() -> bool:
    """True when this torch ships FlexAttention (the package requires torch >= 2.5, which does)."""
    return callable(flex_attention)


@cache
def _compiled_flex_attention(device_type: str):  # noqa: ANN202 - torch.compile's wrapper
    # CUDA: automatic dynamic shapes, since a fixed-shape compile recompiles per padded length
    # and, past the recompile limit, falls back to eager FlexAttention (O(N^2) memory).
    # CPU: static shapes; with torch 2.13 the dynamic-shape CPU kernel failed to compile here
    # (C++ error "'cur_kvSplitSize5' was not declared").
    dynamic = None if device_type == "cuda" else False
    return torch.compile(flex_attention, dynamic=dynamic)


def kernel_options(block_size: int) -> dict[str, int] | None:
    """Triton tiles equal to the block size: 128-wide default tiles over 64-token blocks computed
    ~2.5x more than needed (issue 3, measured on an H100). None when no tile size fits."""
    tile = next((t for t in (128, 64, 32, 16) if t <= block_size and block_size % t == 0), None)
    if tile is None:
        return None
    small = min(tile, 32)
    return {
        "fwd_BLOCK_M": tile,
        "fwd_BLOCK_N": tile,
        "bwd_BLOCK_M1": small,
        "bwd_BLOCK_N1": tile,
        "bwd_BLOCK_M2": tile,
        "bwd_BLOCK_N2": small,
    }


@dataclass(frozen=True)
class FlexLayout:
    """The batch-independent parts of the BlockMask of one layout (cached per layer and step)."""

    allowed: torch.Tensor  # bool [heads, blocks, blocks] (a view when shared by all heads)
    counts: torch.Tensor  # int32 [1, layout_heads, blocks]: attended key blocks per query block
    indices: torch.Tensor  # int32 [1, layout_heads, blocks, blocks]: those blocks first
    unpadded_mask: BlockMask  # all attended blocks "full": the mask when nothing is padded


@lru_cache(maxsize=32)
def flex_layout(
    num_blocks: int,
    config: SparsityConfig,
    layer_index: int,
    step: int | None,
    num_heads: int,
    device: torch.device,
) -> FlexLayout:
    """Block lists for FlexAttention, built once per (layout, device) rather than per call."""
    kinds = block_layout(
        num_blocks, config, layer_index=layer_index, step=step, num_heads=num_heads
    )
    attended = (kinds != NONE).to(device)
    counts = attended.sum(dim=-1, dtype=torch.int32).unsqueeze(0)
    indices = attended_first(attended).to(torch.int32).unsqueeze(0)
    allowed = attended.expand(num_heads, -1, -1)
    block_size = config.block_size

    def layout_mod(b, h, q_idx, kv_idx):  # noqa: ANN001, ANN202 - FlexAttention's signature
        return allowed[h, q_idx // block_size, kv_idx // block_size]

    unpadded_mask = BlockMask.from_kv_blocks(
        torch.zeros_like(counts),
        indices,
        counts,
        indices,
        BLOCK_SIZE=block_size,
        mask_mod=layout_mod,
        seq_lengths=(num_blocks * block_size, num_blocks * block_size),
    )
    return FlexLayout(allowed, counts, indices, unpadded_mask)


def flex_bigbird_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SparsityConfig,
    *,
    layer_index: int = 0,
    key_padding_mask: torch.Tensor | None = None,
    step: int | None = None,
    compiled: bool | None = None,
) -> torch.Tensor:
    """BigBird via FlexAttention. `compiled` defaults to True on CUDA, False (eager) elsewhere."""
    if not q.is_cuda and torch.is_grad_enabled() and (q.requires_grad or k.requires_grad):
        raise ValueError(
            "attention.backend='flex' has no backward pass on CPU in this torch; "
            "use backend 'block' or 'auto' for CPU training"
        )
    batch, heads, num_tokens, _ = q.shape
    block_size = config.block_size
    num_blocks = num_blocks_for(num_tokens, block_size)
    num_padded = num_blocks * block_size
    real = real_token_mask(key_padding_mask, batch, num_tokens, num_padded, q.device)
    q, k, v = (pad_tokens(x, num_padded) for x in (q, k, v))
    layout = flex_layout(num_blocks, config, layer_index, step, heads, q.device)
    has_key = None  # without padding every query block attends at least to itself
    if real is None:
        block_mask = layout.unpadded_mask
    else:
        # With padding every attended block is "partial" (mask_mod also checks the key is real),
        # which keeps the block lists batch-independent and cached.
        allowed = layout.allowed

        def mask_mod(b, h, q_idx, kv_idx):  # noqa: ANN001, ANN202 - FlexAttention's signature
            return allowed[h, q_idx // block_size, kv_idx // block_size] & real[b, kv_idx]

        block_mask = BlockMask.from_kv_blocks(
            layout.counts,
            layout.indices,
            BLOCK_SIZE=block_size,
            mask_mod=mask_mod,
            seq_lengths=(num_padded, num_padded),
        )
        any_real = real.view(batch, num_blocks, block_size).any(dim=-1)
        has_key = (allowed.unsqueeze(0) & any_real[:, None, None, :]).any(dim=-1)
    use_compiled = q.is_cuda if compiled is None else compiled
    attend = _compiled_flex_attention(q.device.type) if use_compiled else flex_attention
    options = kernel_options(block_size) if q.is_cuda else None
    out = attend(q, k, v, block_mask=block_mask, kernel_options=options)
    if has_key is not None:
        # Rows with no attendable key output zeros, as in the other backends (all rows of a
        # query block see the same keys).
        no_key = ~has_key.repeat_interleave(block_size, dim=-1).unsqueeze(-1)
        out = out.masked_fill(no_key, 0.0)
    return zero_padded_queries(out, real)[:, :, :num_tokens]
