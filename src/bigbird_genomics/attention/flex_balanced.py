"""The `flex` backend with balanced work: global rows and global key columns split into copies.

Why: in the plain layout a global query block attends to all `n` key blocks and every query
block attends to the global key blocks. A FlexAttention forward program handles one query
block and walks its key blocks one after another, and the backward's dK/dV program walks all
query blocks of one key block. So a handful of programs do `n` steps while thousands do ~8: at
64k tokens (1024 blocks) these long tails, not the total arithmetic, bound the run time.

Here the same attention is computed with balanced lists (same function, exact up to rounding):
- each global query block is repeated `S` times as extra query blocks; copy `s` attends only to
  a slice of ~`T` key blocks (`T` = the longest ordinary row), and the copies' partial outputs
  are merged through their log-sum-exps (the softmax of a union is the LSE-weighted mix of the
  parts' softmaxes);
- each global key block is repeated `R` times as extra key blocks; ordinary query block `i`
  attends to copy `i // T` instead of the original, so each copy is read by ~`T` query blocks.
  Autograd sums the copies' gradients back onto the original q, k and v rows.
FlexAttention has no way to express "split this row" itself, which is why this is written here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask

from bigbird_genomics.attention.config import SparsityConfig
from bigbird_genomics.attention.flex_tiles import TileLists, pad_to_tiles, tile_lists, tile_tokens
from bigbird_genomics.attention.layout import NONE, block_layout, global_block_ids
from bigbird_genomics.attention.plans import cached_plan


@dataclass(frozen=True)
class BalancedLayout:
    """The extended (copied) layout of one (blocks, config, layer, step, heads, device)."""

    allowed: torch.Tensor  # bool [heads, query_blocks_ext, key_blocks_ext], whole tiles
    query_source: torch.Tensor  # long [query_blocks_ext]: original block of each query block
    key_source: torch.Tensor  # long [key_blocks_ext]: original block of each key block
    global_blocks: torch.Tensor  # long [g]: the global blocks, in the order of their copies
    query_copies: int  # S: copies per global query block (after the original blocks)
    tiles: TileLists
    unpadded_mask: BlockMask


def balance_layout(
    attended: torch.Tensor, global_ids: list[int], num_real_blocks: int | None = None
) -> tuple[torch.Tensor, ...]:
    """Extended boolean layout with split global rows and copied global columns.

    `attended`: bool [heads, n, n], of which the first `num_real_blocks` (default n) are the
    layout's own (the rest pads to whole tiles). Returns (allowed_ext, query_source, key_source,
    S, R).
    """
    heads, n, _ = attended.shape
    num_real_blocks = n if num_real_blocks is None else num_real_blocks
    is_global = torch.zeros(n, dtype=torch.bool)
    is_global[global_ids] = True
    ordinary = ~is_global
    # T: the longest ordinary row, so that no copy holds more than an ordinary row does. Padding
    # rows attend nothing and do not count; with no ordinary row at all there is nothing to
    # balance against, and T = n keeps one copy per global block.
    per_row = attended[:, ordinary[:num_real_blocks].nonzero().squeeze(-1)].sum(dim=-1)
    span = max(1, int(per_row.max())) if per_row.numel() else n
    num_global = len(global_ids)
    query_copies = math.ceil(n / span)  # S
    key_copies = math.ceil(n / span)  # R
    ids = torch.tensor(global_ids, dtype=torch.long)
    query_source = torch.cat([torch.arange(n), ids.repeat_interleave(query_copies)])
    key_source = torch.cat([torch.arange(n), ids.repeat_interleave(key_copies)])
    allowed = torch.zeros(heads, n + num_global * query_copies, n + num_global * key_copies,
                          dtype=torch.bool)  # fmt: skip
    # Ordinary rows keep their ordinary key blocks, and see global key block j through copy
    # `row // span` of it.
    ordinary_rows = ordinary.nonzero().squeeze(-1)
    allowed[:, ordinary_rows, :n] = attended[:, ordinary_rows] & ordinary
    for j, block in enumerate(global_ids):
        copy_column = n + j * key_copies + ordinary_rows // span
        allowed[:, ordinary_rows, copy_column] = attended[:, ordinary_rows, block]
    # Global row j is replaced by S query copies; copy s sees key blocks [s*span, (s+1)*span).
    for j, block in enumerate(global_ids):
        for s in range(query_copies):
            row = n + j * query_copies + s
            columns = slice(s * span, min(n, (s + 1) * span))
            allowed[:, row, columns] = attended[:, block, columns]
    return allowed, query_source, key_source, query_copies, key_copies


@cached_plan
def balanced_layout(
    num_blocks: int,
    config: SparsityConfig,
    layer_index: int,
    step: int | None,
    num_heads: int,
    device: torch.device,
) -> BalancedLayout:
    """The balanced block lists, built once per layout and device rather than per call.

    The original blocks are first padded to whole kernel tiles (as the plain `flex` layout),
    the copies follow them, and the extended layout is padded to whole tiles again.
    """
    kinds = block_layout(
        num_blocks, config, layer_index=layer_index, step=step, num_heads=num_heads
    )
    block_size = config.block_size
    ratio = tile_tokens(block_size) // block_size
    leading, trailing = global_block_ids(num_blocks, config.num_global_blocks)
    global_ids = list(range(leading)) + list(range(num_blocks - trailing, num_blocks))
    attended = pad_to_tiles(kinds != NONE, ratio)
    allowed, query_source, key_source, query_copies, _ = balance_layout(
        attended, global_ids, num_blocks
    )
    allowed = pad_to_tiles(allowed, ratio)
    # Blocks added for whole tiles are attended by no one; any source block will do for them.
    query_source = F.pad(query_source, (0, allowed.shape[1] - query_source.numel()))
    key_source = F.pad(key_source, (0, allowed.shape[2] - key_source.numel()))
    allowed = allowed.to(device)
    heads_allowed = allowed.expand(num_heads, -1, -1)
    tiles = tile_lists(allowed, block_size)

    def layout_mod(b, h, q_idx, kv_idx):  # noqa: ANN001, ANN202 - FlexAttention's signature
        return heads_allowed[h, q_idx // block_size, kv_idx // block_size]

    return BalancedLayout(
        heads_allowed,
        query_source.to(device),
        key_source.to(device),
        torch.tensor(global_ids, dtype=torch.long, device=device),
        query_copies,
        tiles,
        tiles.block_mask(layout_mod, all_partial=False),
    )


def _take_blocks(x: torch.Tensor, source: torch.Tensor, block_size: int) -> torch.Tensor:
    """[B, H, n*bs, d] -> [B, H, len(source)*bs, d]: block `i` of the result is `source[i]`."""
    batch, heads, tokens, dim = x.shape
    blocks = x.view(batch, heads, tokens // block_size, block_size, dim)
    return blocks.index_select(2, source).reshape(batch, heads, -1, dim)


def balanced_flex_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: BalancedLayout,
    block_size: int,
    real: torch.Tensor | None,
    attend,  # noqa: ANN001 - flex_attention (compiled or eager) with its kernel options bound
) -> torch.Tensor:
    """Attention of q, k, v [B, H, n*bs, d] (padded to whole tiles) through the balanced layout.

    `real`: bool [B, n*bs] (True = real key) or None. `attend(q, k, v, block_mask)` returns
    (out, lse) as FlexAttention does. Returns [B, H, n*bs, d] before any padding clean-up.
    """
    batch, heads, tokens, dim = q.shape
    num_blocks = tokens // block_size
    q_ext = _take_blocks(q, layout.query_source, block_size)
    k_ext = _take_blocks(k, layout.key_source, block_size)
    v_ext = _take_blocks(v, layout.key_source, block_size)
    if real is None:
        block_mask = layout.unpadded_mask
    else:
        allowed = layout.allowed
        real_ext = real.view(batch, num_blocks, block_size)[:, layout.key_source].reshape(batch, -1)

        def mask_mod(b, h, q_idx, kv_idx):  # noqa: ANN001, ANN202 - FlexAttention's signature
            return allowed[h, q_idx // block_size, kv_idx // block_size] & real_ext[b, kv_idx]

        block_mask = layout.tiles.block_mask(mask_mod, all_partial=True)
    out_ext, lse_ext = attend(q_ext, k_ext, v_ext, block_mask)
    out = out_ext[:, :, :tokens]
    num_global = layout.global_blocks.numel()
    if num_global == 0:
        return out
    copies = layout.query_copies
    shape = (batch, heads, num_global, copies, block_size)
    copy_rows = slice(tokens, tokens + num_global * copies * block_size)
    parts = out_ext[:, :, copy_rows].reshape(*shape, dim)
    lse = lse_ext[:, :, copy_rows].reshape(shape).float()
    # A row whose copies all saw no key (lse = -inf everywhere, outputs 0) gets lse 0 instead:
    # logsumexp's backward would otherwise compute 0 * exp(-inf + inf) = NaN.
    no_key = ~torch.isfinite(lse).any(dim=3, keepdim=True)
    lse = lse.masked_fill(no_key, 0.0)
    total = torch.logsumexp(lse, dim=3, keepdim=True)
    weights = torch.exp(lse - total).to(parts.dtype).unsqueeze(-1)
    merged = (weights * parts).sum(dim=3)  # [B, H, g, bs, d]
    blocks = out.reshape(batch, heads, num_blocks, block_size, dim)
    return blocks.index_copy(2, layout.global_blocks, merged).reshape(batch, heads, tokens, dim)
