"""`bigbird-genomics-train`: the Hydra app that trains one model into one run directory.

    bigbird-genomics-train task=promoter data.dataset=DIR hydra.run.dir=OUT [key=value ...]

With no `data.dataset` the embedded demo data set is generated (seeded) into
`paths.cache_dir` and tokenized there, so the command works on a fresh install. The run
directory receives config.yaml, checkpoints/{best,last}.ckpt, metrics.json,
test_predictions.tsv, plots/, csv/ and wandb/ (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from bigbird_genomics.errors import UserError
from bigbird_genomics.io.run_dir import FAILED_RUN_FILE
from bigbird_genomics.io.writers import atomic_open
from bigbird_genomics.training.config_checks import ConfigError
from bigbird_genomics.training.run import train

log = logging.getLogger(__name__)

# The configs ship inside the package (package data, so a wheel trains too); the repository's
# conf/ is a link to them. BIGBIRD_GENOMICS_CONF points at a user's own copy instead.
CONF_DIR = Path(
    os.environ.get("BIGBIRD_GENOMICS_CONF", Path(__file__).resolve().parents[1] / "conf")
)


def optimized_value(metrics: dict, name: str) -> float:
    """The number an Optuna sweep optimises, e.g. `val/loss` -> metrics['val']['loss'].

    A missing or non-finite value is a UserError naming the key: handed to Optuna 2.x, NaN
    fails inside `study.tell` with an unrelated "Values cannot be specified" message.
    """
    split, _, key = name.partition("/")
    scores = metrics.get(split)
    value = scores.get(key) if isinstance(scores, dict) else None
    if not isinstance(value, int | float):
        available = sorted(
            f"{s}/{k}"
            for s in ("val", "test")
            for k, v in (metrics.get(s) or {}).items()
            if isinstance(v, int | float)
        )
        raise ConfigError(
            f"optimized_metric={name} is not in this run's metrics.json; choose one of "
            f"{', '.join(available) or '(none: did validation run?)'}"
        )
    if not math.isfinite(value):
        raise UserError(
            f"optimized_metric={name} is {value} for this run (diverged training, or a score "
            "undefined on the validation split); Optuna cannot rank it. Narrow the search "
            "space (e.g. a lower optim.lr range) or optimise another metric"
        )
    return float(value)


HIGHER_IS_BETTER = ("accuracy", "f1", "mcc", "auroc", "auprc")


def check_direction(metric: str | None) -> None:
    """An Optuna sweep that minimises AUROC (or maximises a loss) would search for the worst."""
    from hydra.core.hydra_config import HydraConfig

    direction = HydraConfig.get().sweeper.get("direction", "minimize")  # the plugin's default
    if not isinstance(direction, str) and len(direction) == 1:
        direction = direction[0]  # [maximize]: one objective written as a list
    direction = str(getattr(direction, "name", direction))  # or an Optuna Direction enum
    score = str(metric or "").rpartition("/")[2].split("_")[0]
    wanted = "maximize" if score in HIGHER_IS_BETTER else "minimize" if score == "loss" else None
    if wanted and direction in ("minimize", "maximize") and direction != wanted:
        better = "higher" if wanted == "maximize" else "lower"
        raise ConfigError(
            f"optimized_metric={metric} is better when {better}, but "
            f"hydra.sweeper.direction={direction}; set hydra.sweeper.direction={wanted}"
        )


def sweep_optimizes() -> bool:
    """True when Hydra's sweeper reads the task's return value (Optuna), not for single runs."""
    from hydra.core.hydra_config import HydraConfig

    return "optuna" in str(HydraConfig.get().sweeper.get("_target_", "")).lower()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(config: DictConfig) -> float | None:
    """Train one run; under the Optuna sweeper return `optimized_metric` as the objective."""
    cfg = OmegaConf.to_container(config, resolve=True)
    run_dir = Path(cfg["paths"]["output_dir"])
    (run_dir / FAILED_RUN_FILE).unlink(missing_ok=True)  # from an earlier sweep into this dir
    try:
        if sweep_optimizes():
            check_direction(cfg.get("optimized_metric"))
        group_sweep_job(cfg, run_dir)
        metrics = train(cfg, run_dir)
        # Only rank 0 has metrics; only an optimising sweeper reads the value.
        if metrics and cfg.get("optimized_metric") and sweep_optimizes():
            return optimized_value(metrics, cfg["optimized_metric"])
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        if not in_grid_sweep():
            sys.exit(2)
        # Hydra's launcher runs a grid's jobs in turn, and an exit would stop the rest: record
        # the failure in the job's directory (SweepSummary counts it) and go on.
        with atomic_open(run_dir / FAILED_RUN_FILE) as handle:
            handle.write(f"{error}\n")
    return None


def group_sweep_job(cfg: dict, run_dir: Path) -> None:
    """In a multirun (grid or Optuna), group the jobs' W&B runs by the sweep directory."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_config = HydraConfig.get()
    if cfg["logger"].get("wandb") and hydra_config.mode == RunMode.MULTIRUN:
        from bigbird_genomics.training.wandb_setup import sweep_job_settings

        cfg["logger"]["wandb"] = sweep_job_settings(
            dict(cfg["logger"]["wandb"]), Path(hydra_config.sweep.dir), run_dir
        )


def in_grid_sweep() -> bool:
    """True in a `-m` multirun of the basic sweeper (each job independent), not under Optuna."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN and not sweep_optimizes()


if __name__ == "__main__":
    main()
