"""CPU path of the block backend: the CPU flash-attention kernels on gathered and sliced blocks.

One autograd Function computes the whole BigBird pattern and keeps O(N*d) state:

- Global query rows (all global query blocks at once) attend to every key. The keys are cut into
  contiguous pieces of ~GLOBAL_PIECE_TOKENS that are views of k and v (no copy); each piece is
  one batch entry of the flash kernel, and the pieces' partial results are merged exactly by
  their log-sum-exp. A 128-row query against 1024-key pieces ran at ~57 GFLOP/s fwd+bwd on one
  thread, against ~43 GFLOP/s for one SDPA call over the whole sequence (16k tokens).
- Middle (non-global) query blocks each attend to `slots` key blocks gathered by index_select
  into buffers reused across chunks of ~CHUNK_BYTES; each query block is its own batch entry.
- The backward pass re-gathers chunk by chunk, and hands the flash backward the merged output
  and log-sum-exp, which makes every piece's gradient exactly its share of the whole row's.
  Gradients of k and v from both parts accumulate into one buffer (no autograd sum of two
  full-size gradients).

Rows without any attendable key output zeros; their log-sum-exp is set to +inf for the backward,
so that exp(score - lse) and with it every gradient from them is zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, partial

import torch
import torch.nn.functional as F

from bigbird_genomics.attention import matmul_kernels

# CPU flash-attention kernels behind F.scaled_dot_product_attention, called directly so that the
# backward pass can re-gather key blocks chunk by chunk instead of keeping them all.
_CPU_FLASH = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_CPU_FLASH_BACKWARD = getattr(
    torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None
)
# Gathered keys per chunk of middle query blocks (values take as much again).
CHUNK_BYTES = 8 * 2**20
# Keys per piece of the global rows: 512 to 2048 ran equally fast (1 thread, 16k tokens).
GLOBAL_PIECE_TOKENS = 1024
# Scores of the global rows per call of the bf16 matmul kernels (counted as float32).
GLOBAL_SCORE_BYTES = 32 * 2**20


@cache
def cpu_flash_available() -> bool:
    """True when this torch's CPU flash-attention kernels exist and work as they are called here.

    They are private aten ops, so a torch release may drop them or change their signature or
    outputs: one tiny forward + backward, checked against autograd through SDPA, decides once
    per process; otherwise the block backend takes its plain autograd path.
    """
    if _CPU_FLASH is None or _CPU_FLASH_BACKWARD is None:
        return False
    try:
        return _kernels_match_sdpa()
    except (RuntimeError, TypeError, ValueError, IndexError):
        return False


@dataclass(frozen=True)
class CpuPlan:
    """What the CPU Function needs from the block layout (see block.GatherPlan)."""

    block_size: int
    leading: int  # global query blocks at the start
    trailing: int  # global query blocks at the end
    index: torch.Tensor  # long [heads, middle, slots]: rows of k.view(B, H*blocks, block, d)
    slot_valid: torch.Tensor | None  # bool [layout_heads, middle, slots]; None = all valid


class BlockSparseCpuAttention(torch.autograd.Function):
    """BigBird attention of padded q, k, v [B, H, blocks*block, d] through the CPU flash kernels.

    `real`: bool [B, padded tokens] (True = real key) or None. Query rows are not zeroed for
    padding here (the caller does that); rows with no attendable key output zeros.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        plan: CpuPlan,
        real: torch.Tensor | None,
    ) -> torch.Tensor:
        q, k, v = (x.contiguous() for x in (q, k, v))
        batch, heads, num_padded, head_dim = q.shape
        out = q.new_empty(q.shape)
        # The kernels return the log-sum-exp in float32 for half-precision inputs.
        lse_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
        lse = torch.empty(q.shape[:3], dtype=lse_dtype, device=q.device)
        additive = _additive_key_mask(real, q.dtype)
        work = _Work(q, k, v, plan, real, additive)
        if work.global_rows:
            global_out, global_lse = _global_forward(work)
            _put_global_rows(work, out, global_out)
            _put_global_rows(work, lse, global_lse)
        if work.middle:
            _middle_forward(work, out, lse)
        ctx.save_for_backward(q, k, v, out, lse, real, additive)
        ctx.plan = plan
        return out

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad_out: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        q, k, v, out, lse, real, additive = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        work = _Work(q, k, v, ctx.plan, real, additive)
        grad_q = torch.empty_like(q)  # every row is written: global rows, then middle blocks
        grad_k = torch.zeros_like(k)
        grad_v = torch.zeros_like(v)
        if work.global_rows:
            _global_backward(work, grad_out, out, lse, grad_q, grad_k, grad_v)
        if work.middle:
            _middle_backward(work, grad_out, out, lse, grad_q, grad_k, grad_v)
        return grad_q, grad_k, grad_v, None, None


