"""Shared test settings: no network, no W&B servers, and the real data beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tests never talk to W&B servers: set before anything imports wandb.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HYDRA_FULL_ERROR", "1")
# Without a GPU the Triton kernels run in Triton's interpreter, which must be chosen before
# anything imports triton (its own library functions are decorated at import).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The read-only real data sets beside the repo; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The embedded demo data (seed 0), written once per test session."""
    from bigbird_genomics.builders.demo import write_demo_data

    return write_demo_data(tmp_path_factory.mktemp("demo"), seed=0)


@pytest.fixture(scope="session")
def demo_tiny_checkpoint(
    tmp_path_factory: pytest.TempPathFactory, demo_files: dict[str, Path]
) -> Path:
    """A real demo promoter checkpoint after 2 training batches: cheap, barely trained."""
    from downstream_support import train_demo_promoter

    return train_demo_promoter(
        tmp_path_factory.mktemp("tiny"), demo_files, ["trainer.limit_train_batches=2"]
    )


@pytest.fixture(scope="session")
def demo_trained_checkpoint(
    tmp_path_factory: pytest.TempPathFactory, demo_files: dict[str, Path]
) -> Path:
    """A demo promoter checkpoint after one full epoch (100 steps, ~2 min on 2 CPU cores):
    enough for the planted motifs to stand out in mutagenesis."""
    from downstream_support import train_demo_promoter

    return train_demo_promoter(tmp_path_factory.mktemp("trained"), demo_files, [])
