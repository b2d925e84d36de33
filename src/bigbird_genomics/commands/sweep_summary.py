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
    from bigbird_genomics.io.run_dir import FAILED_RUN_FILE
    from bigbird_genomics.reporting.sweep_summary import write_summary

    # the files read from each run (a summary may be written beside the runs, or among them)
    read = [
        run / name
        for given in args.runs
        for run in (given, *sorted(p for p in given.glob("*") if p.is_dir()))
        for name in ("metrics.json", "config.yaml", FAILED_RUN_FILE)
        if (run / name).exists()
    ]
    check_outputs(
        "sweep-summary",
        inputs={"--runs": read},
        outputs={"--out-tsv": args.out_tsv, "--out-png": args.out_png},
    )
    rows = write_summary(args.runs, args.out_tsv, args.out_png)
    print(f"summarised {len(rows)} runs into {args.out_tsv}")
    return 0