class _Work:
    """Shapes and views shared by the forward and backward passes."""

    def __init__(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        plan: CpuPlan,
        real: torch.Tensor | None,
        additive: torch.Tensor | None,
    ) -> None:
        self.q, self.k, self.v, self.plan, self.real, self.additive = q, k, v, plan, real, additive
        self.batch, self.heads, self.num_padded, self.head_dim = q.shape
        self.block = plan.block_size
        self.num_blocks = self.num_padded // self.block
        self.lead_end = plan.leading * self.block
        self.trail_start = self.num_padded - plan.trailing * self.block
        self.global_rows = self.lead_end + self.num_padded - self.trail_start
        self.middle = self.num_blocks - plan.leading - plan.trailing
        kernels = _kernels(q.dtype)
        self.forward_kernel, self.row_forward_kernel = kernels[:2]
        self.backward_kernel, self.row_backward_kernel = kernels[2:]
        # The matmul kernels hold a call's whole score matrix (flash ones tile it internally):
        # bound the global rows' pieces per call by GLOBAL_SCORE_BYTES.
        self.pieces_per_call = None
        if self.forward_kernel is matmul_kernels.attention_forward:
            piece = self.block * max(1, GLOBAL_PIECE_TOKENS // self.block)
            per_piece = self.batch * self.heads * self.global_rows * piece * 4  # float32 scores
            self.pieces_per_call = max(1, GLOBAL_SCORE_BYTES // max(1, per_piece))

    def global_slice(self, x: torch.Tensor) -> torch.Tensor:
        """Rows of the global query blocks of x [B, H, tokens, ...], leading then trailing."""
        if self.trail_start == self.num_padded:
            return x[:, :, : self.lead_end]
        if self.lead_end == 0:
            return x[:, :, self.trail_start :]
        return torch.cat([x[:, :, : self.lead_end], x[:, :, self.trail_start :]], dim=2)

    def pieces(self) -> Iterator[slice]:
        """Key spans of the global rows, one kernel call each: runs of equal pieces (all of
        them, or `pieces_per_call` at a time), then the remainder as one more piece."""
        size = max(1, GLOBAL_PIECE_TOKENS // self.block) * self.block
        whole = (self.num_padded // size) * size
        step = whole if self.pieces_per_call is None else self.pieces_per_call * size
        for start in range(0, whole, max(step, 1)):
            yield slice(start, min(whole, start + step))
        if whole < self.num_padded:
            yield slice(whole, self.num_padded)

    def piece_tokens(self, span: slice) -> int:
        size = max(1, GLOBAL_PIECE_TOKENS // self.block) * self.block
        return min(size, span.stop - span.start)


def _kernels(dtype: torch.dtype) -> tuple[Callable, Callable, Callable, Callable]:
    """(forward, forward of whole rows, backward, backward of whole rows) tile kernels: bf16
    matrix products where the CPU has fast bf16 GEMMs (`matmul_kernels`: the flash kernels gain
    nothing from bf16), else the flash kernels. Whole rows are the middle blocks' (each query
    row sees all its keys in one call); the global rows come in pieces."""
    if dtype == torch.bfloat16 and matmul_kernels.bf16_matmul_is_fast():
        forward, backward = matmul_kernels.attention_forward, matmul_kernels.attention_backward
        rows = partial(forward, whole_rows=True), partial(backward, whole_rows=True)
        return forward, rows[0], backward, rows[1]
    return _CPU_FLASH, _CPU_FLASH, _CPU_FLASH_BACKWARD, _CPU_FLASH_BACKWARD


def _additive_key_mask(real: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """float [B, tokens]: 0 for real keys, -inf for padding; None when every key is real."""
    if real is None:
        return None
    additive = torch.zeros(real.shape, dtype=dtype, device=real.device)
    return additive.masked_fill_(~real, float("-inf"))


def _put_global_rows(work: _Work, target: torch.Tensor, rows: torch.Tensor) -> None:
    target[:, :, : work.lead_end] = rows[:, :, : work.lead_end]
    target[:, :, work.trail_start :] = rows[:, :, work.lead_end :]


# ---------------------------------------------------------------- global query rows


def _piece_inputs(work: _Work, span: slice, rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(pieces, keys, values, mask) of one span: the kernel's batch is B*H, its heads pieces.

    `rows` [B, H, G, ...] is repeated once per piece ([B*H, pieces, G, ...], small); keys and
    values are views [B*H, pieces, piece, d] of k and v; mask is additive [B*H, pieces, 1, piece]
    or None.
    """
    length = work.piece_tokens(span)
    count = (span.stop - span.start) // length
    batch_heads = work.batch * work.heads
    keys, values = (
        x[:, :, span].reshape(batch_heads, count, length, work.head_dim) for x in (work.k, work.v)
    )
    mask = None
    if work.additive is not None:
        part = work.additive[:, span].reshape(work.batch, 1, count, 1, length)
        mask = part.expand(-1, work.heads, -1, -1, -1).reshape(batch_heads, count, 1, length)
    return count, keys, values, mask


def _repeat_pieces(x: torch.Tensor, count: int) -> torch.Tensor:
    """[B, H, G, ...] -> [B*H, count, G, ...] (copies: the kernel reads dense inputs)."""
    batch, heads = x.shape[:2]
    expanded = x.unsqueeze(2).expand(batch, heads, count, *x.shape[2:])
    return expanded.reshape(batch * heads, count, *x.shape[2:])


def _global_forward(work: _Work) -> tuple[torch.Tensor, torch.Tensor]:
    """(out [B, H, G, d], lse [B, H, G]) of the global query rows over all keys."""
    rows = work.global_slice(work.q)
    outs, lses = [], []
    for span in work.pieces():
        count, keys, values, mask = _piece_inputs(work, span, rows)
        piece_out, piece_lse = work.forward_kernel(
            _repeat_pieces(rows, count), keys, values, attn_mask=mask
        )
        if mask is not None:
            # A piece with no real key: the kernel returns zeros; it must weigh nothing.
            dead = ~torch.isfinite(mask).any(dim=-1)  # [B*H, pieces, 1]
            piece_lse = piece_lse.masked_fill(dead, float("-inf"))
        outs.append(piece_out)
        lses.append(piece_lse)
    piece_out, piece_lse = torch.cat(outs, dim=1), torch.cat(lses, dim=1)  # [B*H, P, G(, d)]
    lse = torch.logsumexp(piece_lse, dim=1)  # [B*H, G]; -inf where no key at all
    finite = torch.isfinite(lse)
    weights = torch.exp(piece_lse - torch.where(finite, lse, 0.0).unsqueeze(1))
    out = (weights.unsqueeze(-1) * piece_out).sum(dim=1)
    lse = lse.masked_fill(~finite, float("inf"))  # no key: zero output, zero gradients
    shape = (work.batch, work.heads, work.global_rows)
    return out.view(*shape, work.head_dim), lse.view(shape)


def _global_backward(
    work: _Work,
    grad_out: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    grad_q: torch.Tensor,
    grad_k: torch.Tensor,
    grad_v: torch.Tensor,
) -> None:
    rows = work.global_slice(work.q)
    rows_grad, rows_out, rows_lse = (work.global_slice(x) for x in (grad_out, out, lse))
    grad_rows = torch.zeros_like(rows).view(work.batch * work.heads, work.global_rows, -1)
    for span in work.pieces():
        count, keys, values, mask = _piece_inputs(work, span, rows)
        dq, dk, dv = work.backward_kernel(
            _repeat_pieces(rows_grad, count),
            _repeat_pieces(rows, count),
            keys,
            values,
            _repeat_pieces(rows_out, count),
            _repeat_pieces(rows_lse, count),
            0.0,
            False,
            attn_mask=mask,
        )
        grad_rows += dq.sum(dim=1)
        grad_k[:, :, span] += dk.reshape(grad_k[:, :, span].shape)
        grad_v[:, :, span] += dv.reshape(grad_v[:, :, span].shape)
    _put_global_rows(work, grad_q, grad_rows.view(rows.shape))


# ---------------------------------------------------------------- middle query blocks


@dataclass
class _Chunk:
    span: slice  # middle query blocks of this chunk
    rows: torch.Tensor  # gathered rows of the key blocks, [H * blocks in chunk * slots]
    keys: torch.Tensor  # [B*H*blocks in chunk, 1, slots*block, d]
    values: torch.Tensor
    mask: torch.Tensor | None  # additive [B*H*blocks in chunk, 1, 1, slots*block]
    has_key: torch.Tensor | None  # bool [B*H*blocks in chunk, 1, 1]; None = all rows have one


def _chunks(work: _Work) -> Iterator[_Chunk]:
    """Split the middle query blocks into chunks whose gathered keys take ~CHUNK_BYTES."""
    plan = work.plan
    index = plan.index
    slots = index.shape[-1]
    batch_heads = work.batch * work.heads
    per_block = batch_heads * slots * work.block * work.head_dim * work.q.element_size()
    step = max(1, CHUNK_BYTES // per_block)
    blocks_view = (work.batch, work.heads * work.num_blocks, work.block, work.head_dim)
    key_blocks, value_blocks = (x.view(blocks_view) for x in (work.k, work.v))
    key_buffer = value_buffer = None
    for begin in range(0, work.middle, step):
        span = slice(begin, min(work.middle, begin + step))
        size = span.stop - begin
        rows = index[:, span].reshape(-1)
        gathered_shape = (work.batch, len(rows), work.block, work.head_dim)
        if key_buffer is None:
            full = work.batch * index[:, :size].numel() * work.block * work.head_dim
            key_buffer, value_buffer = (work.k.new_empty(full) for _ in range(2))
        # The buffers are reused: the kernel copies nothing it keeps past the call. Flat
        # storage, so a shorter last chunk is a contiguous prefix (a [:, :rows] slice of a
        # batched buffer would not be, and the flat view below would fail for batch > 1).
        used = work.batch * len(rows) * work.block * work.head_dim
        keys = torch.index_select(
            key_blocks, 1, rows, out=key_buffer[:used].view(gathered_shape)
        )
        values = torch.index_select(
            value_blocks, 1, rows, out=value_buffer[:used].view(gathered_shape)
        )
        assert keys.shape == gathered_shape
        flat = (batch_heads * size, 1, slots * work.block, work.head_dim)
        mask, has_key = _chunk_mask(work, span, slots)
        yield _Chunk(span, rows, keys.view(flat), values.view(flat), mask, has_key)


def _chunk_mask(
    work: _Work, span: slice, slots: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Additive mask of a chunk's gathered keys (unused slots, padded keys), or None."""
    plan = work.plan
    slot_valid = None if plan.slot_valid is None else plan.slot_valid[:, span]
    if slot_valid is not None and bool(slot_valid.all()):
        slot_valid = None
    if slot_valid is None and work.additive is None:
        return None, None
    size = span.stop - span.start
    layout_heads = 1 if plan.index.shape[0] == 1 else work.heads
    mask = torch.zeros(
        (1, layout_heads, size, slots, work.block), dtype=work.q.dtype, device=work.q.device
    )
    if slot_valid is not None:
        invalid = ~slot_valid[None, :, :, :, None].expand_as(mask)
        mask = mask.masked_fill(invalid, float("-inf"))
    if work.additive is not None:
        key_rows = plan.index[:layout_heads, span] % work.num_blocks  # [H', size, slots]
        padded = work.additive.view(work.batch, 1, work.num_blocks, work.block)
        mask = mask + padded[:, :, key_rows].squeeze(1)  # [B, H', size, slots, block]
    mask = mask.expand(work.batch, work.heads, -1, -1, -1).reshape(
        work.batch * work.heads * size, 1, 1, slots * work.block
    )
    has_key = torch.isfinite(mask).any(dim=-1)  # [B*H*size, 1, 1]
    return mask, (None if bool(has_key.all()) else has_key)


def _per_block(x: torch.Tensor, work: _Work, span: slice) -> torch.Tensor:
    """Rows of the middle blocks in `span` of x [B, H, tokens, ...] as [B*H*span, 1, block, ...]."""
    begin = work.lead_end + span.start * work.block
    part = x[:, :, begin : begin + (span.stop - span.start) * work.block]
    return part.reshape(-1, 1, work.block, *x.shape[3:])


def _middle_forward(work: _Work, out: torch.Tensor, lse: torch.Tensor) -> None:
    for chunk in _chunks(work):
        chunk_out, chunk_lse = work.row_forward_kernel(
            _per_block(work.q, work, chunk.span), chunk.keys, chunk.values, attn_mask=chunk.mask
        )
        if chunk.has_key is not None:
            # No attendable key: zero output, and +inf log-sum-exp zeroes the gradients.
            chunk_out = chunk_out.masked_fill(~chunk.has_key.unsqueeze(-1), 0.0)
            chunk_lse = chunk_lse.masked_fill(~chunk.has_key, float("inf"))
        _write_rows(out, work, chunk.span, chunk_out)
        _write_rows(lse, work, chunk.span, chunk_lse)


def _write_rows(target: torch.Tensor, work: _Work, span: slice, rows: torch.Tensor) -> None:
    begin = work.lead_end + span.start * work.block
    part = target[:, :, begin : begin + (span.stop - span.start) * work.block]
    part.copy_(rows.reshape(part.shape))


def _middle_backward(
    work: _Work,
    grad_out: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    grad_q: torch.Tensor,
    grad_k: torch.Tensor,
    grad_v: torch.Tensor,
) -> None:
    blocks_view = (work.batch, work.heads * work.num_blocks, work.block, work.head_dim)
    grad_key_blocks, grad_value_blocks = (x.view(blocks_view) for x in (grad_k, grad_v))
    for chunk in _chunks(work):
        dq, dk, dv = work.row_backward_kernel(
            _per_block(grad_out, work, chunk.span),
            _per_block(work.q, work, chunk.span),
            chunk.keys,
            chunk.values,
            _per_block(out, work, chunk.span),
            _per_block(lse.unsqueeze(-1), work, chunk.span).squeeze(-1),
            0.0,
            False,
            attn_mask=chunk.mask,
        )
        _write_rows(grad_q, work, chunk.span, dq)
        block_shape = (work.batch, len(chunk.rows), work.block, work.head_dim)
        grad_key_blocks.index_add_(1, chunk.rows, dk.reshape(block_shape))
        grad_value_blocks.index_add_(1, chunk.rows, dv.reshape(block_shape))


# ---------------------------------------------------------------- probe


def _kernels_match_sdpa() -> bool:
    """Four blocks of 4 tokens: one global block, each middle block seeing 2 key blocks, the
    last key padded; the Function against autograd through SDPA with the same mask (own RNG).

    Autocast is off: the first call may come from a model under bf16 autocast (Lightning's
    bf16-mixed), which would run the reference in bf16, fail the float32 comparison and turn
    the fast path off for the whole process."""
    with (
        torch.inference_mode(False),
        torch.enable_grad(),
        torch.autocast("cpu", enabled=False),
    ):
        generator = torch.Generator().manual_seed(0)
        q, k, v, grad_out = (torch.randn(1, 1, 16, 8, generator=generator) for _ in range(4))
        plan = CpuPlan(
            block_size=4,
            leading=1,
            trailing=0,
            index=torch.tensor([[[0, 1], [0, 2], [0, 3]]]),
            slot_valid=None,
        )
        real = torch.ones(1, 16, dtype=torch.bool)
        real[0, -1] = False
        allowed = torch.zeros(4, 4, dtype=torch.bool)
        allowed[0] = True
        allowed[torch.arange(1, 4), 0] = True
        allowed[torch.arange(1, 4), torch.arange(1, 4)] = True
        mask = allowed.repeat_interleave(4, 0).repeat_interleave(4, 1) & real[0]
        fast_inputs, slow_inputs = (
            [x.clone().requires_grad_(True) for x in (q, k, v)] for _ in range(2)
        )
        fast = BlockSparseCpuAttention.apply(*fast_inputs, plan, real)
        slow = F.scaled_dot_product_attention(*slow_inputs, attn_mask=mask)
        fast_results = (fast, *torch.autograd.grad(fast, fast_inputs, grad_out))
        slow_results = (slow, *torch.autograd.grad(slow, slow_inputs, grad_out))
    return all(
        a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
        for a, b in zip(fast_results, slow_results, strict=True)
    )
