"""`bigbird-genomics variant-effect`: score VCF variants with a trained checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bigbird_genomics.commands._arguments import add_device_arguments

HELP = (
    "Score the variants of a VCF (plain or bgzip): for every ALT allele the model scores a "
    "genome window centred on the variant with REF and with ALT (SNVs and indels). Writes a TSV "
    "(p_ref, p_alt, diff, log-odds ratio per label, one row per ALT in VCF order) and optionally "
    "the VCF with BB_* INFO fields. Variants that cannot be scored get a status, not an error."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="trained checkpoint (.ckpt)")
    parser.add_argument(
        "--genome", required=True,
        help="genome FASTA the VCF was called on (plain or bgzip; plain gzip with "
        "--decompress-to)",
    )
    parser.add_argument(
        "--decompress-to",
        help="for a plain-gzip --genome (no random access): write the decompressed FASTA here "
        "once and read that; reused while newer than --genome",
    )
    parser.add_argument("--vcf", required=True, help="variants (.vcf, .vcf.gz, .bcf)")
    parser.add_argument("--out", required=True, help="output TSV, one row per ALT allele")
    parser.add_argument(
        "--vcf-out",
        help="also write the VCF with BB_STATUS, BB_<label>_DIFF and BB_<label>_LOR INFO fields "
        "(bgzipped and tabix-indexed when the name ends in .gz)",
    )
    parser.add_argument(
        "--strict", action="store_true",
        help="stop at the first REF that does not match the genome (default: status ref_mismatch)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="variants per forward pass")
    add_device_arguments(parser)
    parser.add_argument(
        "--window-bp", type=int,
        help="window scored around each variant (default: the length of the model's training "
        "examples when the checkpoint records it, else the checkpoint's context)",
    )
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="show a progress bar (default: only on a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.inference.scan import CheckpointNotFoundError
    from bigbird_genomics.io.paths import check_outputs

    index = f"{args.vcf_out}.tbi" if args.vcf_out and args.vcf_out.endswith(".gz") else None
    check_outputs(
        "variant-effect",
        inputs={"--checkpoint": args.checkpoint, "--genome": args.genome, "--vcf": args.vcf},
        outputs={"--out": args.out, "--vcf-out": [args.vcf_out, index],
                 "--decompress-to": args.decompress_to},
    )

    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise CheckpointNotFoundError(
            f"--checkpoint {checkpoint}: no such file; point it at a trained run's "
            "checkpoints/best.ckpt (written by bigbird-genomics-train)"
        )
    from bigbird_genomics.inference.checkpoint import load_checkpoint
    from bigbird_genomics.inference.variant_effect import OK, score_variants

    model = load_checkpoint(checkpoint, device=args.device, precision=args.precision)
    summary = score_variants(
        model, args.genome, args.vcf, args.out, vcf_out=args.vcf_out, window_bp=args.window_bp,
        batch_size=args.batch_size, strict=args.strict, progress=args.progress,
        decompress_to=args.decompress_to,
    )
    print(
        f"scored {summary.statuses[OK]} of {summary.num_variants} ALT alleles "
        f"({summary.num_records} VCF records) in {summary.window_bp} bp windows, labels "
        f"{', '.join(summary.label_names)} -> {args.out}"
        + (f", {args.vcf_out}" if args.vcf_out else "")
    )
    skipped = {status: count for status, count in summary.statuses.items() if status != OK}
    if skipped:
        print(
            "not scored: " + ", ".join(f"{count} {status}" for status, count in sorted(
                skipped.items())),
            file=sys.stderr,
        )
    return 0
