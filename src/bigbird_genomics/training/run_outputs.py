"""What a finished training run leaves behind: metrics.json, test predictions and plots.

Final metrics come from the *best* checkpoint, reloaded through `inference.load_checkpoint`
(the same path `predict` and `evaluate` use), so the numbers describe the file a user ships.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from bigbird_genomics.io.writers import write_json

log = logging.getLogger(__name__)

LAYOUT_MAX_BLOCKS = 32  # the layout picture stays legible up to about this many blocks


def best_checkpoint(trainer: pl.Trainer, run_dir: Path) -> Path:
    from pytorch_lightning.callbacks import ModelCheckpoint

    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
            return Path(callback.best_model_path)
    return run_dir / "checkpoints" / "last.ckpt"


def _finite(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float) and v == v}


def finish_run(cfg: dict, run_dir: Path, trainer: pl.Trainer, module, datamodule, loggers) -> dict:
    """Evaluate the best checkpoint on val/test and write every run output (rank 0 only)."""
    from bigbird_genomics.attention import num_blocks_for
    from bigbird_genomics.inference.checkpoint import load_checkpoint
    from bigbird_genomics.inference.evaluation import (
        predict_split,
        split_metrics,
        write_predictions,
    )
    from bigbird_genomics.model.encoder import pooled_length
    from bigbird_genomics.reporting.plots import plot_attention_layout, plot_losses, plot_roc_pr

    best = best_checkpoint(trainer, run_dir)
    if module.task_type == "mlm":
        results = trainer.validate(module, datamodule=datamodule, ckpt_path=str(best),
                                   verbose=False, weights_only=True)
    if not trainer.is_global_zero:
        return {}
    throughput = next((c.last_tokens_per_s for c in trainer.callbacks
                       if hasattr(c, "last_tokens_per_s")), None)
    metrics: dict[str, Any] = {
        "task": cfg["task"]["name"],
        "task_type": module.task_type,
        "best_checkpoint": str(best),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "model": {"parameters": module.network.num_parameters(), "size": cfg["model"]["name"]},
        "attention": dict(cfg["attention"]),
        "train": {"tokens_per_s": throughput},
    }
    plots = run_dir / "plots"
    if module.task_type == "mlm":
        metrics["val"] = {k.removeprefix("val/"): v for k, v in results[0].items()}
    else:
        model = load_checkpoint(best)
        data = datamodule.data
        for split in ("val", "test"):
            if len(data.split_indices(split)) == 0:
                continue
            predictions = predict_split(model, data, split, cfg["data"]["eval_batch_size"])
            metrics[split] = split_metrics(model, predictions, module.label_groups)
            if split == "test":
                write_predictions(run_dir / "test_predictions.tsv", model, data, predictions)
                targets = predictions.targets
                if module.task_type == "multiclass":
                    targets = (targets[:, :1] == range(predictions.probs.shape[1])).astype(int)
                plot_roc_pr(predictions.probs, targets, model.label_names,
                            plots / "roc.png", plots / "pr.png")
    plot_losses(run_dir / "csv" / "metrics.csv", plots / "loss.png")
    sparsity = module.network.sparsity
    positions = pooled_length(cfg["model"]["max_tokens"], module.network.encoder.config.downsample)
    num_blocks = min(num_blocks_for(positions, sparsity.block_size), LAYOUT_MAX_BLOCKS)
    plot_attention_layout(num_blocks, sparsity, plots / "attention_layout.png")
    write_json(run_dir / "metrics.json", metrics)
    _log_final(loggers, metrics, plots)
    return metrics


# (metrics.json key, how the summary names it), in the order printed
SUMMARY_SCORES = (
    ("loss", "loss"),
    ("accuracy", "accuracy"),
    ("auroc", "AUROC"),
    ("auroc_mean", "mean AUROC"),
    ("auprc", "AUPRC"),
    ("auprc_mean", "mean AUPRC"),
    ("f1", "F1"),
    ("mcc", "MCC"),
)


def summary_lines(metrics: dict) -> list[str]:
    """The few lines a user reads when training ends: the test scores (val for MLM), then the
    best checkpoint's validation loss, then the mean AUROC of each profile group."""
    lines = []
    for split in ("test", "val"):
        scores = metrics.get(split) or {}
        shown = [f"{name} {scores[key]:.4g}" for key, name in SUMMARY_SCORES
                 if isinstance(scores.get(key), int | float)]
        if not shown:
            continue
        if split == "val" and "test" in metrics:  # the test line has the scores already
            if not isinstance(scores.get("loss"), int | float):
                continue
            shown = [f"loss {scores['loss']:.4g} (best checkpoint)"]
        examples = f" ({scores['num_examples']} examples)" if "num_examples" in scores else ""
        lines.append(f"{split}{examples}: " + ", ".join(shown))
        groups = sorted({key.split("/")[1] for key in scores if key.startswith("group/")})
        group_scores = [f"{group} {scores[f'group/{group}/auroc_mean']:.4g}" for group in groups
                        if isinstance(scores.get(f"group/{group}/auroc_mean"), int | float)]
        if group_scores:
            lines.append(f"{split} mean AUROC by group: " + ", ".join(group_scores))
    return lines


def _log_final(loggers: list, metrics: dict, plots: Path) -> None:
    """Final scalars to every logger; pictures to W&B."""
    scalars = {"model/parameters": metrics["model"]["parameters"]}
    for split in ("val", "test"):
        finite = _finite(metrics.get(split, {}))
        scalars.update({f"final/{split}/{k}": v for k, v in finite.items()})
    for logger in loggers:
        logger.log_metrics(scalars)
        if hasattr(logger, "log_image"):
            # one key per picture: W&B shows the images of one key side by side and warns when
            # their sizes differ (the loss curves and the ROC plot do)
            for image in sorted(plots.glob("*.png")):
                logger.log_image(key=f"plots/{image.stem}", images=[str(image)])
        logger.save()
