"""BlockMasks for FlexAttention at its kernel tile size, from a layout of smaller BigBird blocks.

Why: FlexAttention's CUDA kernels need the BlockMask's block size to be a multiple of their tile
(128 tokens by default). With torch 2.11 on an H100 (seen 2026-11-27), a 64-token BlockMask
failed to compile: the forward asks for the tile to divide the block size, and no backward
configuration was accepted even with 64-wide tiles requested through `kernel_options`
("NoValidChoicesError"). So the mask is built on tiles of lcm(block_size, 128) tokens: a tile
is visited when any of its (query block, key block) pairs is attended, and the mask_mod, which
knows the exact block layout, masks the rest. Tiles whose pairs are all attended are "full"
(no mask_mod evaluated) when nothing is padded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask

from bigbird_genomics.attention.layout import attended_first

KERNEL_TILE = 128


def tile_tokens(block_size: int) -> int:
    """Tokens per BlockMask tile: a multiple of both the BigBird block and the kernel tile."""
    return math.lcm(block_size, KERNEL_TILE)


def pad_to_tiles(allowed: torch.Tensor, ratio: int) -> torch.Tensor:
    """Pad a bool [heads, query_blocks, key_blocks] layout with False to multiples of `ratio`."""
    _, rows, columns = allowed.shape
    return F.pad(allowed, (0, -columns % ratio, 0, -rows % ratio), value=False)


def _lists(tiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    counts = tiles.sum(dim=-1, dtype=torch.int32).unsqueeze(0)
    return counts, attended_first(tiles).to(torch.int32).unsqueeze(0)


@dataclass(frozen=True)
class TileLists:
    """Which tiles the kernel visits, for a layout padded to whole tiles (`pad_to_tiles`).

    Built once per layout (sorting the lists is not free at 64k tokens); each call then only
    wraps them in a BlockMask with its own mask_mod.
    """

    block_size: int
    lengths: tuple[int, int]  # (query tokens, key tokens)
    visited: tuple[torch.Tensor, torch.Tensor]  # (counts, indices): tiles with any pair
    partial: tuple[torch.Tensor, torch.Tensor]  # visited tiles that need the mask_mod
    full: tuple[torch.Tensor, torch.Tensor]  # tiles whose pairs are all attended

    def block_mask(self, mask_mod, all_partial: bool) -> BlockMask:  # noqa: ANN001
        """`all_partial`: evaluate mask_mod in every visited tile (needed when keys are padded,
        since the mask_mod then also checks that a key is real)."""
        tile = tile_tokens(self.block_size)
        if all_partial:
            return BlockMask.from_kv_blocks(
                *self.visited, BLOCK_SIZE=tile, mask_mod=mask_mod, seq_lengths=self.lengths
            )
        return BlockMask.from_kv_blocks(
            *self.partial, *self.full, BLOCK_SIZE=tile, mask_mod=mask_mod,
            seq_lengths=self.lengths,
        )  # fmt: skip


def tile_lists(allowed: torch.Tensor, block_size: int) -> TileLists:
    """The tile lists of a bool [heads, query_blocks, key_blocks] layout padded to whole tiles.

    `heads` may be 1 for a layout shared by all heads (FlexAttention broadcasts it).
    """
    heads, rows, columns = allowed.shape
    ratio = tile_tokens(block_size) // block_size
    grouped = allowed.reshape(heads, rows // ratio, ratio, columns // ratio, ratio)
    visited = grouped.any(dim=4).any(dim=2)
    full = grouped.all(dim=4).all(dim=2)
    return TileLists(
        block_size,
        (rows * block_size, columns * block_size),
        _lists(visited),
        _lists(visited & ~full),
        _lists(full),
    )
