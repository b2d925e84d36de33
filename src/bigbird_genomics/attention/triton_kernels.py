"""Triton kernels of the `triton` backend: block-sparse flash attention over segment lists.

Hand-written because no library kernel takes BigBird's layout as it is: FlexAttention needs
kernel tiles of 128 tokens here (64-token tiles did not compile with torch 2.11 on an H100, see
flex_tiles.py), so 64-token BigBird blocks cost it ~2.5x the work; transformers' BigBird
gathers into dense tensors. Each program owns one segment (segments.py): a query block and
<= 16 key blocks (forward, dQ), or a key block and <= 16 query blocks (dK/dV), and runs the
FlashAttention-2 recurrences over them with fp32 accumulation and base-2 exponentials.

Conventions: q, k, v, out, d_out are contiguous [batch*heads, padded tokens, head_dim];
log-sum-exps are base 2 of the scaled scores; a row without any real key stores lse = -inf
(forward) and is given +inf before the backward so that its probabilities are exactly 0;
`real` (int8 [batch, padded tokens]) marks real keys when HAS_MASK. Importing this module
needs Triton; CPU tests run it through Triton's interpreter (TRITON_INTERPRET=1).
"""

from __future__ import annotations

import triton
import triton.language as tl

# Integer arguments Triton must not specialise on (it compiles another kernel for a value of 1
# or a multiple of 16): one compiled kernel per dtype/block/head size/mask serves every layout,
# so the run-time check in triton_backend.verified() covers every variant `auto` may launch.
SCALARS = ["num_heads", "layout_heads", "num_segments", "num_entries", "num_slots", "num_padded"]


@triton.jit
def _segment(owner_ptr, start_ptr, end_ptr, dest_ptr, num_heads, layout_heads, num_segments):
    """(batch*heads index, batch, layout head, owner block, start, end, dest) of this program.

    One flat grid axis of segments x batch*heads (CUDA caps the second and third axes at
    65535, which a large batch of many heads would pass); neighbouring programs share a head.
    """
    program = tl.program_id(0).to(tl.int64)
    segment = program % num_segments
    bh = program // num_segments
    layout_head = (bh % num_heads) % layout_heads
    index = layout_head * num_segments + segment
    owner = tl.load(owner_ptr + index).to(tl.int64)
    start = tl.load(start_ptr + index)
    end = tl.load(end_ptr + index)
    dest = tl.load(dest_ptr + index)
    return bh, bh // num_heads, layout_head, owner, start, end, dest


@triton.jit
def _key_scores(q, k, real_ptr, batch, key_block, num_padded, scale_log2,
                BLOCK: tl.constexpr, HAS_MASK: tl.constexpr, PRECISION: tl.constexpr):
    """Scaled base-2 scores [BLOCK queries, BLOCK keys], padded keys at -inf."""
    scores = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale_log2
    if HAS_MASK:
        tokens = tl.arange(0, BLOCK)
        real = tl.load(real_ptr + batch * num_padded + key_block * BLOCK + tokens)
        scores = tl.where(real[None, :] != 0, scores, float("-inf"))
    return scores


