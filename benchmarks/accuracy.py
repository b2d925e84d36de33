"""Honest accuracy on real data: the project's own CLI against k-mer logistic regressions.

Builds the data sets with `bigbird-genomics build-promoters` / `build-chromatin`, tokenizes
them, trains with `bigbird-genomics-train` (each task's model, tokenizer, epochs and overrides
by default: `Task.model`, `Task.tokenizer`, `Task.epochs`, `Task.train_overrides`), scores with
`bigbird-genomics evaluate`, and fits two baselines on the same train/test split:
k-mer (default 4- and 6-mer) frequency logistic regressions, and one on mono+dinucleotide
frequencies only, which measures how much a negative recipe leaks through composition.

    python -m benchmarks.accuracy --out results/bench/accuracy --seeds 0 1 2 --max-minutes 30
    python -m benchmarks.accuracy --out /tmp/acc --baseline-only      # ~2 min, no training
    python -m benchmarks.accuracy --out acc --jobs 9 --override trainer=gpu   # one GPU, 9 runs
    python -m benchmarks.accuracy --out acc --ensemble-only   # ensemble of the finished seeds

With two or more seeds, the seeds' best checkpoints of each task are also scored together as one
ensemble (`evaluate --checkpoint` repeated: probabilities averaged), beside the single seeds'
mean ± sd. Prints a table and writes accuracy.json (every number) and accuracy.md (the table).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_TOKENIZER = "kmer6"
DEFAULT_MODEL = "small_conv"
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIGBIRD_GENOMICS_SHARED_DATA", REPO.parent / "shared" / "data"))


@dataclass(frozen=True)
class Task:
    name: str
    build: list[str]  # bigbird-genomics arguments after the command name, {out} = data folder
    fasta: str  # the labelled FASTA the build writes, relative to the data folder
    record_bp: int  # every record's length: one example per record, whatever the tokenizer
    # The training recipe: epochs that fit the 30-minute CPU budget, so the LR schedule decays
    # inside it (benchmarks/results/accuracy_small_conv_cpu_2026-11-28/), and extra overrides
    # (both strands for TF peaks, which have no strand; promoters do). A model trained on both
    # strands is also scored on both by `evaluate` (probabilities averaged;
    # benchmarks/results/accuracy_both_strands_cpu_2026-11-28/).
    epochs: int = 2
    train_overrides: tuple[str, ...] = ()
    tokenizer: str = DEFAULT_TOKENIZER  # conf/tokenizer/<name>.yaml (--tokenizer overrides)
    model: str = DEFAULT_MODEL  # conf/model/<name>.yaml (--model overrides)


TASKS = {
    "tata_deepromoter": Task(
        "tata_deepromoter",
        [
            "build-promoters",
            "--positives",
            str(SHARED / "promoters/human_tata_epdnew.fa"),
            "--negatives",
            "deepromoter",
            "--out",
            "{out}/data.fa",
        ],
        "data.fa",
        300,
        # Single bases through a three-stage conv tower (conf/model/small_tower.yaml), 16 epochs,
        # cosine down to 0 (benchmarks/results/accuracy_tower_cpu_2026-11-28/); 6-mers with
        # small_conv reach F1 0.914 +- 0.006. The best checkpoint by val/auroc, all 16 epochs:
        # without dropout the model grows overconfident, so val/loss rises after a few epochs
        # while val F1 and AUROC still improve, and picking by val/loss keeps the 4th-epoch
        # model (seed 0: test F1 0.933, 0.962 by val/auroc;
        # benchmarks/results/accuracy_best_by_val_auroc_cpu_2026-11-28/). An exponential moving
        # average of the weights (decay 0.995, ~1.4 epochs) for validation and the checkpoints:
        # F1 0.961 / 0.963 / 0.961 over seeds 0-2 against 0.962 / 0.957 / 0.958 without
        # (benchmarks/results/accuracy_ema_and_tower_cpu_2026-11-28/).
        epochs=16,
        train_overrides=(
            "optim.min_lr_ratio=0.0",
            "callbacks.early_stopping=null",
            "task.monitor=val/auroc",
            "task.monitor_mode=max",
            "callbacks.ema_decay=0.995",
        ),
        tokenizer="kmer1",
        model="small_tower",
    ),
    "tata_dinucleotide": Task(
        "tata_dinucleotide",
        [
            "build-promoters",
            "--positives",
            str(SHARED / "promoters/human_tata_epdnew.fa"),
            "--negatives",
            "dinucleotide",
            "--out",
            "{out}/data.fa",
        ],
        "data.fa",
        300,
    ),
    "oct4_vs_mafk": Task(
        "oct4_vs_mafk",
        [
            "build-chromatin",
            "--positive-fasta",
            str(SHARED / "tf_chipseq/oct4_peaks_mm10.fa"),
            "--negative-fasta",
            str(SHARED / "tf_chipseq/mafk_peaks_mm10.fa"),
            "--out",
            "{out}",
        ],
        "chromatin.fa",
        200,
        # Single bases through the conv tower, as for DeePromoter negatives, 10 epochs, cosine
        # down to 0: accuracy 0.982 / 0.987 / 0.981 over seeds 0-2 (0.983 +- 0.003), 11-12
        # minutes per run under load (benchmarks/results/accuracy_ema_and_tower_cpu_2026-11-28/);
        # small_conv on 3-mers, 3 epochs: 0.980 +- 0.008 in ~20 minutes per run.
        epochs=10,
        train_overrides=("data.reverse_complement=true", "optim.min_lr_ratio=0.0"),
        tokenizer="kmer1",
        model="small_tower",
    ),
}


# --------------------------------------------------------------------------- CLI calls
def cli_command() -> list[str]:
    return [sys.executable, "-m", "bigbird_genomics.cli"]


def train_command() -> list[str]:
    """The installed console script, else the same Hydra app as a module (a source checkout
    on PYTHONPATH, as on a GPU node where the package is not pip-installed)."""
    script = Path(sys.executable).parent / "bigbird-genomics-train"
    if script.exists():
        return [str(script)]
    found = shutil.which("bigbird-genomics-train")
    return [found] if found else [sys.executable, "-m", "bigbird_genomics.training.app"]


def run_logged(command: list[str], log: Path, threads: int) -> float:
    """Run a command, its output into `log`; returns seconds; raises with the log's tail."""
    env = dict(
        os.environ,
        WANDB_MODE="disabled",
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "w") as stream:
        stream.write(" ".join(command) + "\n")
        stream.flush()
        done = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    if done.returncode != 0:
        tail = log.read_text()[-2000:]
        raise RuntimeError(f"command failed ({done.returncode}): {' '.join(command)}\n{tail}")
    return time.perf_counter() - start


