"""Every config group composes; bad configs fail before training with the key in the message."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from training_support import compose_config, motif_dataset, training_config

from bigbird_genomics.training.app import CONF_DIR
from bigbird_genomics.training.config_checks import ConfigError, check_static
from bigbird_genomics.training.run import train

GROUPS = [
    "task",
    "model",
    "attention",
    "tokenizer",
    "data",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "experiment",
]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def test_every_config_group_option_composes() -> None:
    # One Hydra context for all options: initialising Hydra costs about a second each time.
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for group in GROUPS:
            options = _options(group)
            assert options, f"conf/{group}/ is empty"
            for option in options:
                config = compose("train", [f"{group}={option}", "paths.output_dir=/tmp/unused"])
                plain = OmegaConf.to_container(config, resolve=True)
                check_static(plain)
                assert group == "experiment" or plain[group] is not None, (group, option)


def _leaves(node: object, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        return {
            key: value
            for name, child in node.items()
            for key, value in _leaves(child, f"{prefix}{name}.").items()
        }
    return {prefix.rstrip("."): node}


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_an_experiments_values_arrive(experiment: str) -> None:
    """Every value an experiment file sets is the one the run gets (train.yaml's own values
    come first in `defaults`, so they never override an experiment)."""
    written = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "experiment" / f"{experiment}.yaml"))
    written.pop("defaults", None)
    written.pop("hydra", None)  # sweeper parameters: read by the sweep, not the run
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        composed = compose("train", [f"experiment={experiment}", "paths.output_dir=/tmp/unused"])
    got = _leaves(OmegaConf.to_container(composed, resolve=True))
    for key, value in _leaves(written).items():
        assert got[key] == value, f"experiment={experiment}: {key} is {got[key]!r}, not {value!r}"


def test_optuna_search_composes() -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="sweep extra not installed")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = compose(
            "train",
            ["hparams_search=optuna", "paths.output_dir=/tmp/unused"],
            return_hydra_config=True,
        )
    assert "OptunaSweeper" in config.hydra.sweeper._target_
    assert "attention.num_random_blocks" in config.hydra.sweeper.params


def test_unknown_key_is_rejected_with_its_name() -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_config(["model.hiden_size=8"])
    assert "hiden_size" in str(info.value.__cause__ or info.value)


@pytest.mark.parametrize(
    "override,key",
    [
        ("attention.num_window_blocks=2", "attention.num_window_blocks"),
        ("attention.block_size=48", "attention.block_size"),
        ("model.num_heads=3", "model.num_heads"),
        ("task.pooling=max", "task.pooling"),
        ("attention.backend=sparse", "attention.backend"),
        ("model.stem_kernel=4", "model.stem_kernel"),
        ("model.stem_pool=2", "model.stem_pool"),
        ("task=mlm model.stem_kernel=5 model.stem_pool=2", "model.stem_pool"),
        ("model.stem_layers=2", "model.stem_layers"),
        ("model.stem_kernel=5 model.stem_layers=0", "model.stem_layers"),
        ("callbacks.ema_decay=1.0", "callbacks.ema_decay"),
        ("optim.lr=-1e-3", "optim.lr"),
        ("data.dataset=/nonexistent/tokenized", "data.dataset"),
        ("optim.min_lr_ratio=-1", "optim.min_lr_ratio"),
        ("optim.warmup_ratio=1.5", "optim.warmup_ratio"),
        ("optim.weight_decay=-0.1", "optim.weight_decay"),
        ("model.num_heads=0", "model.num_heads"),
        ("model.dropout=1.5", "model.dropout"),
        ("task.monitor=val/aucroc", "task.monitor"),
        ("task.monitor_mode=maximum", "task.monitor_mode"),
        ("task=chromatin task.monitor=val/auroc", "task.monitor"),
        ("callbacks.ema_decay=-0.5", "callbacks.ema_decay"),
    ],
)
def test_invalid_values_name_the_key(override: str, key: str, tmp_path: Path) -> None:
    config = training_config(tmp_path / "run", None, override.split())
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    "override,message",
    [
        ("task=chromatin", r"task\.type=multilabel needs two or more label columns"),
        ("task.pos_weight=[1,2]", r"task\.pos_weight has 2 values"),
    ],
)
def test_task_settings_that_do_not_fit_the_labels_name_the_key(
    override: str, message: str, tmp_path: Path
) -> None:
    """Both used to fail inside Lightning's sanity check with a torch/torchmetrics traceback."""
    dataset = motif_dataset(tmp_path)  # one binary label column
    config = training_config(tmp_path / "run", dataset, override.split())
    with pytest.raises(ConfigError, match=message):
        train(config, tmp_path / "run")


