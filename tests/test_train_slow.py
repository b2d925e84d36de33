"""Slow end-to-end training checks: learning the demo task, resume after SIGKILL, DDP, sweeps."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from training_support import FAST, compose_config, motif_dataset, training_config

from bigbird_genomics.training.run import train

pytestmark = pytest.mark.slow

TRAIN = [sys.executable, "-m", "bigbird_genomics.training.app"]
ENV = {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1"}
MAX_STEPS = 150  # of 16-example batches: 1.5 epochs of the demo (measured 0.97 test accuracy)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return motif_dataset(tmp_path_factory.mktemp("data"))


def test_tiny_model_learns_the_demo_promoter_task(tmp_path: Path) -> None:
    """A correctness check of the whole path on the demo data, not a timing."""
    run = tmp_path / "run"
    config = OmegaConf.to_container(
        compose_config(
            [
                "experiment=promoter_demo",
                "logger=csv",
                "callbacks.progress_bar=null",
                f"paths.output_dir={run}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                f"trainer.max_steps={MAX_STEPS}",
            ]
        ),
        resolve=True,
    )
    metrics = train(config, run)
    assert metrics["global_step"] <= MAX_STEPS
    assert metrics["test"]["accuracy"] > 0.9, metrics["test"]


KILLED_RUN = textwrap.dedent("""
    import json, os, signal, sys
    import pytorch_lightning as pl
    from bigbird_genomics.training.run import train

    class KillAt(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == int(sys.argv[3]):
                os.kill(os.getpid(), signal.SIGKILL)

    config = json.loads(open(sys.argv[1]).read())
    train(config, __import__("pathlib").Path(sys.argv[2]), extra_callbacks=[KillAt()])
""")


def test_run_killed_mid_epoch_resumes_to_the_same_metrics(dataset: Path, tmp_path: Path) -> None:
    extra = ["trainer.max_epochs=2", "callbacks.early_stopping=null"]
    reference_dir, resumed_dir = tmp_path / "reference", tmp_path / "resumed"
    reference = train(training_config(reference_dir, dataset, extra), reference_dir)
    steps_per_epoch = reference["global_step"] // 2
    # Kill in the middle of the second epoch, after the first epoch's last.ckpt was written.
    kill_step = steps_per_epoch + steps_per_epoch // 2
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(training_config(resumed_dir, dataset, extra)))
    script = tmp_path / "killed.py"
    script.write_text(KILLED_RUN)
    killed = subprocess.run(
        [sys.executable, str(script), str(config_file), str(resumed_dir), str(kill_step)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (resumed_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (resumed_dir / "metrics.json").exists()
    resumed = train(training_config(resumed_dir, dataset, [*extra, "ckpt_path=last"]), resumed_dir)
    assert resumed["global_step"] == reference["global_step"]
    assert resumed["val"] == reference["val"]
    assert resumed["test"] == reference["test"]
    assert (resumed_dir / "csv" / "metrics.part0.csv").is_file()  # history before the kill


def run_train_cli(
    dataset: Path, tmp_path: Path, *overrides: str, multirun: bool = False
) -> subprocess.CompletedProcess:
    """`bigbird-genomics-train` for one epoch of the motif data set with the FAST settings
    (`-m` goes before every override: Hydra's parser takes no flag after them)."""
    common = [
        *(["-m"] if multirun else []),
        *FAST,
        "trainer.max_epochs=1",
        f"data.dataset={dataset}",
    ]
    return subprocess.run(
        [*TRAIN, *common, *overrides, f"paths.cache_dir={tmp_path / 'cache'}"],
        env=ENV, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip


def test_ddp_with_two_cpu_processes(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    result = run_train_cli(
        dataset, tmp_path, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
        f"hydra.run.dir={run}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["num_examples"] > 0
    assert "distributed_backend=gloo" in result.stdout + result.stderr


def test_multirun_sweep_writes_a_summary(dataset: Path, tmp_path: Path) -> None:
    """A grid point whose config fails (a 48-token block does not divide the 64-token context)
    is recorded in its own directory and does not stop the other jobs."""
    sweep = tmp_path / "sweep"
    result = run_train_cli(
        dataset, tmp_path, "attention.block_size=48,16", "attention.num_random_blocks=0,1",
        f"hydra.sweep.dir={sweep}", multirun=True,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]  # after every job ran
    failed = sorted(sweep.glob("*/failed.txt"))
    assert len(failed) == 2
    assert all("attention.block_size=48" in path.read_text() for path in failed)
    assert "2 sweep job(s) did not train" in result.stderr + result.stdout
    rows = (sweep / "summary.tsv").read_text().splitlines()
    assert len(rows) == 3
    header = rows[0].split("\t")
    random_blocks = [r.split("\t")[header.index("attention.num_random_blocks")] for r in rows[1:]]
    assert sorted(random_blocks) == ["0", "1"]
    assert (sweep / "summary.png").is_file()


def run_optuna_sweep(
    dataset: Path, tmp_path: Path, sweep: Path, *extra: str, batches: int
) -> subprocess.CompletedProcess:
    """Two Optuna trials on the motif data set (skips without the `sweep` extra)."""
    pytest.importorskip(
        "hydra_plugins.hydra_optuna_sweeper",
        reason="hydra-optuna-sweeper (the `sweep` extra) is not installed",
    )
    return run_train_cli(
        dataset, tmp_path, "hparams_search=optuna", "hydra.sweeper.n_trials=2", *extra,
        f"trainer.limit_train_batches={batches}", f"trainer.limit_val_batches={batches}",
        f"hydra.sweep.dir={sweep}", multirun=True,
    )  # fmt: skip


def test_optuna_sweep_runs_trials_and_records_the_best(dataset: Path, tmp_path: Path) -> None:
    """Two real trials (two training steps and one validation each) through Hydra's Optuna."""
    sweep = tmp_path / "optuna"
    result = run_optuna_sweep(dataset, tmp_path, sweep, batches=2)
    assert result.returncode == 0, result.stderr[-3000:]
    losses = []
    for trial in ("0", "1"):
        metrics = json.loads((sweep / trial / "metrics.json").read_text())
        assert metrics["global_step"] == 2
        losses.append(metrics["val"]["loss"])
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert math.isfinite(best["best_value"])
    assert best["best_value"] == pytest.approx(min(losses))
    assert set(best["best_params"]) >= {"optim.lr", "model.dropout"}
    rows = (sweep / "summary.tsv").read_text().splitlines()
    assert len(rows) == 3 and "val_loss" in rows[0].split("\t")


def test_optuna_sweep_refuses_to_minimise_a_score(dataset: Path, tmp_path: Path) -> None:
    """The search space's default direction is minimize (for val/loss): AUROC needs maximize."""
    result = run_optuna_sweep(
        dataset, tmp_path, tmp_path / "optuna", "optimized_metric=val/auroc", batches=1
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "optimized_metric=val/auroc is better when higher, but hydra.sweeper.direction=" \
        "minimize; set hydra.sweeper.direction=maximize" in result.stderr
    assert not list((tmp_path / "optuna").glob("*/metrics.json"))  # before any training


def test_optuna_sweep_stops_with_a_clear_error_on_a_missing_metric(
    dataset: Path, tmp_path: Path
) -> None:
    result = run_optuna_sweep(
        dataset, tmp_path, tmp_path / "optuna", "optimized_metric=val/nonexistent", batches=1
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "error: optimized_metric=val/nonexistent is not in this run's metrics.json" in (
        result.stderr
    )
