"""`bigbird-genomics extract`: cut windows around BED intervals out of a genome FASTA."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "Cut a window around every BED interval out of a genome FASTA (plain or bgzip, indexed "
    "with a .fai that is built if missing; plain gzip with --decompress-to) and write them as "
    "FASTA. Flanks are strand-aware (upstream is 5' of the interval on its strand) and '-' "
    "intervals are reverse-complemented. Windows running off a chromosome end are padded with "
    "N or dropped."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--genome", required=True, type=Path, help="genome FASTA")
    parser.add_argument(
        "--decompress-to",
        type=Path,
        help="for a plain-gzip genome (no random access): write the decompressed FASTA here "
        "once and read that; reused while newer than --genome",
    )
    parser.add_argument("--bed", required=True, type=Path, help="intervals (BED3 to BED6)")
    parser.add_argument("--out", required=True, type=Path, help="FASTA to write (.gz: gzip)")
    parser.add_argument("--flank-bp", type=int, default=0, help="bases added on both sides")
    parser.add_argument(
        "--upstream-bp", type=int, default=None, help="bases added 5' (overrides --flank-bp)"
    )
    parser.add_argument(
        "--downstream-bp", type=int, default=None, help="bases added 3' (overrides --flank-bp)"
    )
    parser.add_argument(
        "--off-chrom",
        choices=("pad", "drop"),
        default="pad",
        help="windows past a chromosome end: pad with N, or leave them out",
    )


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.io.fasta import write_fasta
    from bigbird_genomics.io.intervals import (
        IntervalError,
        extract_intervals,
        open_genome,
        read_bed,
    )
    from bigbird_genomics.io.paths import check_outputs

    check_outputs(
        "extract", inputs={"--genome": args.genome, "--bed": args.bed}, outputs={"--out": args.out}
    )
    intervals = read_bed(args.bed)
    first_line: dict[str, int] = {}
    for interval in intervals:
        if interval.label in first_line:
            raise IntervalError(
                f"{args.bed}: line {interval.line}: name '{interval.label}' also on line "
                f"{first_line[interval.label]}; FASTA record ids must be unique, so make the "
                "BED names (column 4) unique or set them to '.'"
            )
        first_line[interval.label] = interval.line
    windows = extract_intervals(
        open_genome(args.genome, decompress_to=args.decompress_to),
        intervals,
        flank_bp=args.flank_bp,
        upstream_bp=args.upstream_bp,
        downstream_bp=args.downstream_bp,
        off_chrom=args.off_chrom,
        bed_path=args.bed,
    )
    written = write_fasta(args.out, ((w.header(), w.sequence) for w in windows))
    dropped = len(intervals) - written
    print(f"wrote {written} windows to {args.out}; dropped {dropped} off-chromosome windows")
    return 0
