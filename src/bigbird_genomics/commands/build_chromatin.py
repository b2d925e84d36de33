"""`bigbird-genomics build-chromatin`: genome + peak sample sheet (or two FASTAs) -> data set."""

from __future__ import annotations

import argparse

HELP = (
    "Build a chromatin data set. Either a genome FASTA + a sample sheet of peak files "
    "(columns profile, path, group; BED or narrowPeak, gz ok) -> 200 bp bins labelled per "
    "profile, windows of bin +- flank, sampled negatives and chromosome hold-out splits; or two "
    "FASTA files (--positive-fasta, --negative-fasta) -> a two-class labelled FASTA."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--genome", help="reference genome FASTA (plain or gzip)")
    parser.add_argument("--samples", help="sample sheet TSV/CSV: profile, path[, group]")
    parser.add_argument("--blacklist", help="BED of regions no window may touch (optional)")
    parser.add_argument(
        "--bin-bp",
        type=int,
        default=200,
        help="bin size; each bin is one example with a label per profile"
    )
    parser.add_argument("--flank-bp", type=int, default=400, help="context on each side of a bin")
    parser.add_argument(
        "--min-overlap", type=float, default=0.5, help="fraction of a bin a peak must cover"
    )
    parser.add_argument(
        "--negative-ratio", type=float, default=1.0, help="unlabelled bins per labelled bin"
    )
    parser.add_argument("--val-chroms", default="chr7", help="comma-separated")
    parser.add_argument("--test-chroms", default="chr8,chr9", help="comma-separated")
    parser.add_argument(
        "--max-n-fraction", type=float, default=0.0,
        help="windows (bin + flanks) with more N bases than this fraction are dropped",
    )
    parser.add_argument("--positive-fasta", help="two-class mode: class 1 sequences")
    parser.add_argument("--negative-fasta", help="two-class mode: class 0 sequences")
    parser.add_argument("--split-fractions", default="0.8,0.1,0.1", help="two-class mode")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the unlabelled-bin sampling (two-class mode: of the split)",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="output directory: chromatin.fa (+ chromatin_labels.tsv, chromatin_profiles.tsv)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bigbird_genomics.builders.chromatin import (
        ChromatinSettings,
        build_chromatin_dataset,
        build_two_class_dataset,
    )
    from bigbird_genomics.builders.splits import parse_fractions
    from bigbird_genomics.errors import UserError
    from bigbird_genomics.io.paths import check_outputs
    from bigbird_genomics.io.peaks import read_sample_sheet

    out_dir = Path(args.out)
    check_outputs(
        "build-chromatin",
        inputs={"--genome": args.genome, "--samples": args.samples, "--blacklist": args.blacklist,
                "--positive-fasta": args.positive_fasta, "--negative-fasta": args.negative_fasta},
        outputs={"--out": [out_dir / name for name in ("chromatin.fa", "chromatin_labels.tsv",
                                                       "chromatin_profiles.tsv")]},
        output_dirs={"--out": out_dir},
    )  # fmt: skip
    two_class = bool(args.positive_fasta or args.negative_fasta)
    if two_class:
        if not (args.positive_fasta and args.negative_fasta) or args.genome or args.samples:
            raise UserError(
                "two-class mode needs both --positive-fasta and --negative-fasta, and no "
                "--genome/--samples"
            )
        try:
            fractions = parse_fractions(args.split_fractions)
        except ValueError as error:
            raise UserError(f"--split-fractions: {error}") from None
        out = Path(args.out) / "chromatin.fa"
        counts = build_two_class_dataset(
            args.positive_fasta, args.negative_fasta, out, fractions=fractions, seed=args.seed
        )
        print("\t".join(f"{name}={count}" for name, count in counts.items()))
        print(f"wrote {out}")
        return 0
    if not (args.genome and args.samples):
        raise UserError("give --genome and --samples, or --positive-fasta and --negative-fasta")
    settings = ChromatinSettings(
        bin_bp=args.bin_bp,
        flank_bp=args.flank_bp,
        min_overlap_fraction=args.min_overlap,
        negative_ratio=args.negative_ratio,
        val_chroms=tuple(c for c in args.val_chroms.split(",") if c),
        test_chroms=tuple(c for c in args.test_chroms.split(",") if c),
        max_n_fraction=args.max_n_fraction,
        seed=args.seed,
    )
    if settings.bin_bp < 1 or settings.flank_bp < 0 or not 0 < settings.min_overlap_fraction <= 1:
        raise UserError("--bin-bp must be >= 1, --flank-bp >= 0 and --min-overlap in (0, 1]")
    profiles = read_sample_sheet(args.samples)
    check_outputs(
        "build-chromatin",
        inputs={f"peak file of {p.name}": p.path for p in profiles},
        outputs={"--out": [out_dir / "chromatin_labels.tsv", out_dir / "chromatin_profiles.tsv"]},
    )
    paths, summary = build_chromatin_dataset(
        args.genome, profiles, args.out, settings, args.blacklist
    )
    print("\t".join(f"{split}={count}" for split, count in sorted(summary.windows.items())))
    print("\t".join(f"{name}={count}" for name, count in summary.positives_per_profile.items()))
    for path in paths.values():
        print(f"wrote {path}")
    return 0
