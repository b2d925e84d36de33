"""The call signature every attention backend implements, stated once.

A backend takes q, k, v [batch, heads, tokens, head_dim] and the SparsityConfig, and returns the
attention output in q's shape; `layer_index` and `step` pick the random blocks (step=None: the
fixed layout of evaluation), `key_padding_mask` is bool [batch, tokens] with True = real token.
The semantics shared by all backends are in the package docstring (`bigbird_genomics.attention`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from bigbird_genomics.attention.config import SparsityConfig


@runtime_checkable
class AttentionBackend(Protocol):
    """BigBird attention of q, k, v [batch, heads, tokens, head_dim] -> same shape as q."""

    def __call__(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        config: SparsityConfig,
        *,
        layer_index: int = 0,
        key_padding_mask: torch.Tensor | None = None,
        step: int | None = None,
    ) -> torch.Tensor: ...