@triton.jit(do_not_specialize=SCALARS)
def forward_kernel(
    q_ptr, k_ptr, v_ptr, out_ptr, lse_ptr, out_part_ptr, lse_part_ptr, real_ptr,
    owner_ptr, start_ptr, end_ptr, dest_ptr, partners_ptr,
    num_heads, layout_heads, num_segments, num_entries, num_slots, num_padded, scale_log2,
    BLOCK: tl.constexpr, HEAD_DIM: tl.constexpr, HAS_MASK: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    bh, batch, layout_head, query_block, start, end, dest = _segment(
        owner_ptr, start_ptr, end_ptr, dest_ptr, num_heads, layout_heads, num_segments
    )
    tokens = tl.arange(0, BLOCK)
    tile = tokens[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]
    base = bh * num_padded * HEAD_DIM
    q = tl.load(q_ptr + base + query_block * BLOCK * HEAD_DIM + tile)
    row_max = tl.full([BLOCK], float("-inf"), tl.float32)
    row_sum = tl.zeros([BLOCK], tl.float32)
    acc = tl.zeros([BLOCK, HEAD_DIM], tl.float32)
    for entry in range(start, end):
        key_block = tl.load(partners_ptr + layout_head * num_entries + entry).to(tl.int64)
        k = tl.load(k_ptr + base + key_block * BLOCK * HEAD_DIM + tile)
        v = tl.load(v_ptr + base + key_block * BLOCK * HEAD_DIM + tile)
        scores = _key_scores(q, k, real_ptr, batch, key_block, num_padded, scale_log2,
                             BLOCK, HAS_MASK, PRECISION)  # fmt: skip
        new_max = tl.maximum(row_max, tl.max(scores, 1))
        safe_max = tl.where(new_max == float("-inf"), 0.0, new_max)  # no -inf - -inf = NaN
        probs = tl.math.exp2(scores - safe_max[:, None])
        rescale = tl.math.exp2(row_max - safe_max)
        row_sum = row_sum * rescale + tl.sum(probs, 1)
        acc = acc * rescale[:, None] + tl.dot(
            probs.to(v_ptr.dtype.element_ty), v, input_precision=PRECISION
        )
        row_max = new_max
    has_key = row_sum > 0
    safe_sum = tl.where(has_key, row_sum, 1.0)
    out = acc / safe_sum[:, None]
    lse = tl.where(has_key, row_max + tl.math.log2(safe_sum), float("-inf"))
    if dest < 0:
        tl.store(out_ptr + base + query_block * BLOCK * HEAD_DIM + tile,
                 out.to(out_ptr.dtype.element_ty))  # fmt: skip
        tl.store(lse_ptr + bh * num_padded + query_block * BLOCK + tokens, lse)
    else:
        part = (bh * num_slots + dest) * BLOCK
        tl.store(out_part_ptr + part * HEAD_DIM + tile, out)
        tl.store(lse_part_ptr + part + tokens, lse)


@triton.jit
def _query_side(q_ptr, d_out_ptr, lse_ptr, delta_ptr, bh, query_block, num_padded,
                BLOCK: tl.constexpr, HEAD_DIM: tl.constexpr):  # fmt: skip
    """What the backward needs of one query block: q, dO, its lse and delta = rowsum(dO * O)."""
    tokens = tl.arange(0, BLOCK)
    tile = tokens[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]
    offset = (bh * num_padded + query_block * BLOCK) * HEAD_DIM
    rows = bh * num_padded + query_block * BLOCK + tokens
    q = tl.load(q_ptr + offset + tile)
    d_out = tl.load(d_out_ptr + offset + tile)
    return q, d_out, tl.load(lse_ptr + rows), tl.load(delta_ptr + rows)


@triton.jit(do_not_specialize=SCALARS)
def dq_kernel(
    q_ptr, k_ptr, v_ptr, d_out_ptr, lse_ptr, delta_ptr, dq_ptr, dq_part_ptr, real_ptr,
    owner_ptr, start_ptr, end_ptr, dest_ptr, partners_ptr,
    num_heads, layout_heads, num_segments, num_entries, num_slots, num_padded, scale_log2, scale,
    BLOCK: tl.constexpr, HEAD_DIM: tl.constexpr, HAS_MASK: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    bh, batch, layout_head, query_block, start, end, dest = _segment(
        owner_ptr, start_ptr, end_ptr, dest_ptr, num_heads, layout_heads, num_segments
    )
    tokens = tl.arange(0, BLOCK)
    tile = tokens[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]
    base = bh * num_padded * HEAD_DIM
    q, d_out, lse, delta = _query_side(q_ptr, d_out_ptr, lse_ptr, delta_ptr, bh, query_block,
                                       num_padded, BLOCK, HEAD_DIM)  # fmt: skip
    dq = tl.zeros([BLOCK, HEAD_DIM], tl.float32)
    for entry in range(start, end):
        key_block = tl.load(partners_ptr + layout_head * num_entries + entry).to(tl.int64)
        k = tl.load(k_ptr + base + key_block * BLOCK * HEAD_DIM + tile)
        v = tl.load(v_ptr + base + key_block * BLOCK * HEAD_DIM + tile)
        scores = _key_scores(q, k, real_ptr, batch, key_block, num_padded, scale_log2,
                             BLOCK, HAS_MASK, PRECISION)  # fmt: skip
        probs = tl.math.exp2(scores - lse[:, None])
        d_probs = tl.dot(d_out, tl.trans(v), input_precision=PRECISION)
        d_scores = probs * (d_probs - delta[:, None])
        dq += tl.dot(d_scores.to(k_ptr.dtype.element_ty), k, input_precision=PRECISION)
    dq = dq * scale
    if dest < 0:
        tl.store(dq_ptr + base + query_block * BLOCK * HEAD_DIM + tile,
                 dq.to(dq_ptr.dtype.element_ty))  # fmt: skip
    else:
        tl.store(dq_part_ptr + (bh * num_slots + dest) * BLOCK * HEAD_DIM + tile, dq)


@triton.jit(do_not_specialize=SCALARS)
def dkdv_kernel(
    q_ptr, k_ptr, v_ptr, d_out_ptr, lse_ptr, delta_ptr, dk_ptr, dv_ptr, dk_part_ptr, dv_part_ptr,
    real_ptr, owner_ptr, start_ptr, end_ptr, dest_ptr, partners_ptr,
    num_heads, layout_heads, num_segments, num_entries, num_slots, num_padded, scale_log2, scale,
    BLOCK: tl.constexpr, HEAD_DIM: tl.constexpr, HAS_MASK: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    bh, batch, layout_head, key_block, start, end, dest = _segment(
        owner_ptr, start_ptr, end_ptr, dest_ptr, num_heads, layout_heads, num_segments
    )
    tokens = tl.arange(0, BLOCK)
    tile = tokens[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]
    base = bh * num_padded * HEAD_DIM
    k = tl.load(k_ptr + base + key_block * BLOCK * HEAD_DIM + tile)
    v = tl.load(v_ptr + base + key_block * BLOCK * HEAD_DIM + tile)
    dk = tl.zeros([BLOCK, HEAD_DIM], tl.float32)
    dv = tl.zeros([BLOCK, HEAD_DIM], tl.float32)
    for entry in range(start, end):
        query_block = tl.load(partners_ptr + layout_head * num_entries + entry).to(tl.int64)
        q, d_out, lse, delta = _query_side(q_ptr, d_out_ptr, lse_ptr, delta_ptr, bh, query_block,
                                           num_padded, BLOCK, HEAD_DIM)  # fmt: skip
        scores = _key_scores(q, k, real_ptr, batch, key_block, num_padded, scale_log2,
                             BLOCK, HAS_MASK, PRECISION)  # fmt: skip
        probs = tl.math.exp2(scores - lse[:, None])  # [queries, keys]
        dv += tl.dot(tl.trans(probs.to(d_out_ptr.dtype.element_ty)), d_out,
                     input_precision=PRECISION)  # fmt: skip
        d_probs = tl.dot(d_out, tl.trans(v), input_precision=PRECISION)
        d_scores = probs * (d_probs - delta[:, None])
        dk += tl.dot(tl.trans(d_scores.to(q_ptr.dtype.element_ty)), q, input_precision=PRECISION)
    dk = dk * scale
    if dest < 0:
        own = base + key_block * BLOCK * HEAD_DIM + tile
        tl.store(dk_ptr + own, dk.to(dk_ptr.dtype.element_ty))
        tl.store(dv_ptr + own, dv.to(dv_ptr.dtype.element_ty))
    else:
        part = (bh * num_slots + dest) * BLOCK * HEAD_DIM
        tl.store(dk_part_ptr + part + tile, dk)
        tl.store(dv_part_ptr + part + tile, dv)
