"""Compare training runs: one row per run directory (its attention settings and metrics).

Reads only the run-directory contract (config.yaml, metrics.json), so it works on any runs -
a Hydra multirun, Snakemake sweep wildcards, or runs copied from a cluster.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bigbird_genomics.errors import UserError
from bigbird_genomics.io.writers import atomic_open

SETTING_COLUMNS = (
    ("model", "name"),
    ("attention", "block_size"),
    ("attention", "num_window_blocks"),
    ("attention", "num_global_blocks"),
    ("attention", "num_random_blocks"),
    ("attention", "backend"),
    ("optim", "lr"),
    ("optim", "weight_decay"),  # with model.dropout: searched by hparams_search=optuna
    ("model", "dropout"),
    ("seed", None),
)
PREFERRED_METRICS = (
    "auroc",
    "auprc",
    "f1",
    "mcc",
    "accuracy",
    "auroc_mean",
    "auprc_mean",
    "auroc_median",
    "auprc_median",
    "loss",
)


# Written into a grid-sweep job's directory instead of metrics.json when its config fails.

def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories among `paths`: each path, or its sub-directories, with metrics.json."""
    runs: list[Path] = []
    for path in map(Path, paths):
        if (path / "metrics.json").is_file():
            runs.append(path)
        elif path.is_dir():
            runs += sorted(p.parent for p in path.glob("*/metrics.json"))
        else:
            raise UserError(f"run directory {path} does not exist")
    if not runs:
        raise UserError(
            f"no metrics.json under {', '.join(map(str, paths))}: are these finished training runs?"
        )
    return runs


def _setting(config: dict, group: str, key: str | None) -> Any:
    value = config.get(group)
    return value.get(key) if key and isinstance(value, dict) else value


def summarise(runs: Sequence[Path]) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows): settings, then val_/test_ scalar metrics, parameters, tokens/s."""
    rows: list[dict[str, Any]] = []
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        config_path = run / "config.yaml"
        config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
        row: dict[str, Any] = {"run": str(run)}
        for group, key in SETTING_COLUMNS:
            row[f"{group}.{key}" if key else group] = _setting(config or {}, group, key)
        for split in ("val", "test"):
            for name in PREFERRED_METRICS:
                value = (metrics.get(split) or {}).get(name)
                if isinstance(value, int | float):
                    row[f"{split}_{name}"] = value
        row["parameters"] = (metrics.get("model") or {}).get("parameters")
        row["tokens_per_s"] = (metrics.get("train") or {}).get("tokens_per_s")
        rows.append(row)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    return columns, rows


def _format(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_tsv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
    with atomic_open(path) as handle:
        handle.write("\t".join(columns) + "\n")
        for row in rows:
            handle.write("\t".join(_format(row.get(c)) for c in columns) + "\n")
    return path


def main_metric(columns: Sequence[str]) -> str | None:
    for name in PREFERRED_METRICS:
        for split in ("test", "val"):
            if f"{split}_{name}" in columns:
                return f"{split}_{name}"
    return None


def write_plot(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> Path | None:
    """Bar chart of the main metric per run, labelled by its attention settings."""
    from bigbird_genomics.reporting.plots import plt, save_figure

    metric = main_metric(columns)
    if metric is None:
        return None
    labels = [
        f"b{r.get('attention.block_size')} w{r.get('attention.num_window_blocks')} "
        f"g{r.get('attention.num_global_blocks')} r{r.get('attention.num_random_blocks')} "
        f"{r.get('attention.backend')}"
        for r in rows
    ]
    values = [r.get(metric) if isinstance(r.get(metric), int | float) else 0.0 for r in rows]
    figure, axes = plt.subplots(figsize=(max(4, 0.6 * len(rows) + 2), 4))
    axes.bar(range(len(rows)), values, color="tab:blue")
    axes.set_xticks(range(len(rows)), labels, rotation=45, ha="right", fontsize="small")
    axes.set(ylabel=metric, title=f"Sweep: {metric} per run")
    return save_figure(figure, path)


def write_summary(runs: Sequence[str | Path], out_tsv: Path, out_png: Path | None) -> list[dict]:
    """Find runs, write the table (and plot); return the rows."""
    columns, rows = summarise(find_runs(runs))
    write_tsv(Path(out_tsv), columns, rows)
    if out_png is not None:
        write_plot(Path(out_png), columns, rows)
    return rows
