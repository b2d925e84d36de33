"""BigBird block-sparse attention (knows nothing of DNA).

Semantics, shared by every backend:

- q, k, v are [batch, heads, tokens, head_dim] with any token count. Tokens are split into blocks
  of `block_size`; the sequence is padded to a multiple of it. Padded positions (block padding and
  `key_padding_mask == False`) are never attended as keys, and their query rows output zeros. A
  query row left with no attendable key also outputs zeros (never NaN).
- Each query block attends to the union of: `num_window_blocks` (odd) blocks centred on itself;
  the global blocks (first ceil(g/2) and last floor(g/2) of the padded sequence; global query
  blocks attend to everything and every block attends to them); and `num_random_blocks` key
  blocks drawn uniformly without repeats from the blocks that are neither window nor global,
  over the whole sequence. If fewer such blocks exist, fewer are drawn: never repeats, never a
  silent switch to full attention (only when the global blocks cover everything is it full).
- Random blocks come from (seed, layer_index) and per head when `random_per_head`. With
  `step=None` the layout is fixed (evaluation and prediction are deterministic); passing the
  training step re-draws the random blocks for each step.
- The layout is a function of the padded length, not of each example's real length: the key
  padding of a batch masks keys but does not move the last global block. Callers that need a
  record's output to be independent of its batch neighbours batch records of equal block
  count (`inference.LoadedModel.predict_proba` does).

Backends: `dense` (boolean [N, N] mask + SDPA, the reference), `block` (gather key blocks per
query block, one batched SDPA; O(N) memory; the training path on CPU), `triton` (the project's
block-sparse flash kernels, triton_kernels.py; CUDA, O(N) memory without gathered copies),
`flex` (FlexAttention with a BlockMask from the same layout, on 128-token kernel tiles; CUDA,
CPU forward only), `full` (ordinary attention, no sparsity, same padding rules), `auto`
(`dense` for inputs of a few blocks; on CUDA `triton` when its kernels fit the shapes and passed
their check on this machine, else `block`). Measured on an H100 (bf16, 12 heads, fwd+bwd, 65536
tokens): triton 3.7 ms, block 13.3 ms, FlexAttention 16.0 ms (balanced layout) and 20.5 ms
(plain), dense SDPA 99.7 ms.
`first_row_attention` gives query row 0 alone under the same pattern (a mask over one row + SDPA):
the last layer of a [CLS] classifier needs nothing else.
"""

from __future__ import annotations

import torch

from bigbird_genomics.attention.backend import AttentionBackend
from bigbird_genomics.attention.block import block_attention
from bigbird_genomics.attention.config import BACKENDS, SparsityConfig
from bigbird_genomics.attention.dense import dense_attention, full_backend
from bigbird_genomics.attention.first_row import first_row_attention
from bigbird_genomics.attention.flex import flex_bigbird_attention
from bigbird_genomics.attention.layout import block_layout, dense_mask, num_blocks_for
from bigbird_genomics.attention.triton_backend import (
    triton_bigbird_attention,
    unsupported_reason,
    verified,
)

__all__ = [
    "BACKENDS",
    "SparsityConfig",
    "bigbird_attention",
    "block_layout",
    "dense_mask",
    "first_row_attention",
    "resolve_backend",
]


# The function behind each concrete backend name (`auto` resolves to one of them).
BACKEND_FUNCTIONS: dict[str, AttentionBackend] = {
    "dense": dense_attention,
    "block": block_attention,
    "flex": flex_bigbird_attention,
    "triton": triton_bigbird_attention,
    "full": full_backend,
}


# Up to this many blocks dense SDPA with the [N, N] mask beats gathering. Measured on CPU (1 thread,
# B=8, H=4, d=32, block 64, fwd+bwd): 5 blocks dense 173 ms vs block 221 ms; 8 blocks 629 vs 596.
DENSE_MAX_BLOCKS = 6


# Whether `auto` picks the Triton kernels on CUDA when they support the inputs and passed their
# check on this machine (triton_backend.verified); else `block`. On an H100 (2026-11-28) they ran
# fwd+bwd in 3.7 ms at 65536 tokens against block's 13.3 ms, and trained BigBird-base at 16k
# tokens 1.36x faster than block with 55% of its memory.
CUDA_PREFERS_TRITON = True


def resolve_backend(config: SparsityConfig, q: torch.Tensor) -> str:
    """The backend `auto` stands for on this device and input size (others map to themselves)."""
    if config.backend != "auto":
        return config.backend
    if num_blocks_for(q.shape[-2], config.block_size) <= DENSE_MAX_BLOCKS:
        return "dense"
    if (
        q.device.type == "cuda"
        and CUDA_PREFERS_TRITON
        and unsupported_reason(q, config) is None
        and verified(q.device, q.dtype, config.block_size, q.shape[-1])
    ):
        return "triton"
    return "block"


def bigbird_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SparsityConfig,
    *,
    layer_index: int = 0,
    key_padding_mask: torch.Tensor | None = None,
    step: int | None = None,
) -> torch.Tensor:
    """BigBird attention of q, k, v [batch, heads, tokens, head_dim] -> same shape as q.

    Validates the inputs and dispatches to the backend `resolve_backend` names (every backend
    has the signature of `backend.AttentionBackend`). `key_padding_mask`: bool [batch, tokens],
    True = real token. `step`: None for the fixed
    (deterministic) layout; the training step to re-draw random blocks per step.
    """
    if q.dim() != 4 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(
            "q, k, v must all be [batch, heads, tokens, head_dim] of one shape, got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    config.validate()
    function = BACKEND_FUNCTIONS[resolve_backend(config, q)]
    return function(
        q, k, v, config, layer_index=layer_index, key_padding_mask=key_padding_mask, step=step
    )
