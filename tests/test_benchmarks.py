"""Benchmarks run and time real training steps (a smoke test; never a timing threshold)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # ~40 s: a real training-step benchmark run
def test_train_throughput_measures_the_stem_model(tmp_path: Path) -> None:
    """`ours_conv` is `ours` plus conf/model/small_conv.yaml's stem: more parameters, and a
    measured step with a finite token rate for each model, `ours_all_rows` (the same model
    with every last-layer row computed) included."""
    out = tmp_path / "throughput.json"
    command = [sys.executable, "benchmarks/train_throughput.py", "--size", "tiny", "--ns", "256",
               "--models", "ours", "ours_all_rows", "ours_conv", "--steps", "1", "--json", str(out)]
    subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    results = {row["model"]: row for row in json.loads(out.read_text())}
    assert set(results) == {"ours", "ours_all_rows", "ours_conv"}
    for row in results.values():
        assert "error" not in row, row
        assert row["tokens_per_s"] > 0 and row["step_s"] > 0
    assert results["ours_conv"]["parameters"] > results["ours"]["parameters"]
    assert results["ours_all_rows"]["parameters"] == results["ours"]["parameters"]
