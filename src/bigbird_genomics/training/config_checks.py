"""Checks of a training configuration that fail before any training starts.

Hydra already rejects unknown keys (the configs are in struct mode); these are the checks of
values and of the config against the data set, each naming the key to change.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from bigbird_genomics.attention import SparsityConfig
from bigbird_genomics.errors import UserError
from bigbird_genomics.io.labels import CLASS_LABEL
from bigbird_genomics.model.encoder import EncoderConfig
from bigbird_genomics.model.network import TASK_TYPES

POOLINGS = ("cls", "mean")


class ConfigError(UserError):
    """A configuration value that cannot work; the message names the key."""


def sparsity_config(attention: dict[str, Any]) -> SparsityConfig:
    try:
        return SparsityConfig(**attention).validate("attention")
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid attention config: {error}") from error


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def encoder_config(model: dict[str, Any]) -> EncoderConfig:
    """The encoder's shape from `cfg.model`, checked by the model's own rules
    (`EncoderConfig.validate`); the vocabulary comes later, from the data set."""
    keys = {field.name for field in dataclasses.fields(EncoderConfig)} - {"vocab_size"}
    settings = {key: model.get(key) for key in keys if key in model}
    for key, default in (("stem_kernel", 0), ("stem_pool", 1), ("stem_layers", 1)):
        if settings.get(key) is None:  # optional in user configs
            settings[key] = default
    for key in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "max_tokens"):
        settings.setdefault(key, None)  # a missing size is refused, naming it
    try:
        return EncoderConfig(vocab_size=1, **settings).validate("model")
    except ValueError as error:
        raise ConfigError(str(error)) from None


def check_static(cfg: dict[str, Any]) -> None:
    """Checks that need only the configuration (no data)."""
    model = cfg["model"]
    encoder = encoder_config(model)
    _check_trainer(cfg["trainer"])
    sparsity = sparsity_config(cfg["attention"])
    context = model["max_tokens"]
    if context % sparsity.block_size:
        raise ConfigError(
            f"attention.block_size={sparsity.block_size} does not divide the context "
            f"model.max_tokens={context}; choose a block size that divides it (e.g. "
            f"{_divisors_hint(context)})"
        )
    _check_stem(model, cfg["task"])
    task = cfg["task"]
    if task["type"] not in TASK_TYPES:
        raise ConfigError(f"task.type={task['type']!r} must be one of {', '.join(TASK_TYPES)}")
    _check_monitor(task)
    if task["pooling"] not in POOLINGS:
        raise ConfigError(f"task.pooling={task['pooling']!r} must be one of {', '.join(POOLINGS)}")
    if task["type"] == "multiclass" and (task.get("num_classes") or 0) < 2:
        raise ConfigError("task.num_classes must be set (>= 2) for a multiclass task")
    _check_pos_weight(task)
    data = cfg["data"]
    for key in ("batch_size", "eval_batch_size"):
        if data[key] < 1:
            raise ConfigError(f"data.{key}={data[key]} must be >= 1")
    if data["num_workers"] < 0:
        raise ConfigError(f"data.num_workers={data['num_workers']} must be >= 0")
    _check_strategy(cfg["trainer"])
    _check_ema((cfg.get("callbacks") or {}).get("ema_decay"), cfg["trainer"])
    _check_optim(cfg["optim"])
    _check_backend(sparsity, encoder.head_dim, cfg["trainer"])


def _check_stem(model: dict[str, Any], task: dict[str, Any]) -> None:
    """The stem's shape is the model's (`EncoderConfig.validate`); this is its fit to the task."""
    pool = model.get("stem_pool") or 1
    if pool > 1 and task["type"] == "mlm":
        raise ConfigError(
            f"model.stem_pool={pool} pools tokens away, but task.type=mlm predicts every token; "
            "set model.stem_pool=1"
        )


def _check_pos_weight(task: dict[str, Any]) -> None:
    """`task.pos_weight` is null, auto, or one positive number per label; anything else would be
    silently ignored by the loss."""
    weight = task.get("pos_weight")
    if weight is None or weight == "auto":
        return
    if isinstance(weight, (list, tuple)) and weight and all(
        isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in weight
    ):
        return
    raise ConfigError(
        f"task.pos_weight={weight!r} must be null, auto (neg/pos of the training split) or a "
        "list of positive numbers, one per label (e.g. [3.0])"
    )


def _check_trainer(trainer: dict[str, Any]) -> None:
    """Trainer values Lightning accepts but that train nothing, forever, or fail late."""
    from typing import get_args

    from lightning_fabric.connector import _PRECISION_INPUT

    max_epochs, max_steps = trainer.get("max_epochs"), trainer.get("max_steps", -1)
    if not _is_int(max_steps) or not (max_steps == -1 or max_steps >= 1):
        raise ConfigError(
            f"trainer.max_steps={max_steps!r} must be a whole number >= 1, or -1 (no step limit)"
        )
    if max_epochs is not None and (not _is_int(max_epochs) or max_epochs < -1):
        raise ConfigError(
            f"trainer.max_epochs={max_epochs!r} must be a whole number >= 1 (or -1 with "
            "trainer.max_steps)"
        )
    if max_epochs == 0:
        raise ConfigError(
            "trainer.max_epochs=0 trains nothing (no checkpoint is written); set it to >= 1"
        )
    if max_epochs in (None, -1) and max_steps == -1:
        raise ConfigError(
            f"trainer.max_epochs={max_epochs} without trainer.max_steps trains forever (and the "
            "learning-rate schedule has no end); set trainer.max_epochs >= 1 or trainer.max_steps"
        )
    min_epochs = trainer.get("min_epochs")
    if min_epochs is not None and (not _is_int(min_epochs) or min_epochs < 0):
        raise ConfigError(f"trainer.min_epochs={min_epochs!r} must be a whole number >= 0")
    if min_epochs and _is_int(max_epochs) and max_epochs >= 1 and min_epochs > max_epochs:
        raise ConfigError(
            f"trainer.min_epochs={min_epochs} is more than trainer.max_epochs={max_epochs}; "
            "lower trainer.min_epochs"
        )
    interval = trainer.get("val_check_interval")
    if interval is not None and (
        isinstance(interval, bool)
        or not isinstance(interval, (int, float))
        or interval <= 0
        or (isinstance(interval, float) and interval > 1.0)
    ):
        raise ConfigError(
            f"trainer.val_check_interval={interval!r} must be a fraction of an epoch in (0, 1] "
            "or a whole number of training batches >= 1"
        )
    precisions = {str(p) for group in get_args(_PRECISION_INPUT) for p in get_args(group)}
    if str(trainer.get("precision")) not in precisions:
        raise ConfigError(
            f"trainer.precision={trainer.get('precision')!r} is not a Lightning precision; use "
            "one of 32-true, 16-mixed, bf16-mixed, bf16-true, 64-true"
        )
    devices = trainer.get("devices")
    if devices != "auto" and not (
        (_is_int(devices) and (devices >= 1 or devices == -1))
        or (isinstance(devices, (list, tuple)) and devices)
        or (isinstance(devices, str) and devices.strip() not in ("", "0"))
    ):
        raise ConfigError(
            f"trainer.devices={devices!r} must be >= 1 (how many), -1 (all), a list of device "
            "ids or auto"
        )


def check_machine(trainer: dict[str, Any]) -> None:
    """What this machine must have for the config (a config for a GPU node is valid, and is
    checked by `check_static`, on a laptop; it only cannot train there)."""
    accelerator = str(trainer.get("accelerator"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but no CUDA GPU is available here (or torch is a "
            "CPU build); use trainer.accelerator=cpu (or auto)"
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.accelerator=mps but MPS (Apple GPU) is not available here")


def _check_backend(sparsity: SparsityConfig, head_dim: int, trainer: dict[str, Any]) -> None:
    """CUDA-only attention kernels would otherwise fail at the first training step."""
    if sparsity.backend not in ("triton", "flex"):
        return
    accelerator = str(trainer.get("accelerator"))
    if accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()):
        raise ConfigError(
            f"attention.backend={sparsity.backend} trains only on CUDA GPUs, but "
            f"trainer.accelerator={accelerator} runs on CPU here; use attention.backend=auto "
            "(it picks block on CPU)"
        )
    if sparsity.backend == "triton":
        for key, value in (("attention.block_size", sparsity.block_size),
                           ("model.hidden_size / model.num_heads", head_dim)):  # fmt: skip
            if value < 16 or value & (value - 1):
                raise ConfigError(
                    f"attention.backend=triton needs {key} to be a power of two >= 16, got "
                    f"{value}; use attention.backend=auto (it falls back to block)"
                )


def _check_strategy(trainer: dict[str, Any]) -> None:
    """FSDP limits Lightning 2.6 would report only after the model is built (or mid-step)."""
    strategy, accelerator = str(trainer.get("strategy")), str(trainer.get("accelerator"))
    if not strategy.startswith("fsdp"):
        return
    if accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()):
        raise ConfigError(
            f"trainer.strategy={strategy} needs CUDA GPUs, but trainer.accelerator={accelerator} "
            "runs on CPU here and Lightning supports FSDP only with trainer.accelerator=gpu. "
            "On CPU use trainer=ddp trainer.accelerator=cpu (data-parallel over gloo processes)"
        )
    # Measured on an H100: the first optimizer step fails with "gradient_clip_algorithm='norm'
    # is currently not supported for FSDPPrecision".
    if (
        trainer.get("gradient_clip_val")
        and trainer.get("gradient_clip_algorithm", "norm") == "norm"
    ):
        raise ConfigError(
            f"trainer.strategy={strategy} cannot clip gradients by norm in Lightning; set "
            f"trainer.gradient_clip_val=null (it is {trainer['gradient_clip_val']})"
        )


# What the LightningModule logs at each validation, by task type (training/module.py,
# metrics.py); multi-label groups add val/group/<group>/<score>.
MONITORS = {
    "binary": ("val/loss", "val/accuracy", "val/f1", "val/mcc", "val/auroc", "val/auprc"),
    "multilabel": ("val/loss", "val/accuracy", "val/auroc_mean", "val/auroc_median",
                   "val/auprc_mean", "val/auprc_median", "val/profiles_scored"),
    "mlm": ("val/loss", "val/accuracy"),
}
MONITORS["multiclass"] = MONITORS["binary"]


def _check_monitor(task: dict[str, Any]) -> None:
    """A misspelt monitor would otherwise fail after the first epoch, inside Lightning."""
    if task["monitor_mode"] not in ("min", "max"):
        raise ConfigError(f"task.monitor_mode={task['monitor_mode']!r} must be min or max")
    known = MONITORS.get(task["type"], ())
    monitor = task["monitor"]
    if known and monitor not in known and not (
        task["type"] == "multilabel" and str(monitor).startswith("val/group/")
    ):
        raise ConfigError(
            f"task.monitor={monitor} is not logged for task.type={task['type']}; use one of "
            f"{', '.join(known)}"
        )


def _check_optim(optim: dict[str, Any]) -> None:
    """Values AdamW and the warm-up + cosine schedule accept but that cannot train well."""
    if not optim["lr"] > 0:
        raise ConfigError(f"optim.lr={optim['lr']} must be > 0")
    if optim["weight_decay"] < 0:
        raise ConfigError(f"optim.weight_decay={optim['weight_decay']} must be >= 0")
    if not 0.0 <= optim["warmup_ratio"] <= 1.0:
        raise ConfigError(f"optim.warmup_ratio={optim['warmup_ratio']} must be in [0, 1]")
    if optim.get("warmup_steps") is not None and optim["warmup_steps"] < 0:
        raise ConfigError(f"optim.warmup_steps={optim['warmup_steps']} must be >= 0 (or null)")
    if not 0.0 <= optim["min_lr_ratio"] <= 1.0:
        # below 0 the cosine ends with a negative learning rate: gradient ascent
        raise ConfigError(f"optim.min_lr_ratio={optim['min_lr_ratio']} must be in [0, 1]")


def _check_ema(decay: Any, trainer: dict[str, Any]) -> None:
    if decay is None:
        return
    if not isinstance(decay, (int, float)) or not 0.0 < decay < 1.0:
        raise ConfigError(
            f"callbacks.ema_decay={decay} must be between 0 and 1 (e.g. 0.995), or null for no "
            "weight averaging"
        )
    if str(trainer.get("strategy")).startswith("fsdp"):
        # Lightning's EMA callback keeps a whole unsharded copy of the model on every rank.
        raise ConfigError(
            f"callbacks.ema_decay={decay} does not work with trainer.strategy="
            f"{trainer['strategy']} (the averaged copy is not sharded); set "
            "callbacks.ema_decay=null or use trainer=ddp"
        )


def _divisors_hint(context: int) -> str:
    candidates = [size for size in (16, 32, 64, 128) if context % size == 0]
    return ", ".join(str(size) for size in candidates) or "a power of two"


def check_against_data(cfg: dict[str, Any], data: Any, tokenizer_dict: dict[str, Any]) -> None:
    """Checks of the config against a tokenized data set (vocabulary, lengths, labels)."""
    try:
        data.check_tokenizer(tokenizer_dict)
    except UserError as error:
        raise ConfigError(
            f"tokenizer.k={tokenizer_dict['k']} tokenizer.stride={tokenizer_dict['stride']} do not "
            f"match data set {data.path}: {error}. Set tokenizer.k/tokenizer.stride to the data "
            "set's, or re-tokenize it"
        ) from error
    context = cfg["model"]["max_tokens"]
    longest = int(max(data.lengths)) if len(data.lengths) else 0
    if longest + 1 > context:
        raise ConfigError(
            f"data set {data.path} has examples of {longest} k-mer tokens, which with [CLS] "
            f"exceed model.max_tokens={context}; raise model.max_tokens or tokenize with "
            f"--max-tokens {context - 1}"
        )
    task = cfg["task"]
    for split in ("train", "val"):
        if len(data.split_indices(split)) == 0:
            raise ConfigError(f"data set {data.path} has no {split!r} examples; data.dataset")
    if task["type"] == "mlm":
        _check_val_interval(
            cfg["trainer"], len(data.split_indices("train")), cfg["data"]["batch_size"]
        )
        return
    if not data.label_names:
        raise ConfigError(
            f"task={task['name']} ({task['type']}) needs labels but data set {data.path} has none"
        )
    if task["type"] in ("binary", "multiclass") and len(data.label_names) != 1:
        raise ConfigError(
            f"task.type={task['type']} expects one label column, data set {data.path} has "
            f"{len(data.label_names)} ({', '.join(data.label_names[:5])}...); use task=chromatin"
        )
    is_class_data = list(data.label_names) == [CLASS_LABEL]
    if task["type"] == "multiclass":
        if not is_class_data:
            raise ConfigError(
                f"task.type=multiclass needs class labels (headers `class=K`, or a sidecar "
                f"`class` column), but data set {data.path} has 0/1 labels "
                f"({', '.join(data.label_names[:5])}); tokenize class-labelled data, or use "
                "task=promoter (binary)"
            )
        largest = int(np.asarray(data.label_array[:, 0]).max())
        if largest >= task["num_classes"]:
            raise ConfigError(
                f"task.num_classes={task['num_classes']} but data set {data.path} has class "
                f"{largest}; set task.num_classes={largest + 1} (classes are 0..N-1)"
            )
    elif is_class_data:
        raise ConfigError(
            f"data set {data.path} has class labels (multi-class); set task.type=multiclass "
            "and task.num_classes"
        )
    if task["type"] == "multilabel" and len(data.label_names) < 2:
        raise ConfigError(
            f"task.type=multilabel needs two or more label columns, data set {data.path} has "
            f"one ({data.label_names[0]}); use task=promoter (binary) for a single label"
        )
    _check_train_classes(cfg, data)
    _check_val_interval(cfg["trainer"], len(data.split_indices("train")), cfg["data"]["batch_size"])
    pos_weight = task.get("pos_weight")
    if isinstance(pos_weight, list) and len(pos_weight) != len(data.label_names):
        raise ConfigError(
            f"task.pos_weight has {len(pos_weight)} values but data set {data.path} has "
            f"{len(data.label_names)} label column(s); give one weight per label, or auto"
        )


def _check_train_classes(cfg: dict[str, Any], data: Any) -> None:
    """A training split of one class "trains" to a constant answer that scores accuracy 1.0."""
    task_type = cfg["task"]["type"]
    indices = data.split_indices("train")
    labels = np.asarray(data.label_array)[np.asarray(indices)]
    where = f"the 'train' split of data set {data.path} ({len(indices)} examples)"
    if task_type == "multiclass":
        classes, counts = np.unique(labels[:, 0], return_counts=True)
        if len(classes) < 2:
            raise ConfigError(
                f"{where} holds one class only (class {int(classes[0])}: {int(counts[0])}); a "
                "model cannot learn to tell classes apart from it. Re-split or add the other "
                "classes (data.dataset)"
            )
        return
    positives = labels.sum(axis=0).astype(int)
    negatives = len(labels) - positives
    one_class = [
        f"{name}: {pos} positive, {neg} negative"
        for name, pos, neg in zip(data.label_names, positives, negatives, strict=True)
        if pos == 0 or neg == 0
    ]
    if one_class:
        shown = "; ".join(one_class[:5]) + (f"; {len(one_class) - 5} more" if len(one_class) > 5
                                             else "")  # fmt: skip
        raise ConfigError(
            f"{where} has label(s) of one class only ({shown}); a model trained on it answers a "
            "constant. Re-split the data, or drop labels without positives (data.dataset)"
        )


def _check_val_interval(trainer: dict[str, Any], train_examples: int, batch_size: int) -> None:
    """A whole-number val_check_interval beyond the epoch's batches fails inside Lightning."""
    interval = trainer.get("val_check_interval")
    if not _is_int(interval):
        return
    from bigbird_genomics.training.datamodule import LengthBucketBatchSampler

    # the training sampler's own count (length pools make a few short batches), one device
    batches = len(LengthBucketBatchSampler(np.zeros(train_examples), batch_size, shuffle=True))
    limit = trainer.get("limit_train_batches", 1.0)
    if _is_int(limit):
        batches = min(batches, limit)
    elif isinstance(limit, float):
        batches = int(batches * limit)
    if interval > batches and trainer.get("check_val_every_n_epoch") is not None:
        raise ConfigError(
            f"trainer.val_check_interval={interval} is more than the {batches} training batches "
            f"of an epoch ({train_examples} examples, data.batch_size={batch_size}); lower it, "
            "or give a fraction of an epoch (e.g. 0.5)"
        )