def tokenizer_settings(name: str) -> tuple[int, int]:
    """(k, stride) of conf/tokenizer/<name>.yaml, the config the training run will compose."""
    import yaml

    settings = yaml.safe_load((REPO / "conf" / "tokenizer" / f"{name}.yaml").read_text())
    return int(settings["k"]), int(settings["stride"])


def tokens_per_record(record_bp: int, tokenizer: str) -> int:
    """k-mer tokens of a record of `record_bp` bases: its --max-tokens, so it stays whole."""
    k, stride = tokenizer_settings(tokenizer)
    return (record_bp - k) // stride + 1


def tokenizer_of(task: Task, args: argparse.Namespace) -> str:
    return args.tokenizer or task.tokenizer


def tokenized_dir(out: Path, task_name: str, tokenizer: str) -> Path:
    """The default 6-mer data set keeps its old folder name, so built data stay reusable."""
    suffix = "" if tokenizer == DEFAULT_TOKENIZER else f"_{tokenizer}"
    return out / "data" / task_name / f"tokenized{suffix}"


def tokenized_is_current(tokenized: Path, k: int, stride: int) -> bool:
    """Whether a tokenized folder was made with this version's vocabulary for (k, stride)."""
    from bigbird_genomics.tokens.kmers import KmerTokenizer

    meta = json.loads((tokenized / "meta.json").read_text())
    return meta.get("vocab_hash") == KmerTokenizer(k=k, stride=stride).vocab_hash and (
        meta.get("stride", stride) == stride
    )


def ensure_tokenized(
    fasta: Path, tokenized: Path, record_bp: int, threads: int, tokenizer: str
) -> None:
    """`bigbird-genomics tokenize` into `tokenized` unless a current data set is already there."""
    k, stride = tokenizer_settings(tokenizer)
    max_tokens = tokens_per_record(record_bp, tokenizer)
    if tokenized.exists() and not tokenized_is_current(tokenized, k, stride):
        shutil.rmtree(tokenized)  # made by an older tokenizer version: ids would differ
    if not tokenized.exists():
        command = ["tokenize", "--fasta", str(fasta), "--max-tokens", str(max_tokens)]
        command += ["--k", str(k), "--stride", str(stride)]
        run_logged(
            cli_command() + command + ["--out", str(tokenized)],
            tokenized.parent / "tokenize.log",
            threads,
        )


