"""Draw a block layout (query block x key block, coloured by window/global/random) to PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from bigbird_genomics.attention.config import SparsityConfig  # noqa: E402
from bigbird_genomics.attention.layout import (  # noqa: E402
    GLOBAL,
    KIND_NAMES,
    RANDOM,
    WINDOW,
    block_layout,
)
from bigbird_genomics.io.atomic import atomic_path  # noqa: E402

COLOURS = {0: "#f4f4f4", WINDOW: "#4c72b0", GLOBAL: "#dd8452", RANDOM: "#55a868"}


def plot_layout(
    num_blocks: int,
    config: SparsityConfig,
    path: str | Path,
    *,
    layer_index: int = 0,
    step: int | None = None,
    head: int = 0,
    num_heads: int = 1,
) -> Path:
    """Write the layout of one layer (and head) as a PNG; returns the path (written atomically)."""
    if not 0 <= head < num_heads:
        raise ValueError(f"head {head} does not exist (num_heads={num_heads})")
    kinds = block_layout(
        num_blocks, config, layer_index=layer_index, step=step, num_heads=num_heads
    )
    matrix = kinds[head if config.random_per_head else 0].numpy()
    size = min(12.0, 3.0 + num_blocks * 0.08)
    fig, ax = plt.subplots(figsize=(size + 1.8, size))
    cmap = ListedColormap([COLOURS[code] for code in (0, WINDOW, GLOBAL, RANDOM)])
    ax.imshow(matrix, cmap=cmap, vmin=-0.5, vmax=3.5, interpolation="nearest")
    ax.set_xlabel("key block")
    ax.set_ylabel("query block")
    ax.set_title(
        f"BigBird layout: {num_blocks} blocks of {config.block_size}, layer {layer_index}"
        + (f", head {head}" if config.random_per_head else "")
    )
    handles = [Patch(color=COLOURS[code], label=name) for code, name in KIND_NAMES.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path) as temp:
            fig.savefig(temp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return path
