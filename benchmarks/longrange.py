"""Does information cross the sequence? BigBird variants and a CNN on the long-range set.

The set (`bigbird-genomics make-longrange`, rule "xor") labels a record 1 when the motif
clusters near its two ends differ; every record holds two A and two B clusters (distractors
in the middle), and the start motif is drawn independently of the label (A in 20 % of
records), so neither the motif counts nor the start say anything; the end alone says 80 %,
both ends 100 %. Records are tokenized into non-overlapping 6-mers: 8,058 bp = 1,343 tokens,
[CLS] + 1,343 = 21 blocks of 64, so the 360 bp end regions fall inside BigBird's two global
blocks. Each attention variant is trained with the project's own CLI
(`bigbird-genomics-train`, [CLS] pooling, early stopping off, one epoch of fresh records)
and scored on the test split by `bigbird-genomics evaluate`:

- window_only     attention=window_only: [CLS] sees `num_layers` blocks around the start
- window_global   attention=bigbird attention.num_random_blocks=0
- bigbird         attention=bigbird (window + global + random)
- dense           attention=dense (full attention; skipped above --dense-max-tokens)
- cnn             a small 1-D CNN on one-hot bases with global max pooling (trained here)

    python -m benchmarks.longrange --out results/bench/longrange   # 8 kbp, all: ~40 min
    python -m benchmarks.longrange --out /tmp/lr --length-bp 2298 --num-records 2000 \\
        --variants window_only bigbird                             # 2.3 kbp: a short check

Prints a table, writes longrange.json and longrange.md. Results: docs/longrange.md.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.accuracy import (
    SHARED,
    cli_command,
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
# A model a single CPU thread trains on 8 kbp records in minutes (tiny, widened); dropout off:
# fresh synthetic records, not regularisation, keep it from memorising.
MODEL = [
    "model=tiny",
    "model.hidden_size=64",
    "model.num_layers=2",
    "model.num_heads=2",
    "model.intermediate_size=128",
    "model.dropout=0.0",
]


def data_settings(args: argparse.Namespace) -> dict:
    """Everything the generated and tokenized data depend on (a change rebuilds them)."""
    keys = ("num_records", "length_bp", "edge_bp", "margin_bp", "copies", "frame_bp", "rule")
    keys += ("start_a_fraction", "k", "stride")
    return {key: getattr(args, key) for key in keys} | {"data_seed": args.data_seed}


def prepare(args: argparse.Namespace) -> tuple[Path, Path, int]:
    """Generate and tokenize the set once; returns FASTA, tokenized folder, tokens per record."""
    from bigbird_genomics.tokens.kmers import KmerTokenizer

    data = args.out / "data"
    fasta, tokenized, stamp = data / "longrange.fa", data / "tokenized", data / "settings.json"
    settings = data_settings(args)
    if stamp.exists() and json.loads(stamp.read_text()) != settings:
        shutil.rmtree(data)  # made with other settings
    tokenizer = KmerTokenizer(k=args.k, stride=args.stride)
    tokens = tokenizer.num_tokens(args.length_bp)
    if tokenizer.max_bases(tokens) < args.length_bp:
        tokens += 1  # one more (partial) step so that one window covers the whole record
    if not fasta.exists():
        command = cli_command() + ["make-longrange", "--out", str(fasta)]
        command += ["--num-records", str(args.num_records), "--length-bp", str(args.length_bp)]
        command += ["--edge-bp", str(args.edge_bp), "--margin-bp", str(args.margin_bp)]
        command += ["--copies", str(args.copies), "--frame-bp", str(args.frame_bp)]
        command += ["--rule", args.rule, "--start-a-fraction", str(args.start_a_fraction)]
        command += ["--seed", str(args.data_seed)]
        ecoli = SHARED / "genomes" / "ecoli_k12_mg1655.fa.gz"
        if ecoli.exists():
            command += ["--background-fasta", str(ecoli)]
        run_logged(command, data / "make.log", args.threads)
    if not tokenized.exists():
        command = cli_command() + ["tokenize", "--fasta", str(fasta), "--k", str(args.k)]
        command += ["--stride", str(args.stride), "--max-tokens", str(tokens)]
        run_logged(command + ["--out", str(tokenized)], data / "tokenize.log", args.threads)
    meta = json.loads((tokenized / "meta.json").read_text())
    if meta["vocab_hash"] != tokenizer.vocab_hash or meta["num_examples"] != args.num_records:
        raise RuntimeError(f"{tokenized}: not one example per record with this tokenizer")
    stamp.write_text(json.dumps(settings))
    return fasta, tokenized, int(meta["max_tokens"])


def train_variant(name: str, tokenized: Path, tokens: int, args: argparse.Namespace) -> dict:
    """Train and evaluate one attention variant with the project's CLIs."""
    run_dir = args.out / "runs" / name
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run, not a resumed one
    context = math.ceil((tokens + 1) / args.block_size) * args.block_size  # [CLS] + tokens
    overrides = [
        "task=promoter",
        "task.name=longrange",
        f"tokenizer.k={args.k}",
        f"tokenizer.stride={args.stride}",
        *(MODEL if args.model is None else [f"model={args.model}"]),
        f"model.max_tokens={context}",
        *VARIANTS[name],
        f"attention.block_size={args.block_size}",
        f"data.batch_size={args.batch_size}",
        f"optim.lr={args.lr}",
        f"trainer.val_check_interval={args.val_check_interval}",
        "callbacks.early_stopping=null",
        "callbacks.progress_bar=null",
        f"seed={args.seed}",
    ]
    flat, seconds = train_then_evaluate(
        overrides, tokenized, run_dir, args.out / "runs" / name, args
    )
    return {"accuracy": flat["accuracy"], "auroc": flat["auroc"], "train_minutes": seconds / 60}


