"""One training run: build the data module, model, callbacks and loggers from a resolved config,
fit, and write the run directory (config.yaml, checkpoints/, metrics.json, plots/, csv/, wandb/).

The Hydra entry point (`app.py`) calls `train`; tests call it directly with a plain dict.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from omegaconf import OmegaConf

from bigbird_genomics.io.paths import check_outputs
from bigbird_genomics.io.writers import atomic_open
from bigbird_genomics.tokens.store import label_groups_of
from bigbird_genomics.training.checkpoint_io import AtomicCheckpointIO
from bigbird_genomics.training.config_checks import (
    ConfigError,
    check_against_data,
    check_machine,
    check_static,
)
from bigbird_genomics.training.noise import silence_third_party_noise
from bigbird_genomics.training.resume import checked_ckpt_path
from bigbird_genomics.training.run_outputs import finish_run, summary_lines

log = logging.getLogger(__name__)


def positive_weights(data, limit: float) -> list[float]:
    """neg/pos per label on the training split, clipped to [1, limit] (rare profiles)."""
    labels = np.stack([np.asarray(data.labels(int(i))) for i in data.split_indices("train")])
    positives = labels.sum(axis=0)
    negatives = len(labels) - positives
    return np.clip(negatives / np.maximum(positives, 1), 1.0, limit).astype(float).tolist()


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
        # the sequence length training saw: `predict` scans with windows of this length
        "window_bp": data.longest_window_bp,
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
    from bigbird_genomics.inference.checkpoint import load_encoder_weights
    from bigbird_genomics.training.module import GenomicsModule

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

    from bigbird_genomics.training.callbacks import TokenThroughput

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
        from bigbird_genomics.training.wandb_setup import make_wandb_logger

        loggers.append(make_wandb_logger(dict(cfg["logger"]["wandb"]), run_dir))
    return loggers


def _demo_dataset(cfg: dict[str, Any], tokenizer) -> Path:
    """The embedded demo data of `task.demo`, said loudly: a user who forgot data.dataset must
    not mistake a model of synthetic data for one of theirs."""
    from bigbird_genomics.builders.demo_dataset import demo_dataset

    demo = cfg["task"]["demo"]
    path = demo_dataset(
        cfg["paths"]["cache_dir"],
        seed=int(cfg["data"]["demo_seed"]),
        fasta=demo["fasta"],
        labels=demo.get("labels"),
        label_groups=demo.get("label_groups"),
        tokenizer=tokenizer,
        max_tokens=cfg["model"]["max_tokens"] - 1,
    )
    log.warning(
        "data.dataset is not set: training on the SYNTHETIC demo data (%s, %s); pass "
        "data.dataset=DIR (from `bigbird-genomics tokenize`) to train on your own data",
        demo["fasta"], path,
    )
    return path


def train(cfg: dict[str, Any], run_dir: Path, extra_callbacks: list | None = None) -> dict:
    """Train one model into `run_dir` and write its outputs; returns the metrics.json payload."""
    from bigbird_genomics.model.encoder import EncoderConfig
    from bigbird_genomics.tokens.kmers import KmerTokenizer
    from bigbird_genomics.training.datamodule import TokenizedDataModule

    silence_third_party_noise()
    check_static(cfg)
    check_machine(cfg["trainer"])
    # a read-only or full location fails here, in one line, not after the data set is built
    check_outputs("bigbird-genomics-train", output_dirs={"hydra.run.dir": run_dir})
    tokenizer = KmerTokenizer(k=cfg["tokenizer"]["k"], stride=cfg["tokenizer"]["stride"])
    model = model_settings(cfg)
    given = cfg["data"]["dataset"]
    if given and not (Path(given) / "meta.json").is_file():
        raise ConfigError(
            f"data.dataset={given} is not a tokenized data set (no meta.json there); make one "
            "with `bigbird-genomics tokenize --fasta FASTA --out DIR` and pass that DIR, or set "
            "data.dataset=null for the demo data"
        )
    dataset = given or _demo_dataset(cfg, tokenizer)
    pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
    datamodule = TokenizedDataModule(
        dataset,
        task_type=cfg["task"]["type"],
        # the model's own padding rule (a pooling stem pads differently)
        pad_width=partial(
            EncoderConfig(vocab_size=tokenizer.vocab_size, **model).pad_width,
            block_size=cfg["attention"]["block_size"],
        ),
        max_tokens=cfg["model"]["max_tokens"],
        batch_size=cfg["data"]["batch_size"],
        eval_batch_size=cfg["data"]["eval_batch_size"],
        num_workers=cfg["data"]["num_workers"],
        seed=int(cfg["seed"]),
    )
    check_against_data(cfg, datamodule.data, tokenizer.to_dict())
    module = build_module(cfg, datamodule.data)
    ckpt_path = checked_ckpt_path(cfg, run_dir, module)
    run_dir.mkdir(parents=True, exist_ok=True)
    if ckpt_path is not None:
        keep_csv_history(run_dir / "csv")
    loggers = build_loggers(cfg, run_dir)
    failed = True
    try:
        metrics = _fit_and_finish(cfg, run_dir, module, datamodule, loggers, ckpt_path,
                                  build_callbacks(cfg, run_dir) + list(extra_callbacks or []))
        failed = False
    finally:
        if cfg["logger"].get("wandb"):
            from bigbird_genomics.training.wandb_setup import finish_wandb

            finish_wandb(loggers, failed)
    return metrics


def _fit_and_finish(cfg: dict[str, Any], run_dir: Path, module, datamodule, loggers: list,
                    ckpt_path: str | None, callbacks: list[pl.Callback]) -> dict:
    """Fit, then write the run directory; returns the metrics.json payload (rank 0 only)."""
    trainer_settings = dict(cfg["trainer"])
    try:
        trainer = pl.Trainer(
            **trainer_settings,
            default_root_dir=str(run_dir),
            logger=loggers or False,
            callbacks=callbacks,
            use_distributed_sampler=False,  # the batch sampler shards by rank itself
            plugins=[AtomicCheckpointIO()],  # hashed, written beside the target and renamed
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
        for line in summary_lines(metrics):
            log.info(line)
        log.info("run written to %s", run_dir)
    return metrics


def add_monitored_score(metrics: dict, trainer: pl.Trainer, monitor: str, run_dir: Path) -> None:
    """Add the best checkpoint's monitored score (e.g. val/loss) to metrics.json.

    finish_run scores val/test by re-predicting the best checkpoint, which yields no loss; the
    loss Lightning logged for that checkpoint is what chose it, and what an Optuna sweep
    minimises by default (`optimized_metric: val/loss`). It comes from Lightning's validation,
    which reads the forward strand only, even where the other metrics of the split average both
    strands (`strands: both`, a model trained with data.reverse_complement=true).
    """
    from bigbird_genomics.io.writers import write_json

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


