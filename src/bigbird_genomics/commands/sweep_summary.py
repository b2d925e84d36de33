"""`bigbird-genomics sweep-summary`: compare training runs in a table and a plot."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "Compare training runs (e.g. of a sparsity sweep): one TSV row per run with its attention "
    "settings and val/test metrics, and a bar chart of the main metric."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", nargs="+", required=True, type=Path,
                        help="run directories, or directories holding run directories")
    parser.add_argument("--out-tsv", required=True, type=Path, help="summary table to write")
    parser.add_argument("--out-png", type=Path, default=None, help="bar chart to write")


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.io.paths import check_outputs
    from bigbird_genomics.reporting.sweep_summary import write_summary

    check_outputs(
        "sweep-summary",
        input_dirs={"--runs": args.runs},
        outputs={"--out-tsv": args.out_tsv, "--out-png": args.out_png},
    )
    rows = write_summary(args.runs, args.out_tsv, args.out_png)
    print(f"summarised {len(rows)} runs into {args.out_tsv}")
    return 0
