"""A non-editable install trains: the wheel carries the Hydra configs as package data.

The wheel is built from this checkout and unpacked into a folder of its own that comes first
on sys.path, and the commands run from an unrelated working directory, so nothing can be
found beside the source tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = tmp_path_factory.mktemp("wheels")
    target = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # --no-build-isolation: build with this environment's setuptools, no download
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("bigbird_genomics-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return target


def run_train(site: Path, cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site), WANDB_MODE="disabled")
    env.pop("BIGBIRD_GENOMICS_CONF", None)
    code = (
        "import sys, bigbird_genomics; "
        f"assert bigbird_genomics.__file__.startswith({str(site)!r}), bigbird_genomics.__file__; "
        "from bigbird_genomics.training.app import main; sys.argv[1:] = "
        f"{list(overrides)!r}; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def test_wheel_holds_the_configs(installed: Path) -> None:
    conf = installed / "bigbird_genomics" / "conf"
    assert (conf / "train.yaml").is_file()
    for group in ("model", "attention", "task", "experiment", "trainer", "tokenizer"):
        assert list((conf / group).glob("*.yaml")), f"conf/{group}/ missing from the wheel"


def test_wheel_composes_and_trains(installed: Path, tmp_path: Path) -> None:
    shown = run_train(installed, tmp_path, "experiment=promoter_demo", "--cfg", "job")
    assert shown.returncode == 0, shown.stderr
    assert "lr: 0.003" in shown.stdout  # the experiment's value, not train.yaml's
    trained = run_train(
        installed, tmp_path, "trainer.fast_dev_run=true", "logger=none",
        f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
