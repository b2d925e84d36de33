"""The layout plot: a PNG whose colours follow the layout."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from bigbird_genomics.attention import SparsityConfig
from bigbird_genomics.reporting.plots import plot_attention_layout as plot_layout


def test_plot_layout_writes_png(tmp_path: Path) -> None:
    path = plot_layout(24, SparsityConfig(seed=1), tmp_path / "plots" / "layout.png")
    assert path == tmp_path / "plots" / "layout.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["layout.png"]  # no temp file left behind
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    pixels = matplotlib.image.imread(path)[..., :3]
    # Window (blue), global (orange) and random (green) colours all appear.
    for colour in ("#4c72b0", "#dd8452", "#55a868"):
        rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).max(axis=-1) < 0.02).sum() > 50, colour


def test_plot_layout_per_head(tmp_path: Path) -> None:
    config = SparsityConfig(random_per_head=True)
    first = plot_layout(16, config, tmp_path / "h0.png", num_heads=2, head=0)
    second = plot_layout(16, config, tmp_path / "h1.png", num_heads=2, head=1)
    assert first.read_bytes() != second.read_bytes()


def test_plot_layout_refuses_a_head_that_does_not_exist(tmp_path: Path) -> None:
    """Asking for head 2 of 2 must not silently draw head 1."""
    config = SparsityConfig(random_per_head=True)
    with pytest.raises(ValueError, match=r"head 2 does not exist \(num_heads=2\)"):
        plot_layout(16, config, tmp_path / "h2.png", num_heads=2, head=2)
    assert not (tmp_path / "h2.png").exists()
