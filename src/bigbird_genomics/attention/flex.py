"""The `flex` backend: FlexAttention with a BlockMask built from the same block layout.

The mask_mod encodes the whole layout (not only padding) because eager FlexAttention ignores the
BlockMask's sparsity and applies mask_mod to the full score matrix; compiled kernels use the
BlockMask to skip tiles and evaluate mask_mod only on partial tiles. The BlockMask is built on
the kernel's 128-token tiles (flex_tiles.py), so with 64-token BigBird blocks it visits more
pairs than the layout needs; 64-token FlexAttention tiles failed to compile on an H100 (torch
2.11). Measured there at 65536 tokens (bf16, 12 heads, fwd+bwd): 20.5 ms plain, 16.0 ms
balanced, against 3.7 ms for the `triton` kernels, so `auto` never picks `flex`; it stays as
the stock-PyTorch fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask, flex_attention

from bigbird_genomics.attention.config import SparsityConfig
from bigbird_genomics.attention.flex_balanced import balanced_flex_attention, balanced_layout
from bigbird_genomics.attention.flex_tiles import TileLists, pad_to_tiles, tile_lists, tile_tokens
from bigbird_genomics.attention.layout import NONE, block_layout, num_blocks_for
from bigbird_genomics.attention.masking import pad_tokens, real_token_mask, zero_padded_queries
from bigbird_genomics.attention.plans import cached_plan

try:  # torch >= 2.9 asks for the log-sum-exp through return_aux; older ones through return_lse
    from torch.nn.attention.flex_attention import AuxRequest
except ImportError:  # pragma: no cover - older torch
    AuxRequest = None

# Whether `flex` splits the global rows and columns into balanced copies (flex_balanced.py). On
# an H100 at 65536 tokens (bf16, 12 heads, fwd+bwd) balanced took 16.0 ms, plain 20.5 ms.
# Compiled CPU FlexAttention cannot return the log-sum-exp the merge needs: plain there.
BALANCED_DEFAULT = True


@cache
def _compiled_flex_attention(device_type: str):  # noqa: ANN202 - torch.compile's wrapper
    # CUDA: automatic dynamic shapes, since a fixed-shape compile recompiles per padded length
    # and, past the recompile limit, falls back to eager FlexAttention (O(N^2) memory).
    # CPU: static shapes; with torch 2.13 the dynamic-shape CPU kernel failed to compile here
    # (C++ error "'cur_kvSplitSize5' was not declared").
    dynamic = None if device_type == "cuda" else False
    return torch.compile(flex_attention, dynamic=dynamic)


@dataclass(frozen=True)
class FlexLayout:
    """The batch-independent parts of one layout's BlockMask (cached per layer and step)."""

    allowed: torch.Tensor  # bool [heads, blocks, blocks], padded to whole tiles (a view)
    tiles: TileLists
    unpadded_mask: BlockMask  # the mask when no key is padded


