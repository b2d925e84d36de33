"""Weights & Biases: online only when the user configured it, offline otherwise, never blocking.

Order of precedence: the `WANDB_MODE` environment variable, then `logger.wandb.mode` in the
config, then credentials (`WANDB_API_KEY` or an api.wandb.ai entry in ~/.netrc) -> online;
with none of these the run is written offline under the run directory (`wandb sync` uploads it
later). An online start that fails (no network) falls back to offline instead of stopping
training.

Every training run is its own W&B run, finished when the run ends (`finish_wandb`), so the jobs
of a Hydra multirun (one process) do not all log into the first job's run; a multirun's jobs
share a W&B `group` named after the sweep directory (`sweep_job_settings`).
"""

from __future__ import annotations

import netrc
import os
import warnings
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import WandbLogger

from bigbird_genomics.errors import UserError

MODES = ("online", "offline", "disabled")
INIT_TIMEOUT_S = 30  # wandb waits up to 90 s by default before giving up on the network


def has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any("wandb" in host for host in hosts)


def choose_mode(configured: str | None = None) -> str:
    """online / offline / disabled, following the precedence in the module docstring."""
    for source, candidate in (("WANDB_MODE", os.environ.get("WANDB_MODE")),
                              ("logger.wandb.mode", configured)):  # fmt: skip
        if candidate:
            candidate = {"dryrun": "offline", "run": "online"}.get(candidate, candidate)  # wandb's
            if candidate not in MODES:
                raise UserError(
                    f"{source}={candidate!r}: the W&B mode must be one of {', '.join(MODES)}"
                )
            return candidate
    return "online" if has_credentials() else "offline"


def make_wandb_logger(settings: dict[str, Any], run_dir: Path) -> WandbLogger:
    """A WandbLogger writing under `run_dir/wandb`; falls back to offline if online fails."""
    import wandb  # imported here: wandb is slow to import and unused without this logger

    mode = choose_mode(settings.get("mode"))
    run_dir.mkdir(parents=True, exist_ok=True)
    kwargs = {
        "project": settings.get("project", "bigbird-genomics"),
        "entity": settings.get("entity"),
        "name": settings.get("name"),
        "group": settings.get("group"),
        "tags": list(settings.get("tags") or []),
        "save_dir": str(run_dir),
        "log_model": False,
        "settings": wandb.Settings(init_timeout=INIT_TIMEOUT_S, silent=True),
    }
    logger = _without_anonymous(WandbLogger(mode=mode, **kwargs))
    if mode == "online":
        try:
            logger.experiment  # noqa: B018 (starts the run now, so a failure is caught here)
        except Exception as error:  # wandb raises its own CommError / UsageError / timeouts
            warnings.warn(f"W&B online start failed ({error}); logging offline instead",
                          stacklevel=2)
            logger = _without_anonymous(WandbLogger(mode="offline", **kwargs))
    return logger


def _without_anonymous(logger: WandbLogger) -> WandbLogger:
    """Lightning passes `anonymous=None` to `wandb.init` whatever the user asked; wandb (0.31)
    warns about any explicit value ("The anonymous setting has no effect"), so drop the key."""
    init_arguments = getattr(logger, "_wandb_init", None)
    if isinstance(init_arguments, dict) and init_arguments.get("anonymous") is None:
        init_arguments.pop("anonymous", None)
    return logger


def sweep_job_settings(settings: dict[str, Any], sweep_dir: Path, job_dir: Path) -> dict[str, Any]:
    """A multirun job's W&B settings: grouped by the sweep directory's name and named
    `<group>/<job subdirectory>`, where the config leaves `group` / `name` unset."""
    group = settings.get("group") or Path(sweep_dir).name
    try:
        job = Path(job_dir).resolve().relative_to(Path(sweep_dir).resolve()).as_posix()
    except ValueError:  # a job directory outside the sweep directory (custom hydra.sweep.subdir)
        job = Path(job_dir).name
    return {**settings, "group": group, "name": settings.get("name") or f"{group}/{job}"}


def finish_wandb(loggers: list, failed: bool) -> None:
    """End the W&B run this training started (exit code 1 when it failed).

    A multirun trains every job in one process; an unfinished run stays `wandb.run`, and the
    next job's WandbLogger would log into it. Only runs our WandbLoggers started are finished.
    """
    for logger in loggers:
        if not isinstance(logger, WandbLogger):
            continue
        run = getattr(logger, "_experiment", None)  # None: the run never started (no logging)
        if run is not None and hasattr(run, "finish"):
            run.finish(exit_code=1 if failed else 0)
