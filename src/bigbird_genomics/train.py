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
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from bigbird_genomics.config_checks import ConfigError, check_against_data, check_static
from bigbird_genomics.datasets.io import atomic_open
from bigbird_genomics.errors import UserError
from bigbird_genomics.run_outputs import finish_run
from bigbird_genomics.sweep_summary import FAILED_RUN_FILE

log = logging.getLogger(__name__)

# conf/ at the repository root (editable install); BIGBIRD_GENOMICS_CONF points elsewhere.
CONF_DIR = Path(
    os.environ.get("BIGBIRD_GENOMICS_CONF", Path(__file__).resolve().parents[2] / "conf")
)


# --------------------------------------------------------------------------- data set
def _atomic_dir(target: Path, build) -> Path:
    """Build a directory under a temporary name and rename it into place (first one wins)."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        build(temporary)
        os.replace(temporary, target)
    except OSError:
        if not target.exists():
            raise
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    return target


def prepare_demo_dataset(cfg: dict[str, Any], tokenizer) -> Path:
    """Generate and tokenize the demo data of `task.demo` into the cache (once per settings)."""
    from bigbird_genomics.demo import write_demo_data
    from bigbird_genomics.tokenized import tokenize_fasta

    seed = cfg["data"]["demo_seed"]
    cache = Path(cfg["paths"]["cache_dir"]) / f"demo-seed{seed}"
    fasta_dir = _atomic_dir(cache / "fasta", lambda out: write_demo_data(out, seed=seed))
    demo = cfg["task"]["demo"]
    max_tokens = cfg["model"]["max_tokens"] - 1
    # The vocabulary hash in the name: a new vocabulary never reuses stale token ids.
    kmers = f"k{tokenizer.k}-s{tokenizer.stride}-{tokenizer.vocab_hash}"
    name = f"{demo['fasta']}-{kmers}-t{max_tokens}"

    def build(out: Path) -> None:
        tokenize_fasta(
            fasta_dir / f"{demo['fasta']}.fa",
            out,
            tokenizer,
            labels_table=fasta_dir / f"{demo['labels']}.tsv" if demo.get("labels") else None,
            label_groups_table=(
                fasta_dir / f"{demo['label_groups']}.tsv" if demo.get("label_groups") else None
            ),
            max_tokens=max_tokens,
            seed=seed,
        )

    return _atomic_dir(cache / "tokenized" / name, build)


def label_groups_of(data) -> dict[str, str]:
    groups = data.label_groups
    if not groups:
        return {}
    if isinstance(groups, dict):
        return {str(k): str(v) for k, v in groups.items()}
    return {str(name): str(group) for name, group in zip(data.label_names, groups, strict=True)}


def positive_weights(data, limit: float) -> list[float]:
    """neg/pos per label on the training split, clipped to [1, limit] (rare profiles)."""
    labels = np.stack([np.asarray(data.labels(int(i))) for i in data.split_indices("train")])
    positives = labels.sum(axis=0)
    negatives = len(labels) - positives
    return np.clip(negatives / np.maximum(positives, 1), 1.0, limit).astype(float).tolist()


# ------------------------------------------------------------------------ building
def task_hparams(cfg: dict[str, Any], data) -> dict[str, Any]:
    task = cfg["task"]
    hparams: dict[str, Any] = {
        "name": task["name"],
        "type": task["type"],
        "pooling": task["pooling"],
        "num_classes": task.get("num_classes"),
        "mask_fraction": task.get("mask_fraction", 0.15),
        "label_names": [] if task["type"] == "mlm" else [str(n) for n in data.label_names],
        "label_groups": {} if task["type"] == "mlm" else label_groups_of(data),
        "pos_weight": None,
    }
    if task.get("pos_weight") == "auto" and task["type"] in ("binary", "multilabel"):
        hparams["pos_weight"] = positive_weights(data, float(task.get("max_pos_weight", 100.0)))
    elif isinstance(task.get("pos_weight"), list):
        hparams["pos_weight"] = [float(w) for w in task["pos_weight"]]
    return hparams


def model_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The encoder's settings from `cfg.model` (less the vocabulary, which the data set fixes);
    the stem keys are optional in user configs, so their defaults live here, once."""
    model = {
        key: cfg["model"][key]
        for key in (
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "dropout",
            "max_tokens",
            "rotary_base",
        )
    }
    model["stem_kernel"] = int(cfg["model"].get("stem_kernel") or 0)
    model["stem_pool"] = int(cfg["model"].get("stem_pool") or 1)
    model["stem_layers"] = int(cfg["model"].get("stem_layers") or 1)
    return model


