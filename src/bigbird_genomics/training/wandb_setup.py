"""Weights & Biases: online only when the user configured it, offline otherwise, never blocking.

Order of precedence: the `WANDB_MODE` environment variable, then `logger.wandb.mode` in the
config, then credentials (`WANDB_API_KEY` or an api.wandb.ai entry in ~/.netrc) -> online;
with none of these the run is written offline under the run directory (`wandb sync` uploads it
later). An online start that fails (no network) falls back to offline instead of stopping
training.
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
    logger = WandbLogger(mode=mode, **kwargs)
    if mode == "online":
        try:
            logger.experiment  # noqa: B018 (starts the run now, so a failure is caught here)
        except Exception as error:  # wandb raises its own CommError / UsageError / timeouts
            warnings.warn(f"W&B online start failed ({error}); logging offline instead",
                          stacklevel=2)
            logger = WandbLogger(mode="offline", **kwargs)
    return logger
