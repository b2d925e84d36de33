"""`bigbird-genomics ism`: in-silico saturation mutagenesis of FASTA records or a genome region."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bigbird_genomics.commands._arguments import add_device_arguments

HELP = (
    "In-silico saturation mutagenesis: every base of each record (a FASTA, or one genome "
    "region) changed to each of the 3 other bases and scored (--method ism), or estimated from "
    "one gradient pass (--method grad). Writes per record <id>.npz (effects [labels, positions, "
    "4] in log-odds, reference sequence) and <id>.png (effect track + sequence logo of the "
    "strongest 30 bp), and summary.tsv, into --out."
)
REGION = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>[\d,]+)-(?P<end>[\d,]+)$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="trained checkpoint (.ckpt)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--fasta", help="records to mutate (.fa, .fa.gz)")
    source.add_argument(
        "--region", help="genome region chrom:start-end (1-based, inclusive, as samtools)"
    )
    parser.add_argument(
        "--genome", help="genome FASTA for --region (plain or bgzip; plain gzip with "
        "--decompress-to)"
    )
    parser.add_argument(
        "--decompress-to", type=Path,
        help="for a plain-gzip --genome (no random access): write the decompressed FASTA here "
        "once and read that; reused while newer than --genome",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--method", choices=("ism", "grad"), default="ism",
                        help="ism: score every mutant; grad: gradient x input estimate")
    parser.add_argument(
        "--max-bases", type=int, default=1000,
        help="mutate at most this many bases per record: the central ones of a longer record",
    )
    parser.add_argument("--max-records", type=int, help="only the first N records of --fasta")
    parser.add_argument(
        "--records", help="only these records of --fasta (comma-separated ids), in FASTA order"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="mutant windows per pass")
    add_device_arguments(parser)
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG per record")
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="show a progress bar (default: only on a terminal)",
    )


def _records(args: argparse.Namespace):
    """(id, sequence, region) of the records to mutate, one at a time; `region` is
    (chrom, 1-based start) for --region, None for FASTA records."""
    from bigbird_genomics.errors import UserError

    if args.region is not None:
        match = REGION.match(args.region)
        if not match:
            raise UserError(
                f"--region {args.region!r} is not chrom:start-end (e.g. chr1:1000-2000)"
            )
        if not args.genome:
            raise UserError("--region needs --genome, the FASTA the region is on")
        from bigbird_genomics.io.intervals import open_genome

        chrom = match["chrom"]
        start, end = int(match["start"].replace(",", "")), int(match["end"].replace(",", ""))
        with open_genome(args.genome, decompress_to=args.decompress_to) as genome:
            if chrom not in list(genome.keys()):
                raise UserError(
                    f"--region {args.region}: {chrom} is not a sequence of {args.genome}"
                )
            length = len(genome[chrom])
            if not 1 <= start <= end <= length:
                raise UserError(
                    f"--region {args.region}: must satisfy 1 <= start <= end <= {length} "
                    f"(the length of {chrom})"
                )
            sequence = str(genome[chrom][start - 1 : end])
        yield args.region, sequence, (chrom, start)
        return
    from bigbird_genomics.io.fasta import read_fasta

    wanted = {name for name in (args.records or "").split(",") if name}
    found: set[str] = set()
    for record in read_fasta(args.fasta):
        if args.max_records is not None and len(found) >= args.max_records:
            return
        if wanted and record.id not in wanted:
            continue
        found.add(record.id)
        yield record.id, record.text, None
    if wanted - found:
        from bigbird_genomics.errors import UserError

        raise UserError(
            f"--records: {', '.join(sorted(wanted - found))} not in {args.fasta}; "
            "give ids as in the FASTA headers (the first word after '>')"
        )


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.errors import UserError
    from bigbird_genomics.inference.scan import CheckpointNotFoundError
    from bigbird_genomics.io.paths import check_outputs

    check_outputs(
        "ism",
        inputs={"--checkpoint": args.checkpoint, "--fasta": args.fasta, "--genome": args.genome},
        outputs={"--out": args.out / "summary.tsv", "--decompress-to": args.decompress_to},
        output_dirs={"--out": args.out},
    )
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise CheckpointNotFoundError(
            f"--checkpoint {checkpoint}: no such file; point it at a trained run's "
            "checkpoints/best.ckpt (written by bigbird-genomics-train)"
        )
    if args.max_records is not None and args.max_records < 1:
        raise UserError(f"--max-records must be at least 1, got {args.max_records}")
    from tqdm import tqdm

    from bigbird_genomics.inference.checkpoint import load_checkpoint
    from bigbird_genomics.inference.ism import (
        mutagenesis,
        save_result,
        summary_columns,
        summary_row,
    )
    from bigbird_genomics.io.paths import safe_name
    from bigbird_genomics.io.writers import write_tsv

    model = load_checkpoint(checkpoint, device=args.device, precision=args.precision)
    if not args.no_plots:
        from bigbird_genomics.reporting.ism_plots import plot_ism
    args.out.mkdir(parents=True, exist_ok=True)
    rows, used = [], set()
    for record_id, sequence, region in tqdm(
        _records(args), unit="record", desc="ism",
        disable=None if args.progress is None else not args.progress,
    ):
        result = mutagenesis(model, record_id, sequence, args.method, args.max_bases,
                             args.batch_size)
        name = safe_name(record_id)
        if name in used:  # ids that differ only in characters a file name cannot hold
            name = f"{name}.{len(rows) + 1}"
        used.add(name)
        save_result(result, args.out / f"{name}.npz")
        png = ""
        if not args.no_plots:
            png = f"{name}.png"
            plot_ism(result.effects[0], result.sequence, args.out / png,
                     offset=result.offset, label=result.label_names[0],
                     title=f"{record_id}: {args.method} ({result.label_names[0]}, p = "
                     f"{result.reference_probability[0]:.3g})")
        rows.append(summary_row(result, png, region))
    if not rows:
        raise UserError(f"--fasta {args.fasta}: no records found, nothing to mutate")
    columns = summary_columns(model.label_names, region=args.region is not None)
    write_tsv(args.out / "summary.tsv", columns, rows)
    print(f"mutated {len(rows)} record(s) with --method {args.method} -> {args.out}")
    return 0
