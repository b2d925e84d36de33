"""`bigbird-genomics evaluate`: score a checkpoint on a split of a tokenized data set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bigbird_genomics.commands._arguments import add_device_arguments, positive_int

HELP = (
    "Score a trained checkpoint on one split of a tokenized data set: metrics.json (accuracy, "
    "F1, MCC, AUROC, AUPRC; per-profile AUROC/AUPRC for multi-label tasks), optionally the "
    "per-example predictions and ROC/PR plots."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, type=Path, action="append",
        help="training checkpoint; repeat it to score an ensemble (probabilities averaged)",
    )
    parser.add_argument("--data", required=True, type=Path, help="tokenized data set directory")
    parser.add_argument(
        "--split", default="test", choices=("train", "val", "test"), help="data set split to score"
    )
    parser.add_argument("--out", required=True, type=Path, help="metrics JSON to write")
    parser.add_argument("--predictions", type=Path, default=None, help="per-example TSV")
    parser.add_argument("--plots", type=Path, default=None, help="folder for roc.png / pr.png")
    parser.add_argument(
        "--batch-size", type=positive_int, default=64, help="examples per forward pass"
    )
    parser.add_argument(
        "--strands",
        choices=("auto", "forward", "both"),
        default="auto",
        help="both: average each record's two strands (test-time augmentation); auto (default): "
        "both for a model trained with data.reverse_complement=true, else forward",
    )
    add_device_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.inference.ensemble import load_models
    from bigbird_genomics.inference.evaluation import (
        predict_split,
        split_metrics,
        write_predictions,
    )
    from bigbird_genomics.inference.metrics import one_class_report
    from bigbird_genomics.io.paths import check_outputs
    from bigbird_genomics.io.writers import write_json
    from bigbird_genomics.tokens.store import TokenizedDataset, label_groups_of

    plots = {"--plots": [args.plots / "roc.png", args.plots / "pr.png"]} if args.plots else {}
    check_outputs(
        "evaluate",
        inputs={"--checkpoint": args.checkpoint},
        input_dirs={"--data": args.data},
        outputs={"--out": args.out, "--predictions": args.predictions, **plots},
        output_dirs={"--plots": args.plots},
    )
    model = load_models(args.checkpoint, args.device, args.precision)
    data = TokenizedDataset(args.data)
    predictions = predict_split(model, data, args.split, args.batch_size, args.strands)
    scores = split_metrics(model, predictions, label_groups_of(data))
    one_class = one_class_report(model.task_type, predictions.targets)
    if one_class is not None:
        counts, undefined = one_class
        for name in undefined:
            scores.pop(name, None)
        scores["undefined"] = list(undefined)
        print(
            f"warning: the {args.split!r} split of {args.data} holds one class only ({counts}): "
            f"{', '.join(undefined)} are undefined and not reported; evaluate on a split with "
            "both classes for them",
            file=sys.stderr,
        )
    metrics = {
        "checkpoint": str(args.checkpoint[0]) if len(args.checkpoint) == 1
        else [str(path) for path in args.checkpoint],
        "data": str(args.data),
        "split": args.split,
        "task_type": model.task_type,
        args.split: scores,
    }
    write_json(args.out, metrics)
    if args.predictions:
        write_predictions(args.predictions, model, data, predictions)
    if args.plots:
        from bigbird_genomics.reporting.plots import plot_roc_pr

        targets = predictions.targets
        if model.task_type == "multiclass":
            targets = (targets[:, :1] == range(predictions.probs.shape[1])).astype(int)
        plot_roc_pr(predictions.probs, targets, model.label_names,
                    args.plots / "roc.png", args.plots / "pr.png")
    scalars = {k: v for k, v in metrics[args.split].items() if isinstance(v, float)}
    print(" ".join(f"{k}={v:.4f}" for k, v in scalars.items()))
    return 0