def build_module(cfg: dict[str, Any], data):
    from bigbird_genomics.inference import load_encoder_weights
    from bigbird_genomics.lightning_module import GenomicsModule

    tokenizer = data.tokenizer
    module = GenomicsModule(
        model={**model_settings(cfg), "vocab_size": tokenizer.vocab_size},
        attention=dict(cfg["attention"]),
        task=task_hparams(cfg, data),
        tokenizer=tokenizer.to_dict(),
        optim=dict(cfg["optim"]),
        seed=int(cfg["seed"]),
        reverse_complement=bool(cfg["data"].get("reverse_complement", False)),
    )
    if cfg["model"].get("init_from"):
        copied = load_encoder_weights(module.network, cfg["model"]["init_from"])
        log.info(
            "model.init_from: copied %d encoder tensors from %s", copied, cfg["model"]["init_from"]
        )
    return module


def build_callbacks(cfg: dict[str, Any], run_dir: Path) -> list[pl.Callback]:
    from pytorch_lightning.callbacks import (
        EarlyStopping,
        EMAWeightAveraging,
        LearningRateMonitor,
        ModelCheckpoint,
        RichProgressBar,
        TQDMProgressBar,
    )

    from bigbird_genomics.training_callbacks import TokenThroughput

    settings = cfg["callbacks"]
    monitor, mode = cfg["task"]["monitor"], cfg["task"]["monitor_mode"]
    callbacks: list[pl.Callback] = [
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="best",
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            save_last=True,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        ),
        TokenThroughput(),
    ]
    if settings.get("early_stopping"):
        early = settings["early_stopping"]
        # Checked after each validation, not at the train epoch's end: a run that stops inside
        # its first epoch (trainer.max_steps) has no val metric there yet.
        callbacks.append(
            EarlyStopping(
                monitor=monitor,
                mode=mode,
                patience=early["patience"],
                min_delta=early["min_delta"],
                check_on_train_epoch_end=False,
            )
        )
    if settings.get("ema_decay"):
        # Lightning's own EMA callback: validation, the checkpoints' `state_dict` (so the best
        # checkpoint, evaluate, predict and init_from) and the final model use the averaged
        # weights; `current_model_state` keeps the raw ones for resuming. Buffers are constants
        # here (rotary tables), so only the parameters are averaged.
        callbacks.append(
            EMAWeightAveraging(decay=float(settings["ema_decay"]), use_buffers=False)
        )
    if cfg["logger"].get("wandb") or cfg["logger"].get("csv"):
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    bar = settings.get("progress_bar")
    if bar == "rich":
        callbacks.append(RichProgressBar())
    elif bar == "tqdm":
        callbacks.append(TQDMProgressBar(refresh_rate=settings.get("refresh_rate", 10)))
    return callbacks


def build_loggers(cfg: dict[str, Any], run_dir: Path) -> list:
    from pytorch_lightning.loggers import CSVLogger

    loggers: list = []
    if cfg["logger"].get("csv"):
        loggers.append(CSVLogger(save_dir=str(run_dir), name="csv", version=""))
    if cfg["logger"].get("wandb"):
        from bigbird_genomics.wandb_setup import make_wandb_logger

        loggers.append(make_wandb_logger(dict(cfg["logger"]["wandb"]), run_dir))
    return loggers


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
    from bigbird_genomics.inference import read_checkpoint

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