def prepare(task: Task, out: Path, threads: int, tokenizer: str) -> tuple[Path, Path]:
    """Build and tokenize once; later calls reuse the folders."""
    data = out / "data" / task.name
    fasta, tokenized = data / task.fasta, tokenized_dir(out, task.name, tokenizer)
    if not fasta.exists():
        run_logged(
            cli_command() + [a.replace("{out}", str(data)) for a in task.build],
            data / "build.log",
            threads,
        )
    ensure_tokenized(fasta, tokenized, task.record_bp, threads, tokenizer)
    return fasta, tokenized


def train_then_evaluate(
    overrides: list[str], tokenized: Path, run_dir: Path, log_prefix: Path,
    args: argparse.Namespace, epochs: int | None = None,
) -> tuple[dict[str, float], float]:
    """`bigbird-genomics-train` with `overrides` into `run_dir`, then `evaluate` on the test split.

    `epochs` defaults to `args.max_epochs`. Returns the test metrics and the training wall time
    in seconds.
    """
    epochs = args.max_epochs if epochs is None else epochs
    minutes = max(1, int(args.max_minutes))  # Lightning's max_time is DD:HH:MM:SS
    overrides = [
        *overrides,
        f"data.dataset={tokenized}",
        "logger=csv",
        f"trainer.max_epochs={epochs}",
        f"+trainer.max_time='00:{minutes // 60:02d}:{minutes % 60:02d}:00'",
        f"hydra.run.dir={run_dir}",
        *args.override,
    ]
    seconds = run_logged(train_command() + overrides, Path(f"{log_prefix}.train.log"), args.threads)
    metrics_path = run_dir / "evaluate_test.json"
    checkpoint = run_dir / "checkpoints" / "best.ckpt"
    run_logged(
        cli_command()
        + ["evaluate", "--checkpoint", str(checkpoint), "--data", str(tokenized)]
        + ["--split", "test", "--out", str(metrics_path)],
        Path(f"{log_prefix}.evaluate.log"),
        args.threads,
    )
    metrics = json.loads(metrics_path.read_text())
    return metrics.get("test", metrics), seconds


def train_and_evaluate(
    task: Task, tokenized: Path, run_dir: Path, seed: int, args: argparse.Namespace
) -> dict[str, float]:
    """One training run with the project's CLI, scored on the test split by `evaluate`."""
    model = args.model or task.model
    overrides = ["task=promoter", f"task.name={task.name}", f"model={model}", f"seed={seed}"]
    overrides += [f"tokenizer={tokenizer_of(task, args)}", *task.train_overrides]
    flat, seconds = train_then_evaluate(
        overrides, tokenized, run_dir, run_dir.parent / run_dir.name, args,
        epochs=args.max_epochs or task.epochs,
    )
    return {
        "accuracy": flat["accuracy"],
        "f1": flat["f1"],
        "auroc": flat["auroc"],
        "strands": flat.get("strands", "forward"),  # "both": scored on both strands, averaged
        "train_minutes": seconds / 60,
    }


def seed_run_dir(out: Path, task_name: str, seed: int) -> Path:
    return out / "runs" / task_name / f"seed{seed}"


def finished_seed_record(out: Path, task_name: str, seed: int, earlier: dict) -> dict | None:
    """A seed's record from its run folder, or None while it has no test metrics.

    `evaluate_test.json` is written only after training ends, whereas `best.ckpt` appears
    during training, so the metrics file marks a finished run. The training time is known only
    from an earlier accuracy.json (`earlier`: seed -> record).
    """
    metrics_path = seed_run_dir(out, task_name, seed) / "evaluate_test.json"
    if not metrics_path.exists():
        return None
    metrics = json.loads(metrics_path.read_text())
    flat = metrics.get("test", metrics)
    record = {
        "seed": seed,
        "accuracy": flat["accuracy"],
        "f1": flat["f1"],
        "auroc": flat["auroc"],
        "strands": flat.get("strands", "forward"),
    }
    previous = earlier.get(seed, {})
    if "train_minutes" in previous and "error" not in previous:
        record["train_minutes"] = previous["train_minutes"]
    return record


