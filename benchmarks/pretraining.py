"""Does masked-LM pretraining help? Pretrain, fine-tune on few labels, compare with scratch.

Arms, each with the same model (`--model`, `--tokenizer`) and fine-tuning recipe:
- `scratch`: the promoter task trained from random weights;
- `ecoli`: encoder pretrained (task=mlm) on the E. coli genome, both strands
  (`bigbird-genomics pretrain-corpus`), then fine-tuned with `model.init_from`;
- `indomain`: encoder pretrained on the promoter training split's own sequences, labels
  dropped (the unlabelled in-domain corpus a user always has).
Each arm is fine-tuned on `--fractions` of the training labels (a seeded, label-stratified
subset of the train records; val and test stay whole) with every `--seeds` seed, and scored on
the test split by `bigbird-genomics evaluate`. The promoter data is benchmarks/accuracy.py's
`tata_deepromoter` (EPDnew TATA promoters, DeePromoter negatives), built by its builders.
`--longrange` adds: steps until val accuracy first reaches 0.95 on benchmarks/longrange.py's
synthetic task, from scratch and from an encoder pretrained on E. coli with that model.

    python -m benchmarks.pretraining --out results/bench/pretraining     # the full design
    python -m benchmarks.pretraining --out /tmp/pt --seeds 0 --fractions 0.2 1.0 \\
        --corpora ecoli --pretrain-steps 300 --finetune-epochs 2 --threads 1   # reduced

Prints a table and writes pretraining.json (every run) and pretraining.md (the table).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.accuracy import (
    SHARED,
    TASKS,
    cli_command,
    ensure_tokenized,
    prepare,
    run_logged,
    tokenizer_settings,
    train_command,
    train_then_evaluate,
)

PROMOTER_TASK = "tata_deepromoter"
GENOME = SHARED / "genomes" / "ecoli_k12_mg1655.fa.gz"
# Fine-tuning recipe for every arm: pick the checkpoint by val AUROC (the promoter recipe of
# benchmarks/accuracy.py), no early stop, so every arm trains the same number of steps.
FINETUNE = ["task.monitor=val/auroc", "task.monitor_mode=max", "callbacks.early_stopping=null",
            "callbacks.progress_bar=null"]


# --------------------------------------------------------------------------- data
def label_subset(fasta: Path, out: Path, fraction: float, seed: int) -> Path:
    """A copy of a labelled FASTA keeping `fraction` of each label's train records (seeded)."""
    from bigbird_genomics.io.fasta import read_fasta
    from bigbird_genomics.io.labels import header_fields
    from bigbird_genomics.io.writers import write_fasta

    records = list(read_fasta(fasta))
    fields = [header_fields(record.description) for record in records]
    rng = np.random.default_rng(seed)
    keep = np.ones(len(records), dtype=bool)
    for label in sorted({f["label"] for f in fields}):
        train = np.flatnonzero([f["split"] == "train" and f["label"] == label for f in fields])
        dropped = rng.permutation(train)[int(round(fraction * len(train))):]
        keep[dropped] = False
    write_fasta(out, ((r.description, r.sequence) for r, k in zip(records, keep, strict=True) if k))
    return out


def train_split_fasta(fasta: Path, out: Path) -> Path:
    """The train records of a labelled FASTA without their labels: an in-domain corpus."""
    from bigbird_genomics.io.fasta import read_fasta
    from bigbird_genomics.io.labels import header_fields
    from bigbird_genomics.io.writers import write_fasta

    write_fasta(out, (
        (record.id, record.sequence) for record in read_fasta(fasta)
        if header_fields(record.description)["split"] == "train"
    ))
    return out


def build_corpus(fastas: list[Path], out: Path, k: int, stride: int, max_tokens: int,
                 args: argparse.Namespace) -> Path:
    """`bigbird-genomics pretrain-corpus` unless the corpus is already there."""
    if not (out / "meta.json").exists():
        command = cli_command() + ["pretrain-corpus", "--fasta", *map(str, fastas)]
        command += ["--k", str(k), "--stride", str(stride), "--max-tokens", str(max_tokens)]
        command += ["--out", str(out)]
        run_logged(command, out.parent / f"{out.name}.log", args.threads)
    return out


# --------------------------------------------------------------------------- training
def pretrain(corpus: Path, run_dir: Path, model: list[str], args: argparse.Namespace) -> dict:
    """task=mlm on `corpus` for `--pretrain-steps` steps; returns the run's metrics.json."""
    if not (run_dir / "metrics.json").exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        steps = args.pretrain_steps
        overrides = [
            "task=mlm", *model, f"data.dataset={corpus}", "logger=csv",
            f"seed={args.seed_pretrain}",
            f"data.batch_size={args.pretrain_batch_size}", f"trainer.max_steps={steps}",
            "trainer.max_epochs=1000", f"trainer.val_check_interval={max(1, steps // 4)}",
            "trainer.check_val_every_n_epoch=null", "callbacks.early_stopping=null",
            "callbacks.progress_bar=null", f"optim.lr={args.pretrain_lr}",
            f"hydra.run.dir={run_dir}", *args.override,
        ]
        seconds = run_logged(train_command() + overrides, Path(f"{run_dir}.log"), args.threads)
        (run_dir / "wall_seconds.txt").write_text(f"{seconds:.1f}\n")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["wall_minutes"] = float((run_dir / "wall_seconds.txt").read_text()) / 60
    return metrics


