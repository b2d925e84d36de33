"""Pictures of a training run: ROC and PR curves, loss curves, the attention layout.

matplotlib with the Agg backend (no display needed); each figure is written atomically
(temporary file + os.replace) so a Snakemake rule never sees half a PNG.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchmetrics.functional.classification import (  # noqa: E402
    binary_precision_recall_curve,
    binary_roc,
)

from bigbird_genomics.io.atomic import remove_stale, temp_prefix  # noqa: E402

MAX_CURVES = 12  # more labels than this: plot the first ones, the legend stays readable


def save_figure(figure: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".png")
    os.close(handle)
    try:
        figure.savefig(temporary, dpi=110, bbox_inches="tight")
        os.replace(temporary, path)
    finally:
        plt.close(figure)
        if os.path.exists(temporary):
            os.unlink(temporary)
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
    # A resumed run's earlier history sits beside it as metrics.part<N>.csv (see train.py).
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
