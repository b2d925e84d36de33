"""`bigbird-genomics build-promoters`: promoter positives plus negatives -> labelled FASTA."""

from __future__ import annotations

import argparse

HELP = (
    "Build a binary promoter data set: positives from a FASTA (e.g. EPDnew) or from a genome + "
    "TSS BED, negatives by the DeePromoter recipe, dinucleotide-matched, or genomic background. "
    "Splits are made before negatives (shared sequence stays in one split). Output: FASTA with "
    "'label=' and 'split=' headers for `bigbird-genomics tokenize`."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("positives (one of)")
    source.add_argument("--positives", help="FASTA of promoter sequences (plain or gzip)")
    source.add_argument("--tss", help="BED of TSSs (strand in column 6); needs --genome")
    parser.add_argument("--genome", help="reference genome FASTA (for --tss or genomic negatives)")
    parser.add_argument(
        "--decompress-to",
        help="--tss with a plain-gzip genome (no random access): write the decompressed FASTA "
        "here once and read that; reused while newer than --genome",
    )
    parser.add_argument("--upstream", type=int, default=249, help="bp upstream of the TSS (--tss)")
    parser.add_argument(
        "--downstream", type=int, default=50, help="bp downstream of the TSS (--tss)"
    )
    parser.add_argument(
        "--negatives",
        choices=("deepromoter", "dinucleotide", "genomic"),
        default="dinucleotide",
        help="deepromoter: 8 of 20 parts kept, rest uniform random (BigBird paper); dinucleotide: "
        "rest from a first-order chain fitted to the promoter (honest default); genomic: "
        "genome windows away from every TSS (needs --genome and --tss)",
    )
    parser.add_argument(
        "--negatives-per-positive", type=int, default=1, help="negatives drawn for each positive"
    )
    parser.add_argument(
        "--train-negatives-per-positive",
        type=int,
        default=None,
        help="more negatives for the training split only (deepromoter, dinucleotide): fresh "
        "draws of the same recipe; val/test keep --negatives-per-positive. Balance the loss "
        "with task.pos_weight=auto",
    )
    parser.add_argument(
        "--min-tss-distance", type=int, default=5000, help="genomic negatives: bp from any TSS"
    )
    parser.add_argument(
        "--split-fractions", default="0.8,0.1,0.1", help="train,val,test fractions of positives"
    )
    parser.add_argument(
        "--shared-k",
        type=int,
        default=50,
        help="FASTA positives sharing an exact k-mer of this length go to one split",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the split and the negatives (same seed, same data)"
    )
    parser.add_argument("--out", required=True, help="output labelled FASTA")


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.builders.promoters import build_promoter_dataset, promoters_from_genome
    from bigbird_genomics.builders.splits import parse_fractions
    from bigbird_genomics.errors import UserError
    from bigbird_genomics.io.fasta import read_fasta
    from bigbird_genomics.io.paths import check_outputs

    check_outputs(
        "build-promoters",
        inputs={"--positives": args.positives, "--tss": args.tss, "--genome": args.genome},
        outputs={"--out": args.out},
    )
    if bool(args.positives) == bool(args.tss):
        raise UserError("give positives either as --positives FASTA or as --tss BED with --genome")
    if (args.tss or args.negatives == "genomic") and not args.genome:
        raise UserError("--tss and --negatives genomic need --genome (a reference FASTA)")
    if args.negatives == "genomic" and not args.tss:
        raise UserError(
            "--negatives genomic needs --tss (a BED of all TSSs) and --genome: positives are "
            "cut from the genome at those TSSs, and background windows are kept away from them"
        )
    if args.negatives_per_positive < 1:
        raise UserError(f"--negatives-per-positive must be >= 1, got {args.negatives_per_positive}")
    train_ratio = args.train_negatives_per_positive
    if train_ratio is not None and train_ratio < args.negatives_per_positive:
        raise UserError(
            f"--train-negatives-per-positive ({train_ratio}) must be at least "
            f"--negatives-per-positive ({args.negatives_per_positive})"
        )
    if train_ratio not in (None, args.negatives_per_positive) and args.negatives == "genomic":
        raise UserError(
            "--train-negatives-per-positive works with --negatives deepromoter or dinucleotide; "
            "for genomic negatives use --negatives-per-positive (every split)"
        )
    try:
        fractions = parse_fractions(args.split_fractions)
    except ValueError as error:
        raise UserError(f"--split-fractions: {error}") from None
    coordinates = None
    if args.tss and args.decompress_to:
        from bigbird_genomics.io.intervals import open_genome

        # every later read of the genome (TSS windows, genomic negatives) uses the plain copy
        args.genome = open_genome(args.genome, decompress_to=args.decompress_to).filename
    if args.tss:
        positives, coordinates = promoters_from_genome(
            args.genome, args.tss, args.upstream, args.downstream
        )
        if not positives:
            raise UserError(
                f"{args.tss}: no TSS window fits inside a chromosome of {args.genome}; do the "
                "chromosome names match the genome's?"
            )
    else:
        positives = [(record.id, record.sequence) for record in read_fasta(args.positives)]
    try:
        counts = build_promoter_dataset(
            positives,
            args.negatives,
            args.out,
            coordinates=coordinates,
            genome=args.genome,
            tss_bed=args.tss,
            min_tss_distance=args.min_tss_distance,
            negatives_per_positive=args.negatives_per_positive,
            train_negatives_per_positive=train_ratio,
            fractions=fractions,
            seed=args.seed,
            shared_k=args.shared_k,
        )
    except ValueError as error:
        raise UserError(str(error)) from None
    for split in ("train", "val", "test"):
        entry = counts.get(split, {"positives": 0, "negatives": 0})
        print(f"{split}\tpositives={entry['positives']}\tnegatives={entry['negatives']}")
    print(f"wrote {args.out}")
    return 0