def finetune(tokenized: Path, run_dir: Path, seed: int, model: list[str],
             init_from: Path | None, args: argparse.Namespace) -> dict:
    """One promoter fine-tune (or from-scratch run), scored on the test split."""
    result_path = run_dir.parent / f"{run_dir.name}.result.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    shutil.rmtree(run_dir, ignore_errors=True)
    overrides = ["task=promoter", f"task.name={PROMOTER_TASK}", *model, f"seed={seed}", *FINETUNE]
    if init_from is not None:
        overrides.append(f"model.init_from={init_from}")
    flat, seconds = train_then_evaluate(
        overrides, tokenized, run_dir, run_dir.parent / run_dir.name, args,
        epochs=args.finetune_epochs,
    )
    result = {key: flat[key] for key in ("accuracy", "f1", "auroc")}
    result["train_minutes"] = seconds / 60
    result_path.write_text(json.dumps(result))
    return result


def steps_to(csv_path: Path, key: str, threshold: float) -> int | None:
    """First logged step at which `key` (e.g. val/accuracy) reached `threshold`, or None."""
    parts = sorted(csv_path.parent.glob("metrics.part*.csv")) + [csv_path]
    for part in parts:
        if not part.exists():
            continue
        with open(part) as handle:
            for row in csv.DictReader(handle):
                value = row.get(key)
                if value and float(value) >= threshold:
                    return int(row["step"])
    return None


def longrange_arm(args: argparse.Namespace) -> dict:
    """Steps to val accuracy 0.95 on the long-range task, from scratch and pretrained on E. coli."""
    from benchmarks import longrange
    from bigbird_genomics.tokens.kmers import KmerTokenizer

    out = args.out / "longrange"
    tokenizer = KmerTokenizer(k=6, stride=6)  # benchmarks/longrange.py's defaults
    tokens = tokenizer.num_tokens(args.longrange_length_bp)
    if tokenizer.max_bases(tokens) < args.longrange_length_bp:
        tokens += 1
    context = math.ceil((tokens + 1) / 64) * 64
    model = [*longrange.MODEL, f"model.max_tokens={context}", "tokenizer.k=6", "tokenizer.stride=6"]
    corpus = build_corpus([GENOME], out / "corpus_ecoli", 6, 6, context - 1, args)
    pretrained = pretrain(corpus, out / "pretrain_ecoli", model, args)
    results: dict[str, dict] = {"pretrain": pretrained}
    init = f"model.init_from={pretrained['best_checkpoint']}"
    for arm, extra in (("scratch", []), ("ecoli", [init])):
        arm_out = out / arm
        shared = out / "scratch" / "data"
        if arm != "scratch" and shared.exists() and not (arm_out / "data").exists():
            arm_out.mkdir(parents=True, exist_ok=True)
            (arm_out / "data").symlink_to(shared.resolve())  # generated once, read by both arms
        command = [sys.executable, "-m", "benchmarks.longrange", "--out", str(arm_out)]
        command += ["--variants", "bigbird", "--length-bp", str(args.longrange_length_bp)]
        command += ["--num-records", str(args.longrange_records), "--threads", str(args.threads)]
        command += ["--max-epochs", str(args.longrange_epochs)]
        command += ["--override", *extra, *args.override]
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=longrange.__file__.rsplit("/", 2)[0],
                       stdout=subprocess.DEVNULL)
        summary = json.loads((arm_out / "longrange.json").read_text())
        csv_path = arm_out / "runs" / "bigbird" / "csv" / "metrics.csv"
        results[arm] = {
            "steps_to_0.95": steps_to(csv_path, "val/accuracy", 0.95),
            "summary": summary,
            "minutes": (time.perf_counter() - start) / 60,
        }
    return results


