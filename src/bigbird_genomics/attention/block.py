"""The `block` backend: gather each query block's key blocks, then one batched SDPA over them.

Memory is O(N): every non-global query block sees at most window + global + random key blocks.
Global query blocks attend to every key, which costs O(N) per global block. On CPU (when its
flash kernels pass their check) the whole pattern runs in chunked.BlockSparseCpuAttention;
elsewhere through index_select + SDPA under autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bigbird_genomics.attention.chunked import BlockSparseCpuAttention, CpuPlan, cpu_flash_available
from bigbird_genomics.attention.config import SparsityConfig
from bigbird_genomics.attention.layout import (
    NONE,
    attended_first,
    block_layout,
    global_block_ids,
    num_blocks_for,
)
from bigbird_genomics.attention.masking import (
    masked_sdpa,
    pad_tokens,
    real_token_mask,
    zero_padded_queries,
)
from bigbird_genomics.attention.plans import cached_plan


@dataclass(frozen=True)
class GatherPlan:
    """Index tensors for one (layout, device); the middle (non-global) query blocks only."""

    leading: int  # global query blocks at the start
    trailing: int  # global query blocks at the end
    key_blocks: torch.Tensor  # long [layout_heads, middle, slots]: key block per slot
    flat_index: torch.Tensor  # long [heads * middle * slots]: rows of k.view(B, H*blocks, ...)
    slot_valid: torch.Tensor | None  # bool [layout_heads, middle, slots]; None = all valid
    cpu: CpuPlan  # the same, as the CPU Function takes it


@cached_plan
def gather_plan(
    num_blocks: int,
    config: SparsityConfig,
    layer_index: int,
    step: int | None,
    num_heads: int,
    device: torch.device,
) -> GatherPlan:
    """Derive the gather indices from the block layout (cached: drawn once per layer/step)."""
    kinds = block_layout(
        num_blocks, config, layer_index=layer_index, step=step, num_heads=num_heads
    )
    leading, trailing = global_block_ids(num_blocks, config.num_global_blocks)
    allowed = kinds[:, leading : num_blocks - trailing] != NONE
    num_slots = max(1, int(allowed.sum(dim=-1).max())) if allowed.numel() else 1
    # Attended blocks first (ascending), then unused slots (pointing at some block, masked out).
    order = attended_first(allowed)[..., :num_slots]
    slot_valid = torch.gather(allowed, -1, order)
    heads_offset = torch.arange(num_heads).view(num_heads, 1, 1) * num_blocks
    index = (order.expand(num_heads, -1, -1) + heads_offset).to(device)
    slot_valid = None if bool(slot_valid.all()) else slot_valid.to(device)
    return GatherPlan(
        leading=leading,
        trailing=trailing,
        key_blocks=order.to(device),
        flat_index=index.reshape(-1),
        slot_valid=slot_valid,
        cpu=CpuPlan(config.block_size, leading, trailing, index, slot_valid),
    )


def block_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SparsityConfig,
    *,
    layer_index: int = 0,
    key_padding_mask: torch.Tensor | None = None,
    step: int | None = None,
) -> torch.Tensor:
    """BigBird attention by gathering key/value blocks; exact w.r.t. `dense_attention`."""
    batch, heads, num_tokens, head_dim = q.shape
    block_size = config.block_size
    num_blocks = num_blocks_for(num_tokens, block_size)
    num_padded = num_blocks * block_size
    real = real_token_mask(key_padding_mask, batch, num_tokens, num_padded, q.device)
    q, k, v = (pad_tokens(x, num_padded) for x in (q, k, v))
    plan = gather_plan(num_blocks, config, layer_index, step, heads, q.device)
    if q.device.type == "cpu" and cpu_flash_available():
        out = BlockSparseCpuAttention.apply(q, k, v, plan.cpu, real)
        return zero_padded_queries(out, real)[:, :, :num_tokens]
    lead_end = plan.leading * block_size
    trail_start = num_padded - plan.trailing * block_size

    pieces = []
    if plan.leading or plan.trailing:
        global_q = torch.cat([q[:, :, :lead_end], q[:, :, trail_start:]], dim=2)
        global_mask = None if real is None else real[:, None, None, :]
        global_out = masked_sdpa(global_q, k, v, global_mask)
        pieces.append(global_out[:, :, :lead_end])
    middle = num_blocks - plan.leading - plan.trailing
    if middle:
        pieces.append(_middle_blocks(q, k, v, real, plan, block_size, middle))
    if plan.leading or plan.trailing:
        pieces.append(global_out[:, :, lead_end:])
    out = torch.cat(pieces, dim=2) if len(pieces) > 1 else pieces[0]
    return zero_padded_queries(out, real)[:, :, :num_tokens]


def _middle_blocks(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    real: torch.Tensor | None,
    plan: GatherPlan,
    block_size: int,
    middle: int,
) -> torch.Tensor:
    """Non-global query blocks: [B*H, middle, block, d] queries vs [B*H, middle, slots*block, d]."""
    batch, heads, num_padded, head_dim = q.shape
    num_blocks = num_padded // block_size
    start = plan.leading * block_size
    queries = q[:, :, start : start + middle * block_size].reshape(
        batch * heads, middle, block_size, head_dim
    )
    key_blocks, value_blocks = (
        x.reshape(batch, heads * num_blocks, block_size, head_dim) for x in (k, v)
    )
    mask = _gathered_mask(real, plan, batch, heads, block_size)
    has_key = None
    if mask is not None:
        has_key = mask.any(dim=-1, keepdim=True)
        mask = mask | ~has_key  # rows without keys attend to all, then are zeroed (no NaN)
    gathered_shape = (batch * heads, middle, -1, head_dim)
    keys, values = (
        x.index_select(1, plan.flat_index).view(gathered_shape) for x in (key_blocks, value_blocks)
    )
    out = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask)
    if has_key is not None and not bool(has_key.all()):
        out = out.masked_fill(~has_key, 0.0)
    # reshape, not view: CUDA's SDPA kernels may return [B*H, middle, block, d] with other strides
    # (seen on an H100 with fp32, head_dim 8).
    return out.reshape(batch, heads, middle * block_size, head_dim)


def _gathered_mask(
    real: torch.Tensor | None, plan: GatherPlan, batch: int, heads: int, block_size: int
) -> torch.Tensor | None:
    """bool mask broadcastable to [B*H, middle, block, slots*block], or None if nothing masked."""
    layout_heads, middle, num_slots = plan.key_blocks.shape
    if real is None and plan.slot_valid is None:
        return None
    if real is None:
        valid = plan.slot_valid[None, :, :, :, None]  # [1, H', middle, slots, 1]
        valid = valid.expand(1, layout_heads, middle, num_slots, block_size)
        mask_batch = 1
    else:
        real_blocks = real.view(batch, -1, block_size)
        valid = real_blocks[:, plan.key_blocks]  # [B, H', middle, slots, block]
        if plan.slot_valid is not None:
            valid = valid & plan.slot_valid[None, :, :, :, None]
        mask_batch = batch
    valid = valid.reshape(mask_batch, layout_heads, middle, 1, num_slots * block_size)
    if layout_heads == 1 and mask_batch == 1:
        return valid[0]  # [1, middle, 1, S] broadcasts over batch * heads
    return valid.expand(batch, heads, -1, -1, -1).reshape(
        batch * heads, middle, 1, num_slots * block_size
    )
