"""`bigbird-genomics tokenize`: FASTA (+ labels) -> tokenized, memory-mapped data set."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_K, DEFAULT_STRIDE = 6, 1

HELP = (
    "Turn a FASTA file (labels in the headers, e.g. 'label=1 split=train', or in a TSV/CSV "
    "keyed by record id) into a tokenized data set directory: k-mer tokens in windows of at "
    "most --max-tokens, with record coordinates, labels, train/val/test split and metadata "
    "(tokenizer, source checksums) that training and prediction check."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fasta", required=True, type=Path, help="FASTA (plain or gzip)")
    parser.add_argument(
        "--labels", type=Path, default=None,
        help="label TSV/CSV: id + 0/1 columns, or id + one class column",
    )
    parser.add_argument(
        "--label-groups", type=Path, default=None, help="TSV with columns label, group"
    )
    parser.add_argument("--out", required=True, type=Path, help="data set directory to write")
    parser.add_argument("--k", type=int, help=f"k-mer size ({DEFAULT_K})")
    parser.add_argument(
        "--stride", type=int, help=f"1 = overlapping, k = disjoint ({DEFAULT_STRIDE})"
    )
    parser.add_argument(
        "--tokenizer",
        metavar="NAME",
        help="take k and stride from the training config's tokenizer option NAME "
        "(conf/tokenizer/NAME.yaml, e.g. kmer6, kmer1), the one `bigbird-genomics-train "
        "tokenizer=NAME` uses; instead of --k/--stride",
    )
    parser.add_argument(
        "--max-tokens", type=int, default=512, help="k-mer tokens per example, without [CLS]"
    )
    parser.add_argument("--overlap-bp", type=int, default=0, help="overlap of a record's windows")
    parser.add_argument(
        "--split-fractions",
        type=float,
        nargs=3,
        default=(0.8, 0.1, 0.1),
        metavar=("TRAIN", "VAL", "TEST"),
        help="record fractions for records without split= in their header",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the record split")
    parser.add_argument(
        "--ambiguity",
        choices=("to-n", "error"),
        default="to-n",
        help="IUPAC ambiguity codes: read as N (their k-mers become [UNK]) or refuse them",
    )


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.commands._arguments import kmer_settings
    from bigbird_genomics.io.fasta import FastaPolicy
    from bigbird_genomics.io.paths import check_outputs
    from bigbird_genomics.tokens.build import tokenize_fasta
    from bigbird_genomics.tokens.kmers import KmerTokenizer
    from bigbird_genomics.tokens.store import TokenizedDataset

    check_outputs(
        "tokenize",
        inputs={"--fasta": args.fasta, "--labels": args.labels,
                "--label-groups": args.label_groups},  # fmt: skip
        replaced_dirs={"--out": args.out},
    )
    k, stride = kmer_settings(args.tokenizer, args.k, args.stride, DEFAULT_K, DEFAULT_STRIDE)
    out = tokenize_fasta(
        args.fasta,
        args.out,
        KmerTokenizer(k=k, stride=stride),
        labels_table=args.labels,
        label_groups_table=args.label_groups,
        max_tokens=args.max_tokens,
        overlap_bp=args.overlap_bp,
        split_fractions=tuple(args.split_fractions),
        seed=args.seed,
        policy=FastaPolicy(ambiguity="to_n" if args.ambiguity == "to-n" else "error"),
    )
    meta = TokenizedDataset(out).meta
    splits = ", ".join(f"{name} {count}" for name, count in meta["split_counts"].items())
    print(
        f"wrote {out}: {meta['num_examples']} examples from {meta['num_records']} records "
        f"({meta['num_bases']} bp, {meta['num_n']} N), {meta['num_tokens']} tokens, "
        f"k={meta['k']} stride={meta['stride']}; split: {splits}"
    )
    if meta["skipped_records"]:
        print(f"skipped {len(meta['skipped_records'])} record(s) shorter than k={meta['k']}")
    return 0
