"""CPU path of the block backend: gather + flash attention in chunks, re-gathering in backward."""

from __future__ import annotations

from collections.abc import Iterator

import torch

# CPU flash-attention kernels behind F.scaled_dot_product_attention, called directly so that the
# backward pass can re-gather key blocks chunk by chunk instead of keeping them all (see below).
_CPU_FLASH = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_CPU_FLASH_BACKWARD = getattr(
    torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None
)
CHUNK_BYTES = 8 * 2**20


def cpu_flash_available() -> bool:
    """True when this torch exposes the CPU flash-attention forward and backward kernels."""
    return _CPU_FLASH is not None and _CPU_FLASH_BACKWARD is not None


class ChunkedGatherAttention(torch.autograd.Function):
    """Gather + flash attention over chunks of query blocks, re-gathering in backward.

    Why by hand: autograd through index_select + SDPA keeps the gathered keys/values
    ([B*H, blocks, slots*block, d], ~0.27 GB at 16k tokens, 4 heads) plus their gradients alive,
    and fresh allocations that size page-fault on every step. Chunks of ~8 MB are reused from
    the allocator; measured ~1.7x faster fwd+bwd on CPU at 16k tokens, with O(N*d) saved state.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        queries: torch.Tensor,  # [B*H, middle, block, d]
        key_blocks: torch.Tensor,  # [B, H*blocks, block, d]
        value_blocks: torch.Tensor,
        index: torch.Tensor,  # long [H, middle, slots] rows of key_blocks
        mask: torch.Tensor | None,  # bool, broadcastable to [B*H, middle, 1, slots*block]
    ) -> torch.Tensor:
        additive = None
        if mask is not None:
            additive = torch.zeros(mask.shape, dtype=queries.dtype, device=queries.device)
            additive.masked_fill_(~mask, float("-inf"))
        out = torch.empty_like(queries, memory_format=torch.contiguous_format)
        logsumexp = None
        for chunk, keys, values, chunk_mask in _chunks(
            queries, key_blocks, value_blocks, index, additive
        ):
            chunk_out, chunk_lse = _CPU_FLASH(queries[:, chunk], keys, values, attn_mask=chunk_mask)
            if logsumexp is None:
                logsumexp = chunk_lse.new_empty((*queries.shape[:2], chunk_lse.shape[-1]))
            out[:, chunk] = chunk_out
            logsumexp[:, chunk] = chunk_lse
        ctx.save_for_backward(queries, key_blocks, value_blocks, index, out, logsumexp)
        ctx.additive = additive
        return out

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad_out: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        queries, key_blocks, value_blocks, index, out, logsumexp = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_queries = torch.empty_like(queries, memory_format=torch.contiguous_format)
        grad_keys = torch.zeros_like(key_blocks)
        grad_values = torch.zeros_like(value_blocks)
        batch = key_blocks.shape[0]
        chunks = _chunks(queries, key_blocks, value_blocks, index, ctx.additive)
        for chunk, keys, values, chunk_mask in chunks:
            dq, dk, dv = _CPU_FLASH_BACKWARD(
                grad_out[:, chunk],
                queries[:, chunk],
                keys,
                values,
                out[:, chunk],
                logsumexp[:, chunk],
                0.0,
                False,
                attn_mask=chunk_mask,
            )
            grad_queries[:, chunk] = dq
            rows = index[:, chunk].reshape(-1)
            grad_keys.index_add_(1, rows, dk.reshape(batch, len(rows), *key_blocks.shape[2:]))
            grad_values.index_add_(1, rows, dv.reshape(batch, len(rows), *key_blocks.shape[2:]))
        return grad_queries, grad_keys, grad_values, None, None


def _chunks(
    queries: torch.Tensor,
    key_blocks: torch.Tensor,
    value_blocks: torch.Tensor,
    index: torch.Tensor,
    additive: torch.Tensor | None,
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """Yield (slice of query blocks, gathered keys, gathered values, mask slice) of ~CHUNK_BYTES."""
    batch_heads, middle, _, head_dim = queries.shape
    slots = index.shape[-1]
    per_block = batch_heads * slots * key_blocks.shape[2] * head_dim * queries.element_size()
    step = max(1, CHUNK_BYTES // per_block)
    for begin in range(0, middle, step):
        chunk = slice(begin, min(middle, begin + step))
        rows = index[:, chunk].reshape(-1)
        keys, values = (
            x.index_select(1, rows).view(batch_heads, chunk.stop - begin, -1, head_dim)
            for x in (key_blocks, value_blocks)
        )
        yield chunk, keys, values, None if additive is None else additive[:, chunk]