@cached_plan
def flex_layout(
    num_blocks: int,
    config: SparsityConfig,
    layer_index: int,
    step: int | None,
    num_heads: int,
    device: torch.device,
) -> FlexLayout:
    """The layout padded to whole kernel tiles, built once per (layout, device), not per call."""
    kinds = block_layout(
        num_blocks, config, layer_index=layer_index, step=step, num_heads=num_heads
    )
    block_size = config.block_size
    ratio = tile_tokens(block_size) // block_size
    layout = pad_to_tiles(kinds != NONE, ratio).to(device)  # 1 or num_heads heads
    allowed = layout.expand(num_heads, -1, -1)
    tiles = tile_lists(layout, block_size)

    def layout_mod(b, h, q_idx, kv_idx):  # noqa: ANN001, ANN202 - FlexAttention's signature
        return allowed[h, q_idx // block_size, kv_idx // block_size]

    return FlexLayout(allowed, tiles, tiles.block_mask(layout_mod, all_partial=False))


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
    balanced: bool | None = None,
) -> torch.Tensor:
    """BigBird via FlexAttention. `compiled` defaults to True on CUDA, False (eager) elsewhere;
    `balanced` (default BALANCED_DEFAULT, except compiled on CPU) computes the same attention
    with split global rows and copied global columns (flex_balanced.py), so that no kernel
    program walks the whole sequence.
    """
    _refuse_cpu_backward(q, k, v)
    batch, heads, num_tokens, _ = q.shape
    block_size = config.block_size
    num_blocks = num_blocks_for(num_tokens, block_size)
    layout = flex_layout(num_blocks, config, layer_index, step, heads, q.device)
    # Tokens up to whole tiles: the blocks past `num_blocks` are in no one's layout.
    num_padded = layout.allowed.shape[-1] * block_size
    real = real_token_mask(key_padding_mask, batch, num_tokens, num_blocks * block_size, q.device)
    if real is not None:
        real = F.pad(real, (0, num_padded - real.shape[-1]), value=False)
    q, k, v = (pad_tokens(x, num_padded) for x in (q, k, v))
    use_compiled = q.is_cuda if compiled is None else compiled
    attend = _compiled_flex_attention(q.device.type) if use_compiled else flex_attention
    has_key = None  # without padding every query block attends at least to itself
    if real is not None:
        any_real = real.view(batch, -1, block_size).any(dim=-1)
        # A layout shared by all heads is an expanded view: test its one head, then broadcast.
        allowed = layout.allowed[:1] if layout.allowed.stride(0) == 0 else layout.allowed
        has_key = (allowed.unsqueeze(0) & any_real[:, None, None, :]).any(dim=-1)
    if balanced is None:
        balanced = BALANCED_DEFAULT and (q.is_cuda or not use_compiled)
    if balanced:
        extended = balanced_layout(num_blocks, config, layer_index, step, heads, q.device)

        def attend_with_lse(q_, k_, v_, block_mask):  # noqa: ANN001, ANN202
            return _flex_with_lse(attend, q_, k_, v_, block_mask)

        out = balanced_flex_attention(q, k, v, extended, block_size, real, attend_with_lse)
    elif real is None:
        out = attend(q, k, v, block_mask=layout.unpadded_mask)
    else:
        # With padding every visited tile is "partial" (mask_mod also checks the key is real),
        # which keeps the tile lists batch-independent and cached.
        allowed = layout.allowed

        def mask_mod(b, h, q_idx, kv_idx):  # noqa: ANN001, ANN202 - FlexAttention's signature
            return allowed[h, q_idx // block_size, kv_idx // block_size] & real[b, kv_idx]

        out = attend(q, k, v, block_mask=layout.tiles.block_mask(mask_mod, all_partial=True))
    if has_key is not None:
        # Rows with no attendable key output zeros, as in the other backends (all rows of a
        # query block see the same keys).
        no_key = ~has_key.repeat_interleave(block_size, dim=-1).unsqueeze(-1)
        out = out.masked_fill(no_key, 0.0)
    return zero_padded_queries(out, real)[:, :, :num_tokens]


def _refuse_cpu_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """FlexAttention has no CPU backward: say so up front instead of failing in backward()."""
    needs_grad = any(x.requires_grad for x in (q, k, v))
    if not q.is_cuda and torch.is_grad_enabled() and needs_grad:
        raise ValueError(
            "attention.backend='flex' has no backward pass on CPU in this torch; "
            "use backend 'block' or 'auto' for CPU training"
        )


def _flex_with_lse(attend, q, k, v, block_mask):  # noqa: ANN001, ANN202
    """(out, lse) from FlexAttention, whichever way this torch asks for the log-sum-exp."""
    if AuxRequest is not None:
        out, aux = attend(q, k, v, block_mask=block_mask, return_aux=AuxRequest(lse=True))
        return out, aux.lse
    return attend(q, k, v, block_mask=block_mask, return_lse=True)