def test_warmup_as_long_as_the_run_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dataset = motif_dataset(tmp_path)
    config = training_config(tmp_path / "run", dataset, ["trainer.max_steps=2",
                                                          "optim.warmup_steps=1000"])
    with caplog.at_level("WARNING"):
        train(config, tmp_path / "run")
    assert "warm-up (1000 steps, from optim.warmup_steps) is as long as the whole run (2 " \
        "optimizer steps)" in caplog.text


def test_tokenizer_mismatch_with_data_set_names_the_key(tmp_path: Path) -> None:
    dataset = motif_dataset(tmp_path)  # tokenized with k=3
    config = training_config(tmp_path / "run", dataset, ["tokenizer=kmer6"])
    with pytest.raises(ConfigError, match=r"tokenizer\.k=6"):
        train(config, tmp_path / "run")


def test_examples_longer_than_the_context_name_the_key(tmp_path: Path) -> None:
    dataset = motif_dataset(tmp_path)
    config = training_config(tmp_path / "run", dataset, ["model.max_tokens=32"])
    with pytest.raises(ConfigError, match=r"model\.max_tokens=32"):
        train(config, tmp_path / "run")


@pytest.mark.parametrize("strategy", ["fsdp", "fsdp_cpu_offload"])
def test_fsdp_on_cpu_is_refused_naming_the_key(strategy: str) -> None:
    config = compose_config(
        [
            "trainer=ddp",
            f"trainer.strategy={strategy}",
            "trainer.accelerator=cpu",
            "paths.output_dir=/tmp/unused",
        ]
    )
    with pytest.raises(ConfigError, match=rf"trainer\.strategy={strategy} needs CUDA GPUs"):
        check_static(OmegaConf.to_container(config, resolve=True))


def test_fsdp_with_norm_clipping_is_refused_naming_the_key() -> None:
    config = compose_config(
        ["trainer=gpu", "trainer.strategy=fsdp", "paths.output_dir=/tmp/unused"]
    )
    with pytest.raises(ConfigError, match=r"trainer\.gradient_clip_val=null"):
        check_static(OmegaConf.to_container(config, resolve=True))
    config.trainer.gradient_clip_val = None
    check_static(OmegaConf.to_container(config, resolve=True))
    config.callbacks.ema_decay = 0.99  # the averaged copy would not be sharded
    with pytest.raises(ConfigError, match=r"callbacks\.ema_decay=0\.99 does not work"):
        check_static(OmegaConf.to_container(config, resolve=True))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["attention.backend=triton", "trainer.accelerator=cpu"],
         r"attention\.backend=triton trains only on CUDA GPUs"),
        (["attention.backend=flex", "trainer.accelerator=cpu"],
         r"attention\.backend=flex trains only on CUDA GPUs"),
        (["trainer=gpu", "attention.backend=triton", "attention.block_size=32",
          "model.hidden_size=96", "model.num_heads=4"],
         r"model\.hidden_size / model\.num_heads to be a power of two >= 16, got 24"),
    ],
)  # fmt: skip
def test_cuda_only_attention_backends_are_checked_before_training(
    overrides: list[str], message: str
) -> None:
    config = compose_config([*overrides, "paths.output_dir=/tmp/unused"])
    with pytest.raises(ConfigError, match=message):
        check_static(OmegaConf.to_container(config, resolve=True))


def test_small_tower_recipe_trains_through_the_one_hot_stem() -> None:
    """model=small_tower with tokenizer=kmer1 (the DeePromoter recipe): 64 bases per position,
    and no dropout, so training steps take the cheaper `ConvStem.forward_ids` path."""
    from bigbird_genomics.model.network import GenomicsModel
    from bigbird_genomics.tokens.kmers import KmerTokenizer

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = compose("train", ["model=small_tower", "tokenizer=kmer1",
                                   "paths.output_dir=/tmp/unused"])  # fmt: skip
    plain = OmegaConf.to_container(config, resolve=True)
    check_static(plain)
    vocab = KmerTokenizer(k=plain["tokenizer"]["k"]).vocab_size
    encoder = {k: v for k, v in plain["model"].items() if k not in ("name", "init_from")}
    model = GenomicsModel({**encoder, "vocab_size": vocab}, plain["attention"], "binary")
    assert model.encoder.config.downsample == 64
    assert model.train().encoder._stem_reads_ids()


def test_accuracy_benchmark_recipes_compose_and_pass_the_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every task recipe of benchmarks/accuracy.py (model, tokenizer, overrides) is a valid
    training config, so a typo in a recipe fails here, not 30 minutes into a benchmark run."""
    import importlib

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    accuracy = importlib.import_module("benchmarks.accuracy")
    for task in accuracy.TASKS.values():
        overrides = ["task=promoter", f"model={task.model}", f"tokenizer={task.tokenizer}",
                     *task.train_overrides, "paths.output_dir=/tmp/unused"]  # fmt: skip
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            config = compose("train", overrides)
        check_static(OmegaConf.to_container(config, resolve=True))
        if "callbacks.early_stopping=null" in task.train_overrides:
            assert config.callbacks.early_stopping is None
