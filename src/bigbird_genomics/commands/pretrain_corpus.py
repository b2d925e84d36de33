"""`bigbird-genomics pretrain-corpus`: genome FASTA(s) -> unlabelled masked-LM data set."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "Cut one or more genome FASTA files (plain or gzip) into long windows of k-mer tokens for "
    "masked-LM pretraining (task=mlm): both strands by default, runs of N skipped, streamed to "
    "disk a batch of windows at a time. Give --max-tokens = the model's max_tokens - 1."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fasta", required=True, type=Path, nargs="+", help="genome FASTA(s)")
    parser.add_argument("--out", required=True, type=Path, help="data set directory to write")
    parser.add_argument(
        "--tokenizer", metavar="NAME",
        help="take k and stride from the training config's tokenizer option NAME "
        "(conf/tokenizer/NAME.yaml, e.g. kmer6), as `bigbird-genomics-train tokenizer=NAME` "
        "does; instead of --k/--stride",
    )
    parser.add_argument("--k", type=int, help="k-mer size (default: 6)")
    parser.add_argument("--stride", type=int, help="1 = overlapping, k = disjoint (default: 1)")
    parser.add_argument(
        "--max-tokens", type=int, default=511,
        help="k-mer tokens per window, without [CLS] (the model's max_tokens - 1)",
    )
    strands = parser.add_mutually_exclusive_group()
    strands.add_argument(
        "--both-strands", dest="both_strands", action="store_true", default=True,
        help="each window and its reverse complement (default)",
    )
    strands.add_argument(
        "--forward-only", dest="both_strands", action="store_false", help="forward strand only"
    )
    parser.add_argument(
        "--min-n-run", type=int, default=1,
        help="cut records at runs of at least this many N (shorter runs become [UNK] k-mers)",
    )
    parser.add_argument(
        "--min-window-bp", type=int, default=None,
        help="skip N-free stretches shorter than this (default: half a window)",
    )
    parser.add_argument("--val-fraction", type=float, default=0.01, help="windows for val/loss")
    parser.add_argument("--test-fraction", type=float, default=0.0, help="windows held out")
    parser.add_argument("--seed", type=int, default=0, help="seed of the window split")


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.commands._arguments import kmer_settings
    from bigbird_genomics.io.paths import check_outputs
    from bigbird_genomics.tokens.corpus import build_corpus
    from bigbird_genomics.tokens.kmers import KmerTokenizer
    from bigbird_genomics.tokens.store import TokenizedDataset

    check_outputs(
        "pretrain-corpus", inputs={"--fasta": args.fasta}, replaced_dirs={"--out": args.out}
    )
    k, stride = kmer_settings(args.tokenizer, args.k, args.stride, 6, 1)
    out = build_corpus(
        args.fasta,
        args.out,
        KmerTokenizer(k=k, stride=stride),
        max_tokens=args.max_tokens,
        both_strands=args.both_strands,
        min_n_run=args.min_n_run,
        min_window_bp=args.min_window_bp,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
    )
    meta = TokenizedDataset(out).meta
    corpus = meta["corpus"]
    splits = ", ".join(f"{name} {count}" for name, count in meta["split_counts"].items())
    print(
        f"wrote {out}: {meta['num_examples']} windows ({corpus['strands']} strands) of "
        f"{meta['window_bp']} bp from {meta['num_records']} records; {corpus['kept_bp']} of "
        f"{meta['num_bases']} bp kept ({meta['num_n']} N); {meta['num_tokens']} tokens, "
        f"k={meta['k']} stride={meta['stride']}; split: {splits}"
    )
    return 0
