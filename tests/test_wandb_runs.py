"""W&B: every training run is its own W&B run (finished on success and on failure), the jobs of
a Hydra multirun are grouped by their sweep directory, and a run prints none of the
third-party noise the project causes or can filter. W&B runs offline here: nothing leaves the
machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from training_support import FAST, motif_dataset, training_config

from bigbird_genomics.training import run as training_run
from bigbird_genomics.training.run import train
from bigbird_genomics.training.wandb_setup import sweep_job_settings

wandb = pytest.importorskip("wandb")

TRAIN = [sys.executable, "-m", "bigbird_genomics.training.app"]
TINY = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0"]  # fmt: skip
# What a run printed before the project silenced or fixed it (see training/noise.py).
NOISE = (
    "anonymous setting has no effect",
    "Images sizes do not match",
    "litlogger",
    "isinstance(treespec, LeafSpec)",
    "wandb run already in progress",
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return motif_dataset(tmp_path_factory.mktemp("data"))


def wandb_run_files(run_dir: Path) -> list[Path]:
    """The offline W&B runs (their .wandb transaction logs) under one training run directory."""
    return sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))


def test_sweep_job_settings_group_by_the_sweep_directory(tmp_path: Path) -> None:
    sweep = tmp_path / "multirun" / "promoter" / "2026-01-01_10-00-00"
    settings = {"project": "p", "group": None, "name": None, "tags": []}
    job = sweep_job_settings(settings, sweep, sweep / "3")
    assert job["group"] == "2026-01-01_10-00-00" and job["name"] == "2026-01-01_10-00-00/3"
    assert job["project"] == "p" and settings["group"] is None  # the input is left as it was
    named = sweep_job_settings({**settings, "group": "mine", "name": "x"}, sweep, sweep / "3")
    assert named["group"] == "mine" and named["name"] == "x"  # the user's choice wins
    outside = sweep_job_settings(settings, sweep, tmp_path / "elsewhere" / "job7")
    assert outside["name"] == "2026-01-01_10-00-00/job7"


@pytest.mark.slow
def test_failed_training_finishes_its_wandb_run(dataset: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that fails after W&B started must not stay `wandb.run` for the next job."""
    monkeypatch.setenv("WANDB_MODE", "offline")

    def fail(*args, **kwargs):
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(training_run, "finish_run", fail)
    run_dir = tmp_path / "run"
    config = training_config(run_dir, dataset, ["logger=wandb", *TINY])
    with pytest.raises(RuntimeError, match="evaluation broke"):
        train(config, run_dir)
    assert wandb.run is None
    assert len(wandb_run_files(run_dir)) == 1


@pytest.mark.slow
def test_multirun_jobs_get_their_own_wandb_runs(dataset: Path, tmp_path: Path) -> None:
    """`-m seed=0,1` in one process: two run folders, each with its own W&B run holding its own
    config (seed, output directory), both in the sweep's group; no noise on the console."""
    sweep = tmp_path / "sweep"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "false", "HYDRA_FULL_ERROR": "1"}
    result = subprocess.run(
        [*TRAIN, "-m", *FAST, *TINY, "logger=wandb", f"data.dataset={dataset}",
         f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}", "seed=0,1"],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    run_ids = set()
    for seed in (0, 1):
        job = sweep / str(seed)
        files = wandb_run_files(job)
        assert len(files) == 1, f"{job}: {files}"
        run_ids.add(files[0].stem)
        # The transaction log holds the run record (display name) and its config as compact JSON.
        record = files[0].read_bytes()
        assert f"sweep/{seed}".encode() in record and f"sweep/{1 - seed}".encode() not in record
        assert f'"seed":{seed},'.encode() in record
        assert f'"output_dir":"{job}"'.encode() in record
    assert len(run_ids) == 2
    assert "test (" in output and "val (" in output  # the final scores are printed
    for message in NOISE:
        assert message not in output, message
