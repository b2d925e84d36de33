"""The BigBird sparsity pattern as a frozen dataclass (hashable, so layouts can be cached)."""

from __future__ import annotations

from dataclasses import dataclass

BACKENDS = ("auto", "dense", "block", "flex", "triton", "full")


@dataclass(frozen=True)
class SparsityConfig:
    """Which key blocks each query block attends to, and which backend computes it.

    `block_size` tokens per block; `num_window_blocks` (odd) centred neighbours;
    `num_global_blocks` global blocks (the first ceil(g/2) and last floor(g/2) blocks);
    `num_random_blocks` random key blocks per query block, drawn from `seed` per layer (and per
    head when `random_per_head`). `redraw_random_per_step` lets training draw new random blocks
    at every optimizer step (a regulariser); evaluation and prediction always use the fixed
    layout of `seed`.
    """

    block_size: int = 64
    num_window_blocks: int = 3
    num_global_blocks: int = 2
    num_random_blocks: int = 3
    random_per_head: bool = False
    seed: int = 0
    backend: str = "auto"
    redraw_random_per_step: bool = False

    def validate(self, prefix: str = "attention") -> SparsityConfig:
        """Raise ValueError naming the offending key (as `prefix.key`); return self when valid."""
        checks = [
            ("block_size", self.block_size, 1),
            ("num_window_blocks", self.num_window_blocks, 1),
            ("num_global_blocks", self.num_global_blocks, 0),
            ("num_random_blocks", self.num_random_blocks, 0),
        ]
        for key, value, minimum in checks:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{prefix}.{key} must be an integer, got {value!r}")
            if value < minimum:
                raise ValueError(f"{prefix}.{key} must be >= {minimum}, got {value}")
        if self.num_window_blocks % 2 == 0:
            raise ValueError(
                f"{prefix}.num_window_blocks must be odd, got {self.num_window_blocks} "
                "(the window is centred on the query block)"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"{prefix}.seed must be a non-negative integer, got {self.seed!r}")
        for key in ("random_per_head", "redraw_random_per_step"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(
                    f"{prefix}.{key} must be true or false, got {getattr(self, key)!r}"
                )
        if self.backend not in BACKENDS:
            raise ValueError(
                f"{prefix}.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}"
            )
        return self