# --------------------------------------------------------------------------- report
def mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def render_table(runs: list[dict], pretrained: dict[str, dict]) -> str:
    lines = ["| arm | label fraction | train records | seeds | test F1 | test AUROC | "
             "fine-tune min |", "|---|---|---|---|---|---|---|"]
    arms = sorted({(r["arm"], r["fraction"]) for r in runs}, key=lambda a: (a[1], a[0]))
    for arm, fraction in arms:
        chosen = [r for r in runs if r["arm"] == arm and r["fraction"] == fraction]
        lines.append(
            f"| {arm} | {fraction:g} | {chosen[0]['train_records']} | {len(chosen)} | "
            f"{mean_sd([r['f1'] for r in chosen])} | {mean_sd([r['auroc'] for r in chosen])} | "
            f"{mean_sd([r['train_minutes'] for r in chosen])} |"
        )
    lines += ["", "| corpus | windows (train) | steps | val MLM loss | masked acc | bits/base | "
              "minutes |", "|---|---|---|---|---|---|---|"]
    for name, entry in pretrained.items():
        val = entry["val"]
        lines.append(
            f"| {name} | {entry['corpus_windows']} | {entry['global_step']} | {val['loss']:.3f} | "
            f"{val['accuracy']:.4f} | {val['bits_per_base']:.3f} | {entry['wall_minutes']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--corpora", nargs="+", choices=("ecoli", "indomain"),
                        default=["ecoli", "indomain"])
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.05, 0.2, 1.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--model", default="tiny", help="conf/model option (no stem pooling)")
    parser.add_argument("--tokenizer", default="kmer6", help="conf/tokenizer option")
    parser.add_argument("--pretrain-steps", type=int, default=5000)
    parser.add_argument("--pretrain-batch-size", type=int, default=32)
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--seed-pretrain", type=int, default=0)
    parser.add_argument("--finetune-epochs", type=int, default=8)
    parser.add_argument("--max-minutes", type=float, default=30.0, help="cap per training run")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--longrange", action="store_true", help="add the long-range arm")
    parser.add_argument("--longrange-only", action="store_true",
                        help="run the long-range arm alone (no promoter arms)")
    parser.add_argument("--longrange-length-bp", type=int, default=8058)
    parser.add_argument("--longrange-records", type=int, default=4000)
    parser.add_argument("--longrange-epochs", type=int, default=1)
    parser.add_argument("--override", nargs="*", default=[], help="extra training overrides")
    args = parser.parse_args(argv)
    args.max_epochs = args.finetune_epochs  # read by accuracy.train_then_evaluate
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    if args.longrange_only:
        return write_results(args, {}, [], longrange_arm(args), started)
    task = TASKS[PROMOTER_TASK]
    fasta, tokenized = prepare(task, args.out, args.threads, args.tokenizer)
    k, stride = tokenizer_settings(args.tokenizer)
    import yaml

    model_cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "conf" / "model"
                                / f"{args.model}.yaml").read_text())
    model = [f"model={args.model}", f"tokenizer={args.tokenizer}"]
    corpus_tokens = int(model_cfg["max_tokens"]) - 1  # the model's context without [CLS]

    data = args.out / "data" / PROMOTER_TASK
    corpora = {
        "ecoli": [GENOME],
        "indomain": [train_split_fasta(fasta, data / "train_unlabelled.fa")]
        if "indomain" in args.corpora else [],
    }
    pretrained: dict[str, dict] = {}
    for name in args.corpora:
        corpus = build_corpus(corpora[name], args.out / "corpora" / name, k, stride,
                              corpus_tokens, args)
        metrics = pretrain(corpus, args.out / "pretrain" / name, model, args)
        metrics["corpus_windows"] = json.loads((corpus / "meta.json").read_text())[
            "split_counts"]["train"]
        pretrained[name] = metrics
        print(f"pretrained on {name}: val {metrics['val']}", flush=True)

    runs: list[dict] = []
    for fraction in args.fractions:
        subset = tokenized
        if fraction < 1:
            subset_fasta = label_subset(fasta, data / f"labels_{fraction:g}.fa", fraction, 0)
            subset = data / f"tokenized_{args.tokenizer}_{fraction:g}"
            ensure_tokenized(subset_fasta, subset, task.record_bp, args.threads, args.tokenizer)
        train_records = json.loads((subset / "meta.json").read_text())["split_counts"]["train"]
        for seed in args.seeds:
            for arm in ["scratch", *args.corpora]:
                init = Path(pretrained[arm]["best_checkpoint"]) if arm != "scratch" else None
                run_dir = args.out / "runs" / f"{arm}_f{fraction:g}_s{seed}"
                result = finetune(subset, run_dir, seed, model, init, args)
                result.update(arm=arm, fraction=fraction, seed=seed, train_records=train_records)
                runs.append(result)
                print(f"{arm} fraction {fraction:g} seed {seed}: F1 {result['f1']:.3f} "
                      f"AUROC {result['auroc']:.3f}", flush=True)

    longrange = longrange_arm(args) if args.longrange else None
    return write_results(args, pretrained, runs, longrange, started)


def write_results(args: argparse.Namespace, pretrained: dict[str, dict], runs: list[dict],
                  longrange: dict | None, started: float) -> int:
    """Print the table; write pretraining.json (every run) and pretraining.md (the table)."""
    table = render_table(runs, pretrained) if runs or pretrained else ""
    if longrange is not None:
        table += "\n\n" if table else ""
        table += "| long-range arm | steps to val accuracy 0.95 | minutes |\n|---|---|---|\n"
        table += "\n".join(
            f"| {arm} | {longrange[arm]['steps_to_0.95'] or 'not reached'} | "
            f"{longrange[arm]['minutes']:.1f} |" for arm in ("scratch", "ecoli")
        )
    print(table)
    payload = {
        "settings": {key: (str(v) if isinstance(v, Path) else v) for key, v in vars(args).items()},
        "pretrain": pretrained,
        "runs": runs,
        "longrange": longrange,
        "wall_minutes": (time.perf_counter() - started) / 60,
    }
    # The long-range arm alone writes beside, not over, a folder's promoter results.
    stem = "pretraining_longrange" if args.longrange_only else "pretraining"
    (args.out / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
