"""Task metrics computed once from all predictions of a split (torchmetrics functional).

One function serves validation during training, the final `metrics.json` and the `evaluate`
command, so the numbers in all three places are computed the same way. Chromatin-style
multi-label tasks report AUROC/AUPRC per profile, then the mean and median over profiles and
over each profile group (TF / DHS / histone) - a profile without both classes in the split
has no AUROC and is left out of the summaries (counted in `profiles_scored`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics.functional import classification as tmf


def _as_tensor(values: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values) if not isinstance(values, torch.Tensor) else values)


def _scalar(value: torch.Tensor) -> float:
    return float(value.detach().cpu().float())


def binary_metrics(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Accuracy, F1, MCC at threshold 0.5; AUROC and AUPRC (NaN when one class is absent)."""
    probs = probs.float().reshape(-1)
    targets = targets.long().reshape(-1)
    both_classes = bool(targets.min() != targets.max()) if len(targets) else False
    return {
        "accuracy": _scalar(tmf.binary_accuracy(probs, targets)),
        "f1": _scalar(tmf.binary_f1_score(probs, targets)),
        "mcc": _scalar(tmf.binary_matthews_corrcoef(probs, targets)),
        "auroc": _scalar(tmf.binary_auroc(probs, targets)) if both_classes else math.nan,
        "auprc": (
            _scalar(tmf.binary_average_precision(probs, targets)) if both_classes else math.nan
        ),
    }


def multiclass_metrics(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Macro-averaged scores over classes."""
    num_classes = probs.shape[1]
    targets = targets.long().reshape(-1)
    kwargs = {"num_classes": num_classes, "average": "macro"}
    return {
        "accuracy": _scalar(tmf.multiclass_accuracy(probs, targets, average="micro",
                                                    num_classes=num_classes)),
        "f1": _scalar(tmf.multiclass_f1_score(probs, targets, **kwargs)),
        "mcc": _scalar(tmf.multiclass_matthews_corrcoef(probs, targets, num_classes=num_classes)),
        "auroc": _scalar(tmf.multiclass_auroc(probs, targets, **kwargs)),
        "auprc": _scalar(tmf.multiclass_average_precision(probs, targets, **kwargs)),
    }


def per_label_metrics(
    probs: torch.Tensor, targets: torch.Tensor, label_names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """AUROC, AUPRC and positive count of each profile (NaN scores where undefined)."""
    probs = probs.float()
    targets = targets.long()
    num_labels = probs.shape[1]
    with warnings.catch_warnings():
        # torchmetrics warns about single-class profiles; those are set to NaN below.
        warnings.simplefilter("ignore", UserWarning)
        auroc = tmf.multilabel_auroc(probs, targets, num_labels=num_labels, average=None)
        auprc = tmf.multilabel_average_precision(probs, targets, num_labels=num_labels,
                                                 average=None)
    positives = targets.sum(dim=0)
    defined = (positives > 0) & (positives < targets.shape[0])
    return {
        name: {
            "auroc": _scalar(auroc[i]) if defined[i] else math.nan,
            "auprc": _scalar(auprc[i]) if defined[i] else math.nan,
            "positives": int(positives[i]),
        }
        for i, name in enumerate(label_names)
    }


def _summaries(prefix: str, per_label: dict[str, dict[str, float]], names: Sequence[str]) -> dict:
    out: dict[str, float] = {}
    for score in ("auroc", "auprc"):
        values = np.array([per_label[n][score] for n in names], dtype=float)
        values = values[~np.isnan(values)]
        out[f"{prefix}{score}_mean"] = float(values.mean()) if len(values) else math.nan
        out[f"{prefix}{score}_median"] = float(np.median(values)) if len(values) else math.nan
    return out


def multilabel_metrics(
    probs: torch.Tensor,
    targets: torch.Tensor,
    label_names: Sequence[str],
    label_groups: dict[str, str] | None = None,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Summary scalars (overall and per group) and the per-profile table."""
    per_label = per_label_metrics(probs, targets, label_names)
    scalars = _summaries("", per_label, label_names)
    scalars["profiles_scored"] = float(
        sum(not math.isnan(v["auroc"]) for v in per_label.values())
    )
    scalars["accuracy"] = _scalar(
        tmf.multilabel_accuracy(probs.float(), targets.long(), num_labels=probs.shape[1],
                                average="micro")
    )
    for group in sorted(set((label_groups or {}).values())):
        members = [n for n in label_names if (label_groups or {}).get(n) == group]
        scalars.update(_summaries(f"group/{group}/", per_label, members))
    return scalars, per_label


def compute_metrics(
    task_type: str,
    probs: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor,
    label_names: Sequence[str] = (),
    label_groups: dict[str, str] | None = None,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """All metrics of one split: (scalars, per-label table; empty unless multi-label)."""
    probs_t, targets_t = _as_tensor(probs), _as_tensor(targets)
    if len(targets_t) == 0:
        return {}, {}
    if task_type == "binary":
        return binary_metrics(probs_t, targets_t), {}
    if task_type == "multiclass":
        return multiclass_metrics(probs_t.float(), targets_t), {}
    if task_type == "multilabel":
        return multilabel_metrics(probs_t, targets_t, label_names, label_groups)
    raise ValueError(f"no classification metrics for task type {task_type!r}")


def one_class_report(
    task_type: str, targets: np.ndarray, label_names: Sequence[str] = ()
) -> tuple[str, tuple[str, ...]] | None:
    """(class counts, metrics that are undefined) when a split holds one class only, else None.

    AUROC and AUPRC rank positives against negatives and MCC divides by both class counts, so
    with one class they have no value (torchmetrics returns 0 or NaN); F1 also has none when
    there is no positive. Accuracy stays defined.
    """
    targets = np.asarray(targets)
    if len(targets) == 0 or task_type not in ("binary", "multiclass"):
        return None
    column = targets.reshape(len(targets), -1)[:, 0].astype(int)
    classes, counts = np.unique(column, return_counts=True)
    if len(classes) > 1:
        return None
    if task_type == "binary":
        only = int(classes[0])
        counts_text = f"{int(counts[0])} with label {only}, 0 with label {1 - only}"
        undefined = ("f1", "mcc", "auroc", "auprc") if only == 0 else ("mcc", "auroc", "auprc")
    else:
        counts_text = f"{int(counts[0])} of class {int(classes[0])}, none of the others"
        undefined = ("f1", "mcc", "auroc", "auprc")
    return counts_text, undefined
