"""bf16 attention of small tiles by batched matrix products: the CPU path's kernels for bf16.

Why by hand: torch's CPU flash-attention kernels take bf16 inputs but run no faster than in
float32 (16k tokens, fwd+bwd, 1 thread: 722 ms against 662 ms for float32), whereas
`torch.bmm` in bf16 goes to oneDNN's bf16 GEMMs, ~2x the float32 rate on CPUs with
AVX512-BF16 or AMX; these kernels took 622 ms there (docs/benchmarks.md). The block backend's
tiles are small (a 64-row query block against a few hundred gathered keys), so their scores
fit in memory chunk by chunk (`chunked` bounds the global rows' calls too) and plain matrix
products with a float32-accumulated softmax in between are the cheapest exact route.

The two functions take and return what `aten._scaled_dot_product_flash_attention_for_cpu` and
its backward do (q, k, v [B, H, L, d]; an additive mask broadcastable to [B, H, L, S]; the
log-sum-exp [B, H, L] in float32), so `chunked` calls either set. Scores come out of the bf16
GEMM rounded to bf16 (as in any bf16 matmul attention); the softmax, its log-sum-exp and the
gradient of the scores are float32, and P and dS are rounded to bf16 for their products, as
flash attention does on GPUs. A row without any attendable key gives zeros and a log-sum-exp of
-inf; a log-sum-exp of +inf given to the backward zeroes that row's gradients.
"""

from __future__ import annotations

import math
from functools import cache

import torch


@cache
def bf16_matmul_is_fast() -> bool:
    """True when this CPU has native bf16 GEMMs (AVX512-BF16 or AMX).

    Without them oneDNN emulates bf16 and the flash kernels are the better choice. (oneDNN's
    own `_is_mkldnn_bf16_supported` also says yes for AVX-512 CPUs that emulate bf16.)
    """
    checks = (
        getattr(torch.cpu, "_is_avx512_bf16_supported", None),
        getattr(torch.cpu, "_is_amx_tile_supported", None),
    )
    try:
        return any(check is not None and bool(check()) for check in checks)
    except RuntimeError:
        return False


def _scores(
    q_scaled: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(bf16 scores q k^T / sqrt(d) + mask [B, H, L, S], bool [B, H, L] rows without any key).

    Rows without a key get scores of 0 (a uniform softmax, no NaN); callers zero them after.
    """
    scores = torch.matmul(q_scaled, k.transpose(-1, -2))
    if mask is None:
        return scores, None
    scores.add_(mask)
    dead = scores.amax(dim=-1) == -torch.inf
    if bool(dead.any()):
        scores.masked_fill_(dead.unsqueeze(-1), 0.0)
        return scores, dead
    return scores, None


def _softmax_and_lse(
    scores: torch.Tensor, exact_lse: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(softmax in the scores' dtype, log-sum-exp in float32 or wider).

    `exact_lse` (the pieces of a global row, weighed against each other by their lse):
    lse = max(s) + log(sum(exp(s - max(s)))) with the sum accumulated in float32 over the
    tile's own dtype, so rounding errors average out over the row; a float32 softmax would be
    4-7x slower on CPU than the fused bf16 one. Otherwise (whole rows, whose lse only marks rows
    without keys) one fused softmax and lse = max(s) - log(max(p)), within ~4e-3 of it.
    """
    wide = _wide(scores.dtype)
    if exact_lse:
        top = scores.amax(dim=-1, keepdim=True)
        exponentials = (scores - top).exp_()
        total = exponentials.sum(dim=-1, keepdim=True, dtype=wide)
        lse = (top.to(wide) + total.log()).squeeze(-1)
        return exponentials.div_(total.to(scores.dtype)), lse
    probabilities = torch.softmax(scores, dim=-1)
    lse = scores.amax(dim=-1).to(wide) - probabilities.amax(dim=-1).to(wide).log()
    return probabilities, lse


def _wide(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision tiles (as the flash kernels keep them), else the tiles' own."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _scale(q: torch.Tensor) -> float:
    return 1.0 / math.sqrt(q.shape[-1])


def attention_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    *,
    whole_rows: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(out [B, H, L, d] in q's dtype, lse [B, H, L]) of softmax(q k^T / sqrt(d) + mask) v.

    lse is float32 (float64 for float64 tiles). With `whole_rows` (each row is a whole
    attention row, whose backward reads lse only to find rows without keys) lse is within ~4e-3
    and the softmax cheaper; otherwise exact to float32, for merging the pieces of a row."""
    scores, dead = _scores(q * _scale(q), k, attn_mask)
    probabilities, lse = _softmax_and_lse(scores, exact_lse=not whole_rows)
    out = torch.matmul(probabilities, v)
    if dead is not None:
        out.masked_fill_(dead.unsqueeze(-1), 0.0)
        lse.masked_fill_(dead, -torch.inf)
    return out, lse


def attention_backward(
    grad_out: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *,
    attn_mask: torch.Tensor | None = None,
    whole_rows: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dq, dk, dv) of `attention_forward`, given its output and log-sum-exp.

    `out` and `lse` may be those of a longer row that this tile is one piece of (the global
    rows): the gradient is then exactly this piece's share, as with the flash backward. With
    `whole_rows` (each tile row is a whole attention row: the middle blocks) the softmax
    gradient is one fused op.
    """
    if dropout_p or is_causal:
        raise ValueError("the bf16 matmul kernels implement neither dropout nor causal masks")
    scale = _scale(q)
    q_scaled = q * scale
    scores, dead = _scores(q_scaled, k, attn_mask)
    # Rows without a key in this tile, or whose whole row had none (lse +inf), get no gradient.
    no_key = torch.isinf(lse) if dead is None else dead | torch.isinf(lse)
    if whole_rows:
        probabilities = torch.softmax(scores, dim=-1)
    else:
        # This tile's share of the row: exp(s - lse) = softmax(s) * exp(tile lse - lse).
        probabilities, tile_lse = _softmax_and_lse(scores)
        share = torch.exp(tile_lse - lse.to(tile_lse.dtype)).masked_fill_(no_key, 0.0)
        probabilities.mul_(share.unsqueeze(-1).to(probabilities.dtype))
    if bool(no_key.any()):
        probabilities.masked_fill_(no_key.unsqueeze(-1), 0.0)
    grad_v = torch.matmul(probabilities.transpose(-1, -2), grad_out)
    grad_probabilities = torch.matmul(grad_out, v.transpose(-1, -2))
    if whole_rows:
        # P * (dP - rowsum(P * dP)); rowsum(P * dP) = rowsum(dO * O) for a whole row.
        grad_scores = torch._softmax_backward_data(
            grad_probabilities, probabilities, -1, probabilities.dtype
        )
    else:
        # dS = P * (dP - rowsum(dO * O)), with the whole row's output O.
        wide = _wide(q.dtype)
        row_dot = (grad_out.to(wide) * out.to(wide)).sum(dim=-1, keepdim=True)
        grad_scores = grad_probabilities.to(wide).sub_(row_dot).mul_(probabilities)
        grad_scores = grad_scores.to(q.dtype)
    grad_q = torch.matmul(grad_scores, k).mul_(scale)
    grad_k = torch.matmul(grad_scores.transpose(-1, -2), q_scaled)
    return grad_q, grad_k, grad_v