# ------------------------------------------------------------------------ training
def train(cfg: dict[str, Any], run_dir: Path, extra_callbacks: list | None = None) -> dict:
    """Train one model into `run_dir` and write its outputs; returns the metrics.json payload."""
    from bigbird_genomics.datamodule import TokenizedDataModule
    from bigbird_genomics.kmers import KmerTokenizer
    from bigbird_genomics.model.encoder import stem_downsample

    check_static(cfg)
    tokenizer = KmerTokenizer(k=cfg["tokenizer"]["k"], stride=cfg["tokenizer"]["stride"])
    model = model_settings(cfg)
    given = cfg["data"]["dataset"]
    if given and not (Path(given) / "meta.json").is_file():
        raise ConfigError(
            f"data.dataset={given} is not a tokenized data set (no meta.json there); make one "
            "with `bigbird-genomics tokenize --fasta FASTA --out DIR` and pass that DIR, or set "
            "data.dataset=null for the demo data"
        )
    dataset = given or prepare_demo_dataset(cfg, tokenizer)
    pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
    datamodule = TokenizedDataModule(
        dataset,
        task_type=cfg["task"]["type"],
        block_size=cfg["attention"]["block_size"],
        max_tokens=cfg["model"]["max_tokens"],
        batch_size=cfg["data"]["batch_size"],
        eval_batch_size=cfg["data"]["eval_batch_size"],
        num_workers=cfg["data"]["num_workers"],
        seed=int(cfg["seed"]),
        downsample=stem_downsample(model["stem_pool"], model["stem_layers"]),
    )
    check_against_data(cfg, datamodule.data, tokenizer.to_dict())
    module = build_module(cfg, datamodule.data)
    ckpt_path = checked_ckpt_path(cfg, run_dir, module)
    run_dir.mkdir(parents=True, exist_ok=True)
    if ckpt_path is not None:
        keep_csv_history(run_dir / "csv")
    loggers = build_loggers(cfg, run_dir)
    callbacks = build_callbacks(cfg, run_dir) + list(extra_callbacks or [])
    trainer_settings = dict(cfg["trainer"])
    try:
        trainer = pl.Trainer(
            **trainer_settings,
            default_root_dir=str(run_dir),
            logger=loggers or False,
            callbacks=callbacks,
            use_distributed_sampler=False,  # the batch sampler shards by rank itself
            enable_progress_bar=bool(cfg["callbacks"].get("progress_bar")),
        )
    except TypeError as error:
        raise ConfigError(f"invalid trainer setting: {error} (see conf/trainer/)") from error
    if trainer.is_global_zero:
        with atomic_open(run_dir / "config.yaml") as handle:
            handle.write(OmegaConf.to_yaml(OmegaConf.create(cfg), resolve=True))
        for logger in loggers:
            logger.log_hyperparams(
                {"config": cfg, "model/parameters": module.network.num_parameters()}
            )
    # weights_only: a checkpoint given to resume from never runs code (torch < 2.6 defaults to a
    # full unpickle); ours hold tensors and plain hyper-parameters only
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    metrics = finish_run(cfg, run_dir, trainer, module, datamodule, loggers)
    if metrics:  # rank 0 only
        add_monitored_score(metrics, trainer, cfg["task"]["monitor"], run_dir)
    return metrics


def add_monitored_score(metrics: dict, trainer: pl.Trainer, monitor: str, run_dir: Path) -> None:
    """Add the best checkpoint's monitored score (e.g. val/loss) to metrics.json.

    finish_run scores val/test by re-predicting the best checkpoint, which yields no loss; the
    loss Lightning logged for that checkpoint is what chose it, and what an Optuna sweep
    minimises by default (`optimized_metric: val/loss`). It comes from Lightning's validation,
    which reads the forward strand only, even where the other metrics of the split average both
    strands (`strands: both`, a model trained with data.reverse_complement=true).
    """
    from bigbird_genomics.run_outputs import write_json

    score = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    split, _, key = monitor.partition("/")
    if score is None or key in metrics.get(split, {}):
        return
    metrics.setdefault(split, {})[key] = float(score)
    write_json(run_dir / "metrics.json", metrics)


def keep_csv_history(csv_dir: Path) -> None:
    """Move a resumed run's metrics.csv aside (CSVLogger would overwrite it) as part<N>.csv."""
    current = csv_dir / "metrics.csv"
    if current.is_file() and os.environ.get("LOCAL_RANK", "0") == "0":
        part = len(list(csv_dir.glob("metrics.part*.csv")))
        os.replace(current, csv_dir / f"metrics.part{part}.csv")


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


def in_grid_sweep() -> bool:
    """True in a `-m` multirun of the basic sweeper (each job independent), not under Optuna."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN and not sweep_optimizes()


if __name__ == "__main__":
    main()
