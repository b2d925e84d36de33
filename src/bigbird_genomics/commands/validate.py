"""`bigbird-genomics validate`: check FASTA files and tokenized data sets, and summarise them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily at run time so `--help` stays fast
    from bigbird_genomics.io.fasta import FastaPolicy

HELP = (
    "Check FASTA files (plain, gzip or bgzip) and print one summary line per file: records, "
    "bases, shortest/longest record, N bases, IUPAC ambiguity codes read as N, soft-masked "
    "(lower-case) bases. Stops at the first problem with its file, record and line. With "
    "--data, check tokenized data sets: every file's size, shape and sha256 against its "
    "meta.json, and every token id against the vocabulary."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fasta", nargs="*", type=Path, help="FASTA files to check")
    parser.add_argument(
        "--data", type=Path, action="append", default=[], metavar="DIR",
        help="a tokenized data set to check in full (repeatable)",
    )
    parser.add_argument(
        "--ambiguity",
        choices=("to-n", "error"),
        default="to-n",
        help="IUPAC ambiguity codes (R, Y, ...): read as N and count them, or refuse them",
    )
    parser.add_argument(
        "--allow-duplicate-ids", action="store_true", help="accept repeated record ids"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")


def summarise(path: Path, policy: FastaPolicy) -> dict:
    """Counts over every record of one file (reads it once, record by record)."""
    from bigbird_genomics.io.fasta import read_fasta

    summary = {"file": str(path), "records": 0, "bases": 0, "min_length": None}
    summary.update(max_length=0, n_bases=0, ambiguous_to_n=0, soft_masked=0)
    for record in read_fasta(path, policy):
        length = len(record)
        summary["records"] += 1
        summary["bases"] += length
        summary["min_length"] = min(summary["min_length"] or length, length)
        summary["max_length"] = max(summary["max_length"], length)
        summary["n_bases"] += record.count_n()
        summary["ambiguous_to_n"] += record.num_ambiguous
        summary["soft_masked"] += int(record.soft_mask.sum())
    return summary


def check_data(path: Path) -> str:
    """One line on a tokenized data set, after reading all of it (sha256, token ids)."""
    from bigbird_genomics.tokens.store import TokenizedDataset

    data = TokenizedDataset(path)
    checked = data.verify()
    return f"{path}: ok, {len(data)} examples; " + ", ".join(checked)


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.errors import UserError
    from bigbird_genomics.io.fasta import FastaPolicy
    from bigbird_genomics.io.paths import check_outputs

    check_outputs(
        "validate",
        inputs={"FASTA": args.fasta},
        input_dirs={"--data": args.data},
        outputs={"--json": args.json},
    )
    if not args.fasta and not args.data:
        raise UserError("give FASTA files to check, or --data DIR for a tokenized data set")
    for path in args.data:
        print(check_data(path))
    if not args.fasta:
        return 0
    policy = FastaPolicy(
        ambiguity="to_n" if args.ambiguity == "to-n" else "error",
        keep_soft_mask=True,
        allow_duplicate_ids=args.allow_duplicate_ids,
    )
    columns = ["records", "bases", "min_length", "max_length", "n_bases", "ambiguous_to_n"]
    columns.append("soft_masked")
    print("\t".join(["file", *columns]))
    summaries = []
    for path in args.fasta:
        summary = summarise(path, policy)
        summaries.append(summary)
        print("\t".join([str(path), *(str(summary[c]) for c in columns)]))
    if args.json is not None:
        from bigbird_genomics.io.atomic import atomic_path

        with atomic_path(args.json) as temp:
            temp.write_text(json.dumps({"files": summaries, "status": "ok"}, indent=2) + "\n")
    return 0