def evaluate_ensemble(
    task_name: str, runs: list[dict], tokenized: Path, args: argparse.Namespace
) -> dict | None:
    """Score the best checkpoints of the task's finished seeds together on the test split.

    `bigbird-genomics evaluate` with `--checkpoint` once per seed averages the members'
    probabilities; the strands follow `--strands auto`, as for the single runs. None with fewer
    than two finished seeds (nothing to average); a failed evaluation is recorded, not raised,
    so the single-seed results are still written.
    """
    seeds = [run["seed"] for run in runs if "error" not in run]
    if len(seeds) < 2:
        return None
    checkpoints = [
        seed_run_dir(args.out, task_name, seed) / "checkpoints" / "best.ckpt" for seed in seeds
    ]
    metrics_path = args.out / task_name / "ensemble_test.json"
    command = cli_command() + ["evaluate"]
    for checkpoint in checkpoints:
        command += ["--checkpoint", str(checkpoint)]
    command += ["--data", str(tokenized), "--split", "test", "--out", str(metrics_path)]
    try:
        run_logged(command, args.out / task_name / "ensemble.evaluate.log", args.threads)
    except RuntimeError as error:
        print(f"{task_name} ensemble: FAILED\n{error}", file=sys.stderr, flush=True)
        return {"seeds": seeds, "error": str(error)[-2000:]}
    flat = json.loads(metrics_path.read_text())["test"]
    record = {
        "seeds": seeds,
        "accuracy": flat["accuracy"],
        "f1": flat["f1"],
        "auroc": flat["auroc"],
        "strands": flat.get("strands", "forward"),
        "metrics": str(metrics_path),
    }
    print(f"{task_name} ensemble of seeds {seeds}: {record}", file=sys.stderr, flush=True)
    return record


def seed_summary(runs: list[dict]) -> dict[str, dict[str, float | int | None]]:
    """Mean and sample sd (None below two runs) of the successful runs' test metrics."""
    summary: dict[str, dict[str, float | int | None]] = {}
    for key in ("accuracy", "f1", "auroc"):
        values = [run[key] for run in runs if "error" not in run]
        summary[key] = {
            "mean": statistics.mean(values) if values else None,
            "sd": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values),
        }
    return summary


