"""Benchmarks run and time real training steps (a smoke test; never a timing threshold)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

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


@pytest.mark.slow  # ~20 s: three GEMM measurements and two attention subprocesses
def test_attention_benchmark_times_the_bf16_path_beside_float32(tmp_path: Path) -> None:
    """`block_bf16` runs the block backend on bf16 tensors in the same run as float32 `block`,
    and the JSON keeps the bf16 GEMM rate beside the float32 ones."""
    out = tmp_path / "attention.json"
    command = [sys.executable, "benchmarks/attention.py", "--ns", "256", "--impls", "block",
               "block_bf16", "--reps", "1", "--warmup", "0", "--json", str(out)]
    subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    assert {row["impl"] for row in result["records"]} == {"block", "block_bf16"}
    assert all(row["fb_ms"] > 0 and row["gflop"] > 0 for row in result["records"])
    assert [rate["dtype"] for rate in result["sgemm"]] == ["float32", "float32", "bfloat16"]


@pytest.fixture()
def accuracy(monkeypatch: pytest.MonkeyPatch):
    """benchmarks/accuracy.py as a module (the repository root is not a package path)."""
    import importlib

    monkeypatch.syspath_prepend(str(REPO_ROOT))
    return importlib.import_module("benchmarks.accuracy")


def _seed_run(seed: int, accuracy: float, f1: float, auroc: float) -> dict:
    return {"seed": seed, "accuracy": accuracy, "f1": f1, "auroc": auroc,
            "strands": "forward", "train_minutes": 10.0 + seed}  # fmt: skip


def test_accuracy_table_puts_the_ensemble_beside_the_seed_mean(accuracy) -> None:
    """The ensemble's metrics and members get their own columns next to the seeds' mean ± sd;
    a failed seed counts in neither, and a table without any ensemble keeps its columns."""
    runs = [_seed_run(0, 0.90, 0.80, 0.95), _seed_run(1, 0.92, 0.84, 0.97),
            {"seed": 2, "error": "killed"}]  # fmt: skip
    ensemble = {"seeds": [0, 1], "accuracy": 0.935, "f1": 0.861, "auroc": 0.981}
    entry = {"test_records": 500, "kmer_lr": {}, "composition_lr": None, "bigbird": runs,
             "ensemble": ensemble}  # fmt: skip
    lines = accuracy.render_table({"tata_dinucleotide": entry}, []).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    row = dict(zip(header, (cell.strip() for cell in lines[2].strip("|").split("|")), strict=True))
    assert row["BigBird acc"] == "0.910 ± 0.014"
    assert row["seeds"] == "2"
    assert row["ensemble acc / F1 / AUROC"] == "0.935 / 0.861 / 0.981"
    assert row["ensemble seeds"] == "0,1"
    assert row["train min"] == "10.500 ± 0.707"

    failed = {**entry, "ensemble": {"seeds": [0, 1], "error": "boom"}}
    assert "| failed | 0,1 |" in accuracy.render_table({"t": failed}, [])
    plain = accuracy.render_table({"t": {**entry, "ensemble": None}}, [])
    assert "ensemble" not in plain

    summary = accuracy.seed_summary(runs)
    assert summary["accuracy"]["n"] == 2
    assert summary["accuracy"]["mean"] == pytest.approx(0.91)
    assert summary["f1"]["sd"] == pytest.approx(0.028284, abs=1e-6)
    assert accuracy.seed_summary(runs[:1])["auroc"]["sd"] is None


def test_accuracy_ensemble_scores_the_finished_seeds_together(
    accuracy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One `evaluate` call with a --checkpoint per successful seed, written to
    <out>/<task>/ensemble_test.json; a single finished seed has nothing to average. Seed runs
    are read back from their folders only once their test metrics exist."""
    calls: list[list[str]] = []

    def fake_run_logged(command: list[str], log: Path, threads: int) -> float:
        calls.append(command)
        out = Path(command[command.index("--out") + 1])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"test": {"accuracy": 0.9, "f1": 0.8, "auroc": 0.95}}))
        return 1.0

    monkeypatch.setattr(accuracy, "run_logged", fake_run_logged)
    args = SimpleNamespace(out=tmp_path, threads=1)
    runs = [_seed_run(0, 0.9, 0.8, 0.9), {"seed": 1, "error": "x"}, _seed_run(2, 0.9, 0.8, 0.9)]
    record = accuracy.evaluate_ensemble("task", runs, tmp_path / "tokenized", args)
    assert record["seeds"] == [0, 2] and record["auroc"] == 0.95
    (command,) = calls
    checkpoints = [command[i + 1] for i, arg in enumerate(command) if arg == "--checkpoint"]
    assert checkpoints == [
        str(tmp_path / "runs" / "task" / f"seed{seed}" / "checkpoints" / "best.ckpt")
        for seed in (0, 2)
    ]
    assert command[command.index("--out") + 1] == str(tmp_path / "task" / "ensemble_test.json")
    assert "--strands" not in command  # auto, as for the single runs
    assert accuracy.evaluate_ensemble("task", runs[:2], tmp_path, args) is None

    seed0 = tmp_path / "runs" / "task" / "seed0"
    seed0.mkdir(parents=True)
    assert accuracy.finished_seed_record(tmp_path, "task", 0, {}) is None  # still training
    (seed0 / "evaluate_test.json").write_text(
        json.dumps({"test": {"accuracy": 0.7, "f1": 0.6, "auroc": 0.8, "strands": "forward"}})
    )
    earlier = {0: {"seed": 0, "train_minutes": 12.5}}
    assert accuracy.finished_seed_record(tmp_path, "task", 0, earlier) == {
        "seed": 0, "accuracy": 0.7, "f1": 0.6, "auroc": 0.8, "strands": "forward",
        "train_minutes": 12.5,
    }  # fmt: skip


def test_predict_benchmark_model_copy_keeps_a_valid_integrity_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """benchmarks/predict.py rewrites the checkpoint's attention backend per run: the copy must
    load (its hyper-parameter digest is made anew) and carry the asked backend."""
    from training_support import tiny_trained_run

    from bigbird_genomics.inference.checkpoint import load_checkpoint

    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    import predict as predict_benchmark

    _, run = tiny_trained_run(tmp_path)
    copy = predict_benchmark.with_backend(
        run / "checkpoints" / "best.ckpt", "dense", tmp_path / "dense.ckpt"
    )
    assert load_checkpoint(copy).network.sparsity.backend == "dense"
