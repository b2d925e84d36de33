"""Does information cross the sequence? BigBird variants and a CNN on the long-range set.

The set (`bigbird-genomics make-longrange`, rule "xor") labels a record 1 when the motifs
near its two ends differ; counts of each motif are the same in every record, so a model must
relate the two ends. Each attention variant is trained with the project's own CLI
(`bigbird-genomics-train`, CLS pooling) and scored by `bigbird-genomics evaluate`:

- window_only     attention=window_only
- window_global   attention=bigbird attention.num_random_blocks=0
- bigbird         attention=bigbird (window + global + random)
- dense           attention=dense (only up to --dense-max-tokens; quadratic memory)
- cnn             a small 1-D CNN on one-hot bases with global max pooling (trained here)

    python -m benchmarks.longrange --out results/bench/longrange --length-bp 8192 \\
        --num-records 2000 --model small --max-minutes 30
    python -m benchmarks.longrange --out /tmp/lr --length-bp 2048 --num-records 600 \\
        --model tiny --max-minutes 4 --variants window_only bigbird cnn     # a short CPU check

Prints a table, writes longrange.json and longrange.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.accuracy import (
    SHARED,
    cli_command,
    ensure_tokenized,
    read_labelled,
    run_logged,
    train_then_evaluate,
)

VARIANTS = {
    "window_only": ["attention=window_only"],
    "window_global": ["attention=bigbird", "attention.num_random_blocks=0"],
    "bigbird": ["attention=bigbird"],
    "dense": ["attention=dense"],
    "cnn": [],
}
K = 6
BLOCK = 64


def prepare(args: argparse.Namespace) -> tuple[Path, Path, int]:
    """Generate and tokenize the set once; returns FASTA, tokenized folder, tokens per record."""
    data = args.out / "data"
    fasta, tokenized = data / "longrange.fa", data / "tokenized"
    tokens = args.length_bp - K + 1
    if not fasta.exists():
        command = cli_command() + [
            "make-longrange",
            "--out",
            str(fasta),
            "--num-records",
            str(args.num_records),
            "--length-bp",
            str(args.length_bp),
            "--edge-bp",
            str(args.edge_bp),
            "--rule",
            args.rule,
        ]
        ecoli = SHARED / "genomes" / "ecoli_k12_mg1655.fa.gz"
        if ecoli.exists():
            command += ["--background-fasta", str(ecoli)]
        run_logged(command, data / "make.log", args.threads)
    ensure_tokenized(fasta, tokenized, tokens, args.threads)
    return fasta, tokenized, tokens


def train_variant(name: str, tokenized: Path, tokens: int, args: argparse.Namespace) -> dict:
    """Train and evaluate one attention variant with the project's CLIs."""
    run_dir = args.out / "runs" / name
    context = -(-(tokens + 1) // BLOCK) * BLOCK  # [CLS] + tokens, rounded up to whole blocks
    overrides = [
        "task=promoter",
        "task.name=longrange",
        f"model={args.model}",
        f"model.max_tokens={context}",
        *VARIANTS[name],
        f"data.batch_size={args.batch_size}",
        f"seed={args.seed}",
    ]
    flat, seconds = train_then_evaluate(
        overrides, tokenized, run_dir, args.out / "runs" / name, args
    )
    return {"accuracy": flat["accuracy"], "auroc": flat["auroc"], "train_minutes": seconds / 60}


def train_cnn(fasta: Path, args: argparse.Namespace) -> dict:
    """A two-layer 1-D CNN with global max pooling, trained on the same train split."""
    import torch
    from torch import nn

    from bigbird_genomics.datasets.motifs import BASE_INDEX
    from bigbird_genomics.metrics import binary_metrics

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    sequences, labels, splits = read_labelled(fasta)
    codes = np.stack([BASE_INDEX[s] for s in sequences])  # 4 = N, one-hot row of zeros
    one_hot = np.zeros((len(codes), 5, codes.shape[1]), dtype=np.float32)
    np.put_along_axis(one_hot, codes[:, None, :], 1.0, axis=1)
    x = torch.from_numpy(one_hot[:, :4])
    y = torch.from_numpy(labels.astype(np.float32))
    model = nn.Sequential(
        nn.Conv1d(4, 64, 15, padding=7),
        nn.ReLU(),
        nn.MaxPool1d(8),
        nn.Conv1d(64, 64, 9, padding=4),
        nn.ReLU(),
        nn.AdaptiveMaxPool1d(1),
        nn.Flatten(),
        nn.Linear(64, 1),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train = torch.from_numpy(np.flatnonzero(splits == "train"))
    start, deadline = time.perf_counter(), time.perf_counter() + 60 * args.max_minutes
    for _ in range(args.max_epochs):
        for batch in train[torch.randperm(len(train))].split(args.batch_size):
            loss = nn.functional.binary_cross_entropy_with_logits(
                model(x[batch]).squeeze(1), y[batch]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if time.perf_counter() > deadline:
            break
    test = torch.from_numpy(np.flatnonzero(splits == "test"))
    with torch.no_grad():
        probs = torch.sigmoid(torch.cat([model(x[b]).squeeze(1) for b in test.split(64)]))
    metrics = binary_metrics(probs, y[test].long())
    return {
        "accuracy": metrics["accuracy"],
        "auroc": metrics["auroc"],
        "train_minutes": (time.perf_counter() - start) / 60,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--length-bp", type=int, default=8192)
    parser.add_argument("--num-records", type=int, default=2000)
    parser.add_argument("--edge-bp", type=int, default=500)
    parser.add_argument("--rule", choices=("xor", "and"), default="xor")
    parser.add_argument("--model", default="small")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-minutes", type=float, default=30.0, help="per variant")
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--dense-max-tokens", type=int, default=4096, help="skip dense above this")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--override", nargs="*", default=[], help="extra training overrides")
    args = parser.parse_args(argv)
    fasta, tokenized, tokens = prepare(args)
    results: dict[str, dict] = {}
    for name in args.variants:
        if name == "dense" and tokens > args.dense_max_tokens:
            results[name] = {
                "skipped": f"{tokens} tokens > --dense-max-tokens {args.dense_max_tokens}"
            }
            continue
        results[name] = (
            train_cnn(fasta, args)
            if name == "cnn"
            else train_variant(name, tokenized, tokens, args)
        )
        print(f"{name}: {results[name]}", file=sys.stderr)
    lines = ["| variant | test accuracy | test AUROC | train min |", "|---|---|---|---|"]
    for name, entry in results.items():
        if "skipped" in entry:
            lines.append(f"| {name} | skipped: {entry['skipped']} | | |")
        else:
            numbers = (
                f"{entry['accuracy']:.3f} | {entry['auroc']:.3f} | {entry['train_minutes']:.1f}"
            )
            lines.append(f"| {name} | {numbers} |")
    table = "\n".join(lines)
    print(table)
    from bigbird_genomics.datasets.io import atomic_open

    settings = {
        key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()
    }
    with atomic_open(args.out / "longrange.json") as stream:
        json.dump(
            {"settings": settings, "tokens_per_record": tokens, "results": results},
            stream,
            indent=2,
        )
    with atomic_open(args.out / "longrange.md") as stream:
        stream.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
