"""The `flex` backend: FlexAttention with a BlockMask built from the same block layout (CUDA path).

The mask_mod encodes the whole layout (not only padding) because eager FlexAttention ignores the
BlockMask's sparsity and applies mask_mod to the full score matrix; compiled kernels use the
BlockMask to skip blocks and only evaluate mask_mod on partial (padded) blocks.
"""

from __future__ import annotations

from functools import cache, lru_cache

import torch

from bigbird_genomics.attention.config import SparsityConfig
from bigbird_genomics.attention.layout import NONE, block_layout, num_blocks_for
from bigbird_genomics.attention.masking import pad_tokens, real_token_mask, zero_padded_queries


def flex_attention_available() -> bool:
    """True when this torch ships FlexAttention (torch >= 2.5)."""
    try:
        from torch.nn.attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def _compiled_flex_attention(device_type: str):  # noqa: ANN202 - torch.compile's wrapper
    from torch.nn.attention.flex_attention import flex_attention

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


@lru_cache(maxsize=32)
def _allowed_blocks(
    num_blocks: int,
    config: SparsityConfig,
    layer_index: int,
    step: int | None,
    num_heads: int,
    device: torch.device,
) -> torch.Tensor:
    kinds = block_layout(
        num_blocks, config, layer_index=layer_index, step=step, num_heads=num_heads
    )
    return (kinds != NONE).to(device)


def _kv_blocks(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """bool [B, H, Q, KV] -> (count int32 [B, H, Q], indices int32 [B, H, Q, KV]), valid first."""
    counts = blocks.sum(dim=-1, dtype=torch.int32)
    order = torch.sort((~blocks).to(torch.uint8), dim=-1, stable=True).indices
    return counts, order.to(torch.int32)


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
    from torch.nn.attention.flex_attention import BlockMask, flex_attention

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
    allowed = _allowed_blocks(num_blocks, config, layer_index, step, heads, q.device)
    allowed_per_head = allowed.expand(heads, -1, -1)

    if real is None:
        full_blocks = allowed.unsqueeze(0)
        partial_blocks = torch.zeros_like(full_blocks)
        has_key = full_blocks.any(dim=-1)
    else:
        real_blocks = real.view(batch, num_blocks, block_size)
        all_real = real_blocks.all(dim=-1)[:, None, None, :]
        any_real = real_blocks.any(dim=-1)[:, None, None, :]
        full_blocks = allowed.unsqueeze(0) & all_real
        partial_blocks = allowed.unsqueeze(0) & any_real & ~all_real
        has_key = (full_blocks | partial_blocks).any(dim=-1)

    def mask_mod(b, h, q_idx, kv_idx):  # noqa: ANN001, ANN202 - FlexAttention's signature
        ok = allowed_per_head[h, q_idx // block_size, kv_idx // block_size]
        return ok if real is None else ok & real[b, kv_idx]

    kv_num, kv_index = _kv_blocks(partial_blocks)
    full_num, full_index = _kv_blocks(full_blocks)
    block_mask = BlockMask.from_kv_blocks(
        kv_num,
        kv_index,
        full_num,
        full_index,
        BLOCK_SIZE=block_size,
        mask_mod=mask_mod,
        seq_lengths=(num_padded, num_padded),
    )
    use_compiled = q.is_cuda if compiled is None else compiled
    attend = _compiled_flex_attention(q.device.type) if use_compiled else flex_attention
    options = kernel_options(block_size) if q.is_cuda else None
    out = attend(q, k, v, block_mask=block_mask, kernel_options=options)
    # Rows with no attendable key: zeros, as in the other backends (block-level: all rows of a
    # query block see the same keys).
    no_key = ~has_key.repeat_interleave(block_size, dim=-1).unsqueeze(-1)
    out = out.masked_fill(no_key, 0.0)
    return zero_padded_queries(out, real)[:, :, :num_tokens]
