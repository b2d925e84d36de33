"""Pictures of a training run: ROC and PR curves, loss curves, the attention layout.

matplotlib with the Agg backend (no display needed); each figure is written atomically
(`io.atomic.atomic_path`: a temporary file renamed into place, mode 0644) so a Snakemake rule
never sees half a PNG.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from torchmetrics.functional.classification import (  # noqa: E402
    binary_precision_recall_curve,
    binary_roc,
)

from bigbird_genomics.attention.config import SparsityConfig  # noqa: E402
from bigbird_genomics.attention.layout import (  # noqa: E402
    GLOBAL,
    KIND_NAMES,
    RANDOM,
    WINDOW,
    block_layout,
)
from bigbird_genomics.io.atomic import atomic_path  # noqa: E402

MAX_CURVES = 12  # more labels than this: plot the first ones, the legend stays readable


def save_figure(
    figure: plt.Figure, path: str | Path, *, dpi: int = 110, bbox_inches: str | None = "tight"
) -> Path:
    """Write `figure` as a PNG at `path` atomically and close it."""
    path = Path(path)
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=dpi, bbox_inches=bbox_inches, format="png")
    finally:
        plt.close(figure)
    return path


def _curves(probs: np.ndarray, targets: np.ndarray, names: Sequence[str]):
    """(name, roc fpr/tpr, pr recall/precision) for labels that have both classes."""
    for column, name in list(enumerate(names))[:MAX_CURVES]:
        target = torch.as_tensor(targets[:, column]).long()
        if target.min() == target.max():
            continue
        prob = torch.as_tensor(probs[:, column]).float()
        fpr, tpr, _ = binary_roc(prob, target)
        precision, recall, _ = binary_precision_recall_curve(prob, target)
        yield name, (fpr.numpy(), tpr.numpy()), (recall.numpy(), precision.numpy())


def plot_roc_pr(
    probs: np.ndarray, targets: np.ndarray, names: Sequence[str], roc_path: Path, pr_path: Path
) -> tuple[Path, Path]:
    """One ROC and one PR figure with a curve per label (binary: one curve)."""
    roc_figure, roc_axes = plt.subplots(figsize=(5, 5))
    pr_figure, pr_axes = plt.subplots(figsize=(5, 5))
    for name, (fpr, tpr), (recall, precision) in _curves(probs, targets, names):
        roc_axes.plot(fpr, tpr, label=name)
        pr_axes.plot(recall, precision, label=name)
    roc_axes.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc_axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    pr_axes.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)")
    for axes in (roc_axes, pr_axes):
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
    return save_figure(roc_figure, roc_path), save_figure(pr_figure, pr_path)


def read_metrics_csv(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Lightning CSVLogger's metrics.csv -> metric name -> [(step, value)]."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            step = int(float(row.get("step") or 0))
            for name, value in row.items():
                if name in ("step", "epoch") or value in ("", None):
                    continue
                series.setdefault(name, []).append((step, float(value)))
    return series


def plot_losses(metrics_csv: Path, path: Path) -> Path | None:
    """Training loss per step and validation loss per epoch, against the optimizer step."""
    # A resumed run's earlier history sits beside it as metrics.part<N>.csv (see training/run.py).
    parts = sorted(metrics_csv.parent.glob("metrics.part*.csv"),
                   key=lambda part: int(part.stem.removeprefix("metrics.part")))
    files = [*parts, metrics_csv] if metrics_csv.is_file() else parts
    if not files:
        return None
    series: dict[str, list[tuple[int, float]]] = {}
    for csv_path in files:
        for name, points in read_metrics_csv(csv_path).items():
            series.setdefault(name, []).extend(points)
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, style in (("train/loss_step", "-"), ("val/loss", "o-")):
        if name in series:
            steps, values = zip(*series[name], strict=True)
            axes.plot(steps, values, style, label=name.removesuffix("_step"))
    axes.set(xlabel="optimizer step", ylabel="loss", title="Loss")
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    return save_figure(figure, path)


LAYOUT_COLOURS = {0: "#f4f4f4", WINDOW: "#4c72b0", GLOBAL: "#dd8452", RANDOM: "#55a868"}


def plot_attention_layout(
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
    cmap = ListedColormap([LAYOUT_COLOURS[code] for code in (0, WINDOW, GLOBAL, RANDOM)])
    ax.imshow(matrix, cmap=cmap, vmin=-0.5, vmax=3.5, interpolation="nearest")
    ax.set_xlabel("key block")
    ax.set_ylabel("query block")
    ax.set_title(
        f"BigBird layout: {num_blocks} blocks of {config.block_size}, layer {layer_index}"
        + (f", head {head}" if config.random_per_head else "")
    )
    handles = [Patch(color=LAYOUT_COLOURS[code], label=name) for code, name in KIND_NAMES.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100, bbox_inches=None)
