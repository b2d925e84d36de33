"""Score a loaded checkpoint on one split of a tokenized data set; write predictions.

Used at the end of training (metrics.json, test_predictions.tsv) and by `bigbird-genomics
evaluate`, so both report numbers computed by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bigbird_genomics.errors import UserError
from bigbird_genomics.inference.checkpoint import LoadedModel
from bigbird_genomics.inference.metrics import compute_metrics
from bigbird_genomics.io.labels import CLASS_LABEL
from bigbird_genomics.io.writers import atomic_open
from bigbird_genomics.tokens.store import TokenizedDataset


@dataclass
class SplitPredictions:
    """Probabilities and true labels of one split, row-aligned with `indices`."""

    split: str
    indices: np.ndarray
    probs: np.ndarray
    targets: np.ndarray
    strands: str = "forward"  # "both": each probability averages the record's two strands


STRAND_CHOICES = ("auto", "forward", "both")


def resolve_strands(model: LoadedModel, strands: str = "auto") -> str:
    """`auto`: both strands (averaged) for a model trained on both, else the forward strand."""
    if strands not in STRAND_CHOICES:
        raise UserError(f"strands must be one of {', '.join(STRAND_CHOICES)}, got {strands!r}")
    if strands == "auto":
        return "both" if model.strand_symmetric else "forward"
    return strands


def check_labels(model: LoadedModel, data: TokenizedDataset) -> None:
    """Refuse a data set whose label columns are not the checkpoint's outputs: metrics would be
    computed against the wrong profile (same count, other order) or fail on a shape mismatch."""
    if not data.label_names:
        raise UserError(f"data set {data.path} has no labels: nothing to evaluate against")
    class_data = list(data.label_names) == [CLASS_LABEL]
    if (model.task_type == "multiclass") != class_data:
        raise UserError(
            f"data set {data.path} has "
            + ("class labels (class=K)" if class_data else "0/1 labels")
            + f" but the checkpoint is a {model.task_type} model; evaluate it on data labelled "
            "like its training data"
        )
    if model.task_type == "multiclass":  # one column of class indices
        largest = int(np.asarray(data.label_array[:, 0]).max())
        if largest >= len(model.label_names):
            raise UserError(
                f"data set {data.path} has class {largest} but the checkpoint predicts "
                f"{len(model.label_names)} classes (0..{len(model.label_names) - 1})"
            )
        return
    ours, theirs = list(model.label_names), list(data.label_names)
    if len(ours) == len(theirs) == 1 or ours == theirs:
        return  # a binary label may be named differently in another data set
    if sorted(ours) == sorted(theirs):
        problem = "the same labels in another order"
    else:
        problem = f"{len(theirs)} label(s) ({', '.join(theirs)})"
    raise UserError(
        f"data set {data.path} has {problem}, but the checkpoint predicts {len(ours)} "
        f"({', '.join(ours)}); tokenize the data with the checkpoint's label columns, in its "
        "order, or evaluate the checkpoint trained on this data set"
    )


def predict_split(
    model: LoadedModel,
    data: TokenizedDataset,
    split: str,
    batch_size: int = 64,
    strands: str = "auto",
) -> SplitPredictions:
    """Run the model over every example of `split` (sorted by length to pad little).

    `strands` as in `resolve_strands`: training's final metrics and `evaluate` both use `auto`,
    so a model trained with `data.reverse_complement=true` is scored on both strands.
    """
    strands = resolve_strands(model, strands)
    data.check_tokenizer(model.tokenizer.to_dict())
    check_labels(model, data)
    indices = np.asarray(data.split_indices(split), dtype=np.int64)
    if len(indices) == 0:
        raise UserError(f"data set {data.path} has no examples in split {split!r}")
    longest = int(np.asarray(data.lengths)[indices].max())
    if longest > model.max_tokens - 1:
        raise UserError(
            f"data set {data.path} has {split} examples of up to {longest} k-mer tokens but the "
            f"checkpoint's context holds {model.max_tokens - 1} (+[CLS]); tokenize the FASTA "
            f"again with --max-tokens {model.max_tokens - 1}"
        )
    order = indices[np.argsort(np.asarray(data.lengths)[indices], kind="stable")]
    probs = []
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        probs.append(model.predict_proba([data.tokens(int(i)) for i in chunk], strands))
    targets = np.stack([np.asarray(data.labels(int(i))) for i in order])
    return SplitPredictions(split, order, np.concatenate(probs), targets, strands)


def split_metrics(model: LoadedModel, predictions: SplitPredictions, label_groups=None) -> dict:
    """Scalar metrics (+ per-profile table for multi-label tasks) of one split."""
    targets = predictions.targets
    if model.task_type == "multiclass":
        targets = targets[:, 0]
    scalars, per_label = compute_metrics(
        model.task_type, predictions.probs, targets, model.label_names, label_groups
    )
    result: dict = {
        "num_examples": len(predictions.indices), "strands": predictions.strands, **scalars
    }
    if per_label:
        result["per_label"] = per_label
    return result


def write_predictions(
    path: str | Path, model: LoadedModel, data: TokenizedDataset, predictions: SplitPredictions
) -> Path:
    """TSV: record id, window start/end (bp), then true label and probability per output."""
    label_columns = list(data.label_names) if data.label_names else ["label"]
    header = ["id", "start", "end"]
    header += [f"true_{name}" for name in label_columns]
    header += [f"prob_{name}" for name in model.label_names]
    with atomic_open(path) as handle:
        handle.write("\t".join(header) + "\n")
        for row, index in enumerate(predictions.indices):
            record_id, start, end = data.record(int(index))
            fields = [str(record_id), str(start), str(end)]
            fields += [str(int(v)) for v in predictions.targets[row]]
            fields += [f"{p:.6g}" for p in predictions.probs[row]]
            handle.write("\t".join(fields) + "\n")
    return Path(path)
