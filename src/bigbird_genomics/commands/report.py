"""`bigbird-genomics report`: collect a run's metrics, predictions and sweep into one summary."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "Write summary.md and summary.html (metrics of training runs and evaluations, per profile "
    "group for multi-label models, the runs' loss/ROC/PR plots, prediction counts, sweep table "
    "and chart) and track.png (prediction track along one long record, known sites from a BED "
    "marked) into --out-dir. The HTML embeds its pictures; the markdown links to them."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-dir", required=True, type=Path, help="where the report goes")
    parser.add_argument("--runs", nargs="*", type=Path, default=[], help="training run dirs")
    parser.add_argument(
        "--evaluations", nargs="*", type=Path, default=[], help="metrics.json of `evaluate`"
    )
    parser.add_argument("--predictions", nargs="*", type=Path, default=[], help="TSVs of `predict`")
    parser.add_argument("--track", type=Path, help="bedGraph of `predict --bedgraph` to plot")
    parser.add_argument("--motifs", type=Path, help="BED of known sites to mark under the track")
    parser.add_argument("--record", help="record of the bedGraph to plot (default: the longest)")
    parser.add_argument("--sweep", type=Path, help="table of `sweep-summary`")
    parser.add_argument(
        "--sweep-plot",
        type=Path,
        help="chart of `sweep-summary --out-png` (default: the .png beside the --sweep table)",
    )
    parser.add_argument(
        "--ism-png", type=Path,
        help="ISM picture to show: a PNG, or an `ism` output folder (its strongest record)",
    )
    parser.add_argument(
        "--variant-effects", type=Path, help="TSV of `variant-effect`: top rows by |diff|"
    )
    parser.add_argument("--title", default="bigbird-genomics run report", help="report title")


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.io.paths import check_outputs
    from bigbird_genomics.reporting.report import write_report

    check_outputs(
        "report",
        inputs={"--evaluations": args.evaluations, "--predictions": args.predictions,
                "--track": args.track, "--motifs": args.motifs, "--sweep": args.sweep,
                "--runs": [run / name for run in args.runs
                           for name in ("metrics.json", "config.yaml")]},
        outputs={"--out-dir": [args.out_dir / name
                               for name in ("summary.md", "summary.html", "track.png")]},
        output_dirs={"--out-dir": args.out_dir},
    )  # fmt: skip
    written = write_report(
        args.out_dir,
        runs=args.runs,
        evaluations=args.evaluations,
        predictions=args.predictions,
        track=args.track,
        motifs=args.motifs,
        record=args.record,
        sweep=args.sweep,
        sweep_plot=args.sweep_plot,
        title=args.title,
        ism=args.ism_png,
        variant_effects=args.variant_effects,
    )
    for name, path in written.items():
        print(f"{name}\t{path}")
    return 0