def train_cnn(fasta: Path, args: argparse.Namespace) -> dict:
    """A two-layer 1-D CNN with global max pooling, trained on the same train split.

    Its receptive field (~90 bp) sees a motif and its neighbours, not an end of the record:
    the generator keeps motifs `--margin-bp` from the ends, so the padding cannot tell it
    where a cluster lies. It keeps the epoch with the best validation accuracy.
    """
    import torch
    from torch import nn

    from bigbird_genomics.builders.motifs import BASE_INDEX
    from bigbird_genomics.inference.metrics import binary_metrics

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
    train, val, test = (torch.from_numpy(np.flatnonzero(splits == s)) for s in SPLITS)

    def probabilities(indices: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.sigmoid(torch.cat([model(x[b]).squeeze(1) for b in indices.split(64)]))

    start, deadline = time.perf_counter(), time.perf_counter() + 60 * args.max_minutes
    best_accuracy, best_state = -1.0, None
    for _ in range(args.cnn_epochs):
        for batch in train[torch.randperm(len(train))].split(args.batch_size):
            loss = nn.functional.binary_cross_entropy_with_logits(
                model(x[batch]).squeeze(1), y[batch]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracy = ((probabilities(val) > 0.5).float() == y[val]).float().mean().item()
        if accuracy > best_accuracy:
            best_accuracy = accuracy
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        if time.perf_counter() > deadline:
            break
    minutes = (time.perf_counter() - start) / 60
    model.load_state_dict(best_state)
    metrics = binary_metrics(probabilities(test), y[test].long())
    return {"accuracy": metrics["accuracy"], "auroc": metrics["auroc"], "train_minutes": minutes}


SPLITS = ("train", "val", "test")


def render_table(results: dict[str, dict], header: str) -> str:
    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [header, "", "| variant | test accuracy | test AUROC | train min |"]
    lines.append("|---|---|---|---|")
    for name, entry in results.items():
        if "skipped" in entry:
            lines.append(f"| {name} | skipped: {entry['skipped']} | | |")
        else:
            numbers = f"{number(entry['accuracy'])} | {number(entry['auroc'])}"
            lines.append(f"| {name} | {numbers} | {entry['train_minutes']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--length-bp", type=int, default=8058, help="8058 = 1343 6-mers: [CLS] + 21 blocks of 64"
    )
    parser.add_argument("--num-records", type=int, default=4000)
    parser.add_argument("--edge-bp", type=int, default=360, help="within one block of 64 6-mers")
    parser.add_argument("--margin-bp", type=int, default=60)
    parser.add_argument("--copies", type=int, default=8, help="motif copies per cluster")
    parser.add_argument("--frame-bp", type=int, default=1)
    parser.add_argument("--rule", choices=("xor", "and"), default="xor")
    parser.add_argument("--start-a-fraction", type=float, default=0.2)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--stride", type=int, default=6, help="k: non-overlapping k-mers")
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--model", help="a conf/model option instead of the built-in MODEL")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-epochs", type=int, default=1)
    parser.add_argument(
        "--val-check-interval", type=float, default=0.25, help="validations per epoch: 1/this"
    )
    parser.add_argument("--max-minutes", type=float, default=12.0, help="per variant (a cap)")
    parser.add_argument(
        "--cnn-epochs", type=int, default=5, help="the CNN is cheap: more epochs, best on val"
    )
    parser.add_argument("--dense-max-tokens", type=int, default=4096, help="skip dense above this")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--override", nargs="*", default=[], help="extra training overrides")
    args = parser.parse_args(argv)
    fasta, tokenized, tokens = prepare(args)
    results: dict[str, dict] = {}
    previous = args.out / "longrange.json"
    if previous.exists():  # keep other variants' results made on the same data
        earlier = json.loads(previous.read_text())
        if earlier.get("data") == data_settings(args):
            results = {k: v for k, v in earlier["results"].items() if k not in args.variants}
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
    _, labels, splits = read_labelled(fasta)
    counts = {split: int((splits == split).sum()) for split in SPLITS}
    header = (
        f"{args.length_bp} bp = {tokens} tokens ({args.k}-mers, stride {args.stride}) per record; "
        f"{args.num_records} records (train {counts['train']}, val {counts['val']}, "
        f"test {counts['test']}); rule {args.rule}; {args.max_epochs} epoch(s), "
        f"{args.threads} thread(s)"
    )
    table = render_table(results, header)
    print(table)
    from bigbird_genomics.io.writers import atomic_open

    settings = {
        key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()
    }
    with atomic_open(args.out / "longrange.json") as stream:
        json.dump(
            {
                "settings": settings,
                "data": data_settings(args),
                "tokens_per_record": tokens,
                "split_counts": counts,
                "model_overrides": MODEL if args.model is None else [f"model={args.model}"],
                "results": results,
            },
            stream,
            indent=2,
        )
    with atomic_open(args.out / "longrange.md") as stream:
        stream.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
