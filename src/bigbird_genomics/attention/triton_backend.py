"""The `triton` backend: BigBird attention as one block-sparse Triton kernel per pass.

Memory O(N) without gathered copies: the backward keeps only q, k, v, the output and one
log-sum-exp per query. Global rows and columns are split into bounded segments (segments.py)
whose partial results are merged here in torch, exactly (log-sum-exp merge for the forward,
sums for the gradients). Needs Triton and a CUDA device; on the CPU it runs only under Triton's
interpreter (TRITON_INTERPRET=1), which is how the tests check it against the dense reference.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from functools import cache

import torch
from torch.autograd.function import once_differentiable

from bigbird_genomics.attention import segments
from bigbird_genomics.attention.config import SparsityConfig
from bigbird_genomics.attention.layout import NONE, block_layout, num_blocks_for
from bigbird_genomics.attention.masking import pad_tokens, real_token_mask, zero_padded_queries
from bigbird_genomics.attention.plans import cached_plan
from bigbird_genomics.attention.segments import SegmentTable, segment_table

LOG2E = math.log2(math.e)
# Kernel launch settings on the GPU (benchmarks/triton_launch_sweep.py measures others).
LAUNCH = {"num_warps": 4, "num_stages": 2}


def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (tests), not compiled on a GPU."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@cache
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def unsupported_reason(q: torch.Tensor, config: SparsityConfig) -> str | None:
    """Why the kernels cannot run these inputs (None when they can)."""
    head_dim, block = q.shape[-1], config.block_size
    if not triton_available():
        return "Triton is not installed (it comes with CUDA builds of torch)"
    if q.device.type != "cuda" and not interpreting():
        return f"it needs a CUDA device, got {q.device.type} (or TRITON_INTERPRET=1 for tests)"
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        return f"dtype {q.dtype} is not float16, bfloat16 or float32"
    for name, value in (("attention.block_size", block), ("head_dim", head_dim)):
        if value < 16 or value & (value - 1):
            return f"{name} must be a power of two >= 16 for its kernels, got {value}"
    return None


@cache
def verified(device: torch.device, dtype: torch.dtype, block_size: int, head_dim: int) -> bool:
    """Whether the kernels reproduce the dense reference on this device (checked once each).

    `auto` only picks kernels that passed this check on the machine at hand, so a Triton or
    driver version that miscompiles them costs speed (`block` is used), never correctness. The
    kernels are compiled once per dtype, block size, head size and masking (integer arguments
    are not specialised), and the check runs both masking variants: a whole number of blocks
    with one shared layout, and a padded batch with per-head random blocks; both split global
    rows and columns.
    """
    from bigbird_genomics.attention.dense import dense_attention

    num_blocks = 2 * segments.SEGMENT_BLOCKS + 8  # global rows and columns split into 3 segments
    generator = torch.Generator().manual_seed(0)
    try:
        # Also when first called under inference_mode or no_grad (say, by predict): the check
        # makes its own ordinary tensors and differentiates through them.
        with torch.inference_mode(False), torch.enable_grad(), torch.autocast(
            device.type, enabled=False
        ):
            for padded in (False, True):
                num_tokens = num_blocks * block_size - (block_size // 2 if padded else 0)
                shape = (2, 2, num_tokens, head_dim)
                inputs = [torch.randn(shape, generator=generator).to(device) for _ in range(4)]
                mask = None
                if padded:
                    mask = torch.ones(2, num_tokens, dtype=torch.bool, device=device)
                    mask[1, num_tokens // 3 :] = False
                config = SparsityConfig(block_size=block_size, random_per_head=padded, seed=11)
                got = _outputs_and_grads(triton_bigbird_attention, inputs, dtype, config, mask)
                want = _outputs_and_grads(dense_attention, inputs, torch.float64, config, mask)
                names = ("out", "dq", "dk", "dv")
                for name, got_tensor, want_tensor in zip(names, got, want, strict=True):
                    scale = float(want_tensor.abs().max()) or 1.0
                    tolerance = (1e-4 if dtype == torch.float32 else 3e-2) * scale
                    error = float((got_tensor.double() - want_tensor).abs().max())
                    if not error <= tolerance:  # also catches NaN
                        raise AssertionError(f"{name} differs by {error:.3g} (> {tolerance:.3g})")
    except Exception as problem:  # noqa: BLE001 - any failure means: do not use the kernels
        warnings.warn(
            f"the Triton attention kernels failed their check on {device} ({dtype}, block "
            f"{block_size}, head_dim {head_dim}): {problem}. Falling back to backend=block.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


def _outputs_and_grads(function, inputs, dtype, config, key_padding_mask):  # noqa: ANN001, ANN202
    q, k, v = (x.detach().to(dtype).requires_grad_(True) for x in inputs[:3])
    out = function(q, k, v, config, key_padding_mask=key_padding_mask)
    (out * inputs[3].to(dtype)).sum().backward()
    return out.detach(), q.grad, k.grad, v.grad


@dataclass(frozen=True)
class TritonPlan:
    rows: SegmentTable  # query block -> key blocks (forward and dQ)
    columns: SegmentTable  # key block -> query blocks (dK, dV)
    layout_heads: int


@cached_plan
def triton_plan(
    num_blocks: int,
    config: SparsityConfig,
    layer_index: int,
    step: int | None,
    num_heads: int,
    device: torch.device,
) -> TritonPlan:
    """Segment tables of one layout (cached per layer and step, like the other backends)."""
    allowed = block_layout(
        num_blocks, config, layer_index=layer_index, step=step, num_heads=num_heads
    ) != NONE
    rows = segment_table(allowed)
    # Every head has the same number of key blocks per query block (window, global, and as many
    # random blocks as exist), so the row merge never needs a trash group.
    assert not rows.padded, "query rows differ in length between heads"
    return TritonPlan(rows.to(device), segment_table(allowed.transpose(1, 2)).to(device),
                      allowed.shape[0])  # fmt: skip


def triton_bigbird_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SparsityConfig,
    *,
    layer_index: int = 0,
    key_padding_mask: torch.Tensor | None = None,
    step: int | None = None,
) -> torch.Tensor:
    """BigBird attention through the Triton kernels; exact w.r.t. `dense_attention`."""
    reason = unsupported_reason(q, config)
    if reason is not None:
        raise ValueError(f"attention.backend=triton cannot run here: {reason}. Use backend=auto.")
    batch, heads, num_tokens, head_dim = q.shape
    block = config.block_size
    num_blocks = num_blocks_for(num_tokens, block)
    num_padded = num_blocks * block
    real = real_token_mask(key_padding_mask, batch, num_tokens, num_padded, q.device)
    flat = [
        pad_tokens(x, num_padded).reshape(batch * heads, num_padded, head_dim).contiguous()
        for x in (q, k, v)
    ]
    plan = triton_plan(num_blocks, config, layer_index, step, heads, q.device)
    real_bytes = None if real is None else real.to(torch.int8).contiguous()
    out = _TritonAttention.apply(*flat, real_bytes, plan, heads, block)
    out = out.view(batch, heads, num_padded, head_dim)
    return zero_padded_queries(out, real)[:, :, :num_tokens]


class _TritonAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, real, plan, heads, block):  # noqa: ANN001, ANN205
        launch = _Launch(q, real, plan, heads, block)
        out, lse = launch.forward(q, k, v)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.launch = launch
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):  # noqa: ANN001, ANN205
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = ctx.launch.backward(q, k, v, out, lse, d_out.contiguous())
        return dq, dk, dv, None, None, None, None


class _Launch:
    """Kernel arguments shared by the three passes of one attention call (no activations: the
    backward gets q, k, v, out and lse from autograd's saved tensors)."""

    def __init__(self, q, real, plan: TritonPlan, heads: int, block: int) -> None:  # noqa: ANN001
        from bigbird_genomics.attention import triton_kernels

        self.kernels = triton_kernels
        self.real, self.plan, self.heads, self.block = real, plan, heads, block
        self.device = q.device
        self.batch_heads, self.num_padded, self.head_dim = q.shape
        self.num_blocks = self.num_padded // block
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.options = {
            "BLOCK": block,
            "HEAD_DIM": self.head_dim,
            "HAS_MASK": real is not None,
            # fp32 inputs: exact fp32 products (the default would be TF32 on Ampere and later)
            "PRECISION": "ieee" if q.dtype == torch.float32 else "tf32",
            **({} if interpreting() else LAUNCH),
        }

    def _table_args(self, table: SegmentTable) -> list:  # noqa: ANN401
        return [table.owner, table.start, table.end, table.dest, table.partners, self.heads,
                self.plan.layout_heads, table.num_segments, table.partners.shape[1],
                table.num_slots + 1, self.num_padded]  # fmt: skip

    def _grid(self, table: SegmentTable) -> tuple[int]:
        return (table.num_segments * self.batch_heads,)

    def _parts(self, table: SegmentTable, *trailing: int, fill: float = 0.0) -> torch.Tensor:
        """Scratch slots, all at the merge's identity: slots a head does not write stay so."""
        shape = (self.batch_heads, table.num_slots + 1, self.block, *trailing)
        return torch.full(shape, fill, dtype=torch.float32, device=self.device)

    def _real(self, fallback: torch.Tensor) -> torch.Tensor:
        return fallback if self.real is None else self.real  # any pointer when HAS_MASK is off

    def forward(self, q, k, v) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        rows = self.plan.rows
        out = torch.empty_like(q)
        lse = torch.empty(self.batch_heads, self.num_padded, dtype=torch.float32, device=k.device)
        out_part = self._parts(rows, self.head_dim)
        lse_part = self._parts(rows, fill=float("-inf"))
        self.kernels.forward_kernel[self._grid(rows)](
            q, k, v, out, lse, out_part, lse_part, self._real(q), *self._table_args(rows),
            self.scale * LOG2E, **self.options,
        )  # fmt: skip
        if rows.num_slots:
            self._merge_rows(out, lse, out_part, lse_part)
        # Rows without a real key: lse = +inf makes their probabilities exactly 0 in the backward.
        lse = lse.masked_fill(lse == float("-inf"), float("inf"))
        return out, lse

    def _merge_rows(self, out, lse, out_part, lse_part) -> None:  # noqa: ANN001
        """Combine the partial softmaxes of split (global) rows through their log-sum-exps."""
        group_slots, group_owner = self.plan.rows.group_slots[0], self.plan.rows.group_owner[0]
        lse_parts = lse_part[:, group_slots]  # [BH, groups, slots, block]
        row_max = lse_parts.amax(dim=2)
        row_max = row_max.masked_fill(row_max == float("-inf"), 0.0)
        weight = torch.exp2(lse_parts - row_max[:, :, None])
        total = weight.sum(dim=2)
        merged = (weight[..., None] * out_part[:, group_slots]).sum(dim=2)
        has_key = total > 0
        merged = merged / torch.where(has_key, total, 1.0)[..., None]
        merged_lse = torch.where(
            has_key, row_max + torch.log2(torch.where(has_key, total, 1.0)), float("-inf")
        )
        blocks = out.view(self.batch_heads, self.num_blocks, self.block, self.head_dim)
        blocks[:, group_owner] = merged.to(out.dtype)
        lse.view(self.batch_heads, self.num_blocks, self.block)[:, group_owner] = merged_lse

    def backward(self, q, k, v, out, lse, d_out) -> tuple[torch.Tensor, ...]:  # noqa: ANN001
        rows, columns = self.plan.rows, self.plan.columns
        delta = (d_out.float() * out.float()).sum(dim=-1)
        dq = torch.zeros_like(q)
        dq_part = self._parts(rows, self.head_dim)
        self.kernels.dq_kernel[self._grid(rows)](
            q, k, v, d_out, lse, delta, dq, dq_part, self._real(q), *self._table_args(rows),
            self.scale * LOG2E, self.scale, **self.options,
        )  # fmt: skip
        dk, dv = torch.zeros_like(k), torch.zeros_like(v)
        dk_part, dv_part = (self._parts(columns, self.head_dim) for _ in range(2))
        self.kernels.dkdv_kernel[self._grid(columns)](
            q, k, v, d_out, lse, delta, dk, dv, dk_part, dv_part, self._real(q),
            *self._table_args(columns), self.scale * LOG2E, self.scale, **self.options,
        )  # fmt: skip
        for grad, part, table in [(dq, dq_part, rows), (dk, dk_part, columns),
                                  (dv, dv_part, columns)]:  # fmt: skip
            if table.num_slots:
                self._add_parts(grad, part, table)
        return dq, dk, dv

    def _add_parts(self, grad: torch.Tensor, part: torch.Tensor, table: SegmentTable) -> None:
        """Sum the partial gradients of split owners in fp32, then add them to their blocks.

        Plain sums over each group's slots, not scatter-adds, keep gradients deterministic. The
        index_add below may use atomic adds on CUDA, but each block gets one real contribution
        (padding groups add exact zeros), so the order cannot change the bits.
        """
        rows = torch.arange(self.batch_heads, device=grad.device)
        # Layout head of each batch*heads row: heads share layout 0 unless random_per_head.
        layout_head = rows % self.heads % self.plan.layout_heads
        group_slots = table.group_slots[layout_head]  # [BH, groups, slots]
        group_owner = table.group_owner[layout_head]  # [BH, groups]
        sums = part[rows[:, None, None], group_slots].sum(dim=2)  # [BH, groups, block, d]
        flat = grad.view(self.batch_heads * self.num_blocks, self.block, self.head_dim)
        targets = (group_owner + rows[:, None] * self.num_blocks).flatten()
        flat.index_add_(0, targets, sums.flatten(0, 1).to(grad.dtype))