# --------------------------------------------------------------------------- baselines
def read_labelled(fasta: Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Sequences, labels and split names of a labelled FASTA (`label=`, `split=` headers)."""
    from bigbird_genomics.io.fasta import read_fasta
    from bigbird_genomics.io.labels import header_fields

    sequences, labels, splits = [], [], []
    for record in read_fasta(fasta):
        fields = header_fields(record.description)
        sequences.append(record.sequence)
        labels.append(int(fields["label"]))
        splits.append(fields["split"])
    return sequences, np.array(labels), np.array(splits)


def kmer_frequencies(sequences: list[np.ndarray], k: int) -> np.ndarray:
    """`[n, 4**k]` frequencies of the k-mers (ACGT only) of each sequence."""
    from bigbird_genomics.builders.motifs import BASE_INDEX

    features = np.zeros((len(sequences), 4**k))
    weights = 4 ** np.arange(k - 1, -1, -1)
    for row, sequence in enumerate(sequences):
        codes = BASE_INDEX[sequence]
        windows = np.lib.stride_tricks.sliding_window_view(codes, k)
        windows = windows[(windows < 4).all(axis=1)]
        counts = np.bincount(windows @ weights, minlength=4**k)
        features[row] = counts / max(counts.sum(), 1)
    return features


def composition_features(sequences: list[np.ndarray]) -> np.ndarray:
    return np.hstack([kmer_frequencies(sequences, 1), kmer_frequencies(sequences, 2)])


def logistic_regression(
    train_x: np.ndarray, train_y: np.ndarray, l2: float = 1.0
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """L2-regularised logistic regression on standardised features (scipy L-BFGS).

    Written with scipy because scikit-learn is not a project dependency; the objective is
    sklearn's LogisticRegression(C=1/l2) on the same standardisation.
    """
    from scipy.optimize import minimize
    from scipy.special import expit

    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-9
    x = (train_x - mean) / std
    signs = 2.0 * train_y - 1.0

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:-1], params[-1]
        margin = signs * (x @ w + b)
        loss = np.sum(np.logaddexp(0.0, -margin)) + 0.5 * l2 * w @ w
        grad_margin = -signs * expit(-margin)
        return float(loss), np.append(x.T @ grad_margin + l2 * w, grad_margin.sum())

    result = minimize(objective, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B")
    return result.x[:-1], float(result.x[-1]), mean, std


def baseline_metrics(
    features: np.ndarray, labels: np.ndarray, splits: np.ndarray
) -> dict[str, float]:
    """Fit on train, score on test with the project's own metric functions."""
    import torch

    from bigbird_genomics.inference.metrics import binary_metrics

    train, test = splits == "train", splits == "test"
    w, b, mean, std = logistic_regression(features[train], labels[train])
    logits = ((features[test] - mean) / std) @ w + b
    probs = torch.sigmoid(torch.as_tensor(logits))
    metrics = binary_metrics(probs, torch.as_tensor(labels[test]))
    return {key: metrics[key] for key in ("accuracy", "f1", "auroc")}


# --------------------------------------------------------------------------- report
def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _ensemble_cell(ensemble: dict | None) -> str:
    if not ensemble:
        return "-"
    if "error" in ensemble:
        return "failed"
    return f"{ensemble['accuracy']:.3f} / {ensemble['f1']:.3f} / {ensemble['auroc']:.3f}"


def render_table(results: dict[str, dict], kmers: list[int]) -> str:
    """The markdown table; ensemble columns appear when some task has an ensemble record."""
    with_ensemble = any(entry.get("ensemble") for entry in results.values())
    columns = [
        "task",
        "test n",
        *(f"{k}-mer LR acc / F1 / AUROC" for k in kmers),
        "mono+di LR AUROC",
        "BigBird acc",
        "BigBird F1",
        "BigBird AUROC",
        "seeds",
        *(["ensemble acc / F1 / AUROC", "ensemble seeds"] if with_ensemble else []),
        "train min",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, entry in results.items():
        lr, comp = entry["kmer_lr"], entry["composition_lr"]
        runs = [run for run in entry.get("bigbird", []) if "error" not in run]
        column = {
            key: [run[key] for run in runs if key in run]
            for key in ("accuracy", "f1", "auroc", "train_minutes")
        }
        ensemble = entry.get("ensemble")
        ensemble_cells = [
            _ensemble_cell(ensemble),
            ",".join(str(seed) for seed in ensemble["seeds"]) if ensemble else "-",
        ]
        cells = [
            name,
            str(entry["test_records"]),
            *(
                f"{lr[str(k)]['accuracy']:.3f} / {lr[str(k)]['f1']:.3f} / {lr[str(k)]['auroc']:.3f}"
                if str(k) in lr
                else "-"
                for k in kmers
            ),
            f"{comp['auroc']:.3f}" if comp else "-",
            _mean_sd(column["accuracy"]),
            _mean_sd(column["f1"]),
            _mean_sd(column["auroc"]),
            str(len(runs)),
            *(ensemble_cells if with_ensemble else []),
            _mean_sd(column["train_minutes"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def earlier_records(out: Path) -> dict[str, dict[int, dict]]:
    """Task -> seed -> record of an accuracy.json already under `out` (none: empty)."""
    path = out / "accuracy.json"
    if not path.exists():
        return {}
    results = json.loads(path.read_text())["results"]
    return {
        name: {run["seed"]: run for run in entry.get("bigbird", [])}
        for name, entry in results.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--model", default=None,
        help="conf/model/<name>.yaml for every task (default: each task's, Task.model)",
    )
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="conf/tokenizer/<name>.yaml for BigBird, every task (default: each task's, "
        "Task.tokenizer; e.g. kmer6_nonoverlap: 6x fewer tokens)",
    )
    parser.add_argument(
        "--max-minutes", type=float, default=30.0, help="training time limit per run"
    )
    parser.add_argument(
        "--max-epochs", type=int, default=None,
        help="epochs per run (default: each task's, chosen to fit --max-minutes on a CPU)",
    )
    parser.add_argument(
        "--kmer", type=int, nargs="+", default=[4, 6], help="k of the k-mer LR baselines"
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per training run")
    parser.add_argument(
        "--jobs", type=int, default=1, help="training runs at once (e.g. several on one GPU)"
    )
    parser.add_argument("--baseline-only", action="store_true", help="skip BigBird training")
    parser.add_argument(
        "--no-baselines", action="store_true", help="skip the logistic regressions (BigBird only)"
    )
    parser.add_argument(
        "--override", nargs="*", default=[], help="extra bigbird-genomics-train overrides"
    )
    parser.add_argument(
        "--ensemble", action=argparse.BooleanOptionalAction, default=None,
        help="also score each task's seeds as one ensemble (default: on with two or more seeds)",
    )
    parser.add_argument(
        "--ensemble-only", action="store_true",
        help="train nothing: read the finished seed runs under --out (those with "
        "evaluate_test.json) and score their ensemble",
    )
    args = parser.parse_args(argv)
    if args.ensemble is None:
        args.ensemble = len(set(args.seeds)) >= 2
    if args.ensemble_only and args.ensemble is False:
        parser.error("--ensemble-only needs the ensemble; drop --no-ensemble")
    args.tasks = list(dict.fromkeys(args.tasks))  # a task twice would share its run folders
    # The real data are only read to build a task's data set; built ones (say, carried to a GPU
    # node) need no copy of them.
    unbuilt = [
        name for name in args.tasks if not (args.out / "data" / name / TASKS[name].fasta).exists()
    ]
    if unbuilt and not SHARED.is_dir():
        print(
            f"real data not found at {SHARED} (set BIGBIRD_GENOMICS_SHARED_DATA); "
            f"needed to build {', '.join(unbuilt)}",
            file=sys.stderr,
        )
        return 2
    results: dict[str, dict] = {}
    for name in args.tasks:
        task = TASKS[name]
        fasta, tokenized = prepare(task, args.out, args.threads, tokenizer_of(task, args))
        sequences, labels, splits = read_labelled(fasta)
        kmers = [] if args.no_baselines else args.kmer
        entry = {
            "model": args.model or task.model,
            "tokenizer": tokenizer_of(task, args),
            "test_records": int((splits == "test").sum()),
            "kmer_lr": {
                str(k): baseline_metrics(kmer_frequencies(sequences, k), labels, splits)
                for k in kmers
            },
            "composition_lr": None
            if args.no_baselines
            else baseline_metrics(composition_features(sequences), labels, splits),
            "bigbird": [],
        }
        results[name] = entry
        print(f"{name}: data and baselines done", file=sys.stderr)
    if args.ensemble_only:
        earlier = earlier_records(args.out)
        for name in args.tasks:
            records = [
                finished_seed_record(args.out, name, seed, earlier.get(name, {}))
                for seed in args.seeds
            ]
            results[name]["bigbird"] = [record for record in records if record is not None]
    elif not args.baseline_only:
        runs = [(name, seed) for name in args.tasks for seed in args.seeds]

        def run(name_seed: tuple[str, int]) -> dict:
            name, seed = name_seed
            tokenized = tokenized_dir(args.out, name, tokenizer_of(TASKS[name], args))
            run_dir = seed_run_dir(args.out, name, seed)
            try:
                metrics = train_and_evaluate(TASKS[name], tokenized, run_dir, seed, args)
            except RuntimeError as error:  # one failed run must not discard the others
                print(f"{name} seed {seed}: FAILED\n{error}", file=sys.stderr, flush=True)
                return {"seed": seed, "error": str(error)[-2000:]}
            print(f"{name} seed {seed}: {metrics}", file=sys.stderr, flush=True)
            return {"seed": seed, **metrics}

        # Threads only wait on the training subprocesses; results keep the task/seed order.
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for (name, _), record in zip(runs, pool.map(run, runs), strict=True):
                results[name]["bigbird"].append(record)
    for name, entry in results.items():
        entry["bigbird_summary"] = seed_summary(entry["bigbird"])
        if args.ensemble and not args.baseline_only:
            tokenized = tokenized_dir(args.out, name, tokenizer_of(TASKS[name], args))
            entry["ensemble"] = evaluate_ensemble(name, entry["bigbird"], tokenized, args)
    failed = sum("error" in run for entry in results.values() for run in entry["bigbird"])
    failed += sum("error" in (entry.get("ensemble") or {}) for entry in results.values())
    table = render_table(results, args.kmer)
    print(table)
    settings = {
        key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()
    }
    payload = {"settings": settings, "results": results}
    from bigbird_genomics.io.atomic import atomic_path

    with atomic_path(args.out / "accuracy.json") as temporary:
        temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    with atomic_path(args.out / "accuracy.md") as temporary:
        temporary.write_text(table + "\n", encoding="utf-8")  # "±" needs UTF-8
    if failed:
        print(f"{failed} run(s) failed: see accuracy.json and the logs", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
