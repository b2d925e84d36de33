"""`bigbird-genomics demo-data`: write the embedded synthetic demo data set."""

from __future__ import annotations

import argparse

HELP = (
    "Write the embedded synthetic demo data (promoter.fa, chromatin.fa + labels, heldout.fa, "
    "chromosome.fa + BED of planted sites). Seeded: the same seed gives the same files."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bigbird_genomics.builders.demo import DEMO_FILES, write_demo_data
    from bigbird_genomics.io.paths import check_outputs

    check_outputs(
        "demo-data",
        outputs={"--out": [Path(args.out) / name for name in DEMO_FILES]},
        output_dirs={"--out": args.out},
    )
    paths = write_demo_data(args.out, seed=args.seed)
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return 0
