"""Resuming a run: which checkpoint to continue from, and the checks that keep one run's
checkpoints, settings and outputs from mixing with another's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bigbird_genomics.training.config_checks import ConfigError

log = logging.getLogger(__name__)


def resolve_ckpt_path(value: str | None, run_dir: Path) -> str | None:
    """`ckpt_path=last` resumes from this run's last.ckpt when there is one."""
    if not value:
        return None
    if value == "last":
        last = run_dir / "checkpoints" / "last.ckpt"
        if last.is_file():
            return str(last)
        log.warning(
            "ckpt_path=last but %s does not exist: starting from scratch (to resume an earlier "
            "run, point hydra.run.dir at its directory)", last,
        )
        return None
    if not Path(value).is_file():
        raise ConfigError(f"ckpt_path={value} does not exist")
    return value


def refuse_earlier_checkpoints(run_dir: Path, asked_to_resume: bool) -> None:
    """A new run must not train beside an earlier run's checkpoints: a run that fails or never
    validates would leave them next to its own config, and Lightning would overwrite them."""
    earlier = sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt"))
    if earlier:
        how = (
            "but no last.ckpt to resume from;" if asked_to_resume
            else "; resume it with ckpt_path=last, or"
        )
        raise ConfigError(
            f"{run_dir} holds checkpoints of an earlier run ({', '.join(earlier)}){how} "
            f"remove {run_dir / 'checkpoints'} (or pick another hydra.run.dir) to start over"
        )


# Settings a resumed run must share with its checkpoint: they fix the weights' shapes or what
# the weights mean. (Dropout, the attention backend and the optimiser may change.)
RESUME_KEYS = {
    "model": ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
              "max_tokens", "rotary_base", "stem_kernel", "stem_pool", "stem_layers"),
    "attention": ("block_size", "num_window_blocks", "num_global_blocks", "num_random_blocks",
                  "random_per_head", "seed"),
    "tokenizer": ("k", "stride"),
    "task": ("type", "label_names", "num_classes", "pooling"),
}
# What a key missing from an older checkpoint meant (the options came later).
RESUME_DEFAULTS = {"stem_kernel": 0, "stem_pool": 1, "stem_layers": 1, "random_per_head": False,
                   "pooling": "cls"}  # fmt: skip


def check_resumable(module, ckpt_path: str, ema: bool) -> None:
    """Name the settings that differ from the checkpoint's, before Lightning fails on a shape
    (or, for the weight average, silently resumes the averaged weights as the trained ones)."""
    from bigbird_genomics.inference.checkpoint import read_checkpoint

    checkpoint = read_checkpoint(ckpt_path)
    saved = checkpoint["hyper_parameters"]

    def value(hparams: dict, group: str, key: str) -> Any:
        return hparams.get(group, {}).get(key, RESUME_DEFAULTS.get(key))

    changed = [
        f"{group}.{key}: {value(saved, group, key)!r} in the checkpoint, {now!r} now"
        for group, keys in RESUME_KEYS.items()
        for key in keys
        if (now := value(module.hparams, group, key)) != value(saved, group, key)
    ]
    if ("current_model_state" in checkpoint) != ema:
        changed.append(
            "callbacks.ema_decay: "
            + ("set in the checkpoint, null now" if not ema else "null in the checkpoint, set now")
        )
    if changed:
        raise ConfigError(
            f"cannot resume from {ckpt_path}: it was trained with other settings ("
            + "; ".join(changed)
            + "); resume with the checkpoint's settings, or start a new run in another "
            "hydra.run.dir"
        )


def checked_ckpt_path(cfg: dict[str, Any], run_dir: Path, module) -> str | None:
    """The checkpoint to resume from (None: a new run), after the checks that keep one run's
    checkpoints, settings and outputs from mixing with another's."""
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), run_dir)
    if ckpt_path is None:
        refuse_earlier_checkpoints(run_dir, asked_to_resume=cfg.get("ckpt_path") == "last")
        return None
    check_resumable(module, ckpt_path, ema=bool(cfg["callbacks"].get("ema_decay")))
    best = run_dir / "checkpoints" / "best.ckpt"
    if Path(ckpt_path).resolve().parent == best.parent.resolve() and not best.is_file():
        raise ConfigError(
            f"{best} is missing (deleted?) beside the last.ckpt to resume from, so the resumed "
            f"run could not report its best model; remove {best.parent} to start over"
        )
    return ckpt_path
