"""`bigbird-genomics predict`: a trained checkpoint scores every record of a new FASTA file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bigbird_genomics.commands._arguments import add_device_arguments, positive_int

HELP = (
    "Predict on a new FASTA (plain or gzip): a TSV with one row per record (id, length, max and "
    "mean probability per label) and optionally a bedGraph of per-window probabilities. Records "
    "longer than the window (default: the length the model was trained on) are scanned with "
    "overlapping windows, streaming. Genome tracks: --bigwig (one bigWig per label) and --peaks "
    "(BED of merged windows above --threshold)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, action="append",
        help="trained checkpoint (.ckpt); repeat it to predict with an ensemble (probabilities "
        "averaged)",
    )
    parser.add_argument("--fasta", required=True, help="FASTA to score (.fa, .fa.gz)")
    parser.add_argument("--out", required=True, help="output TSV, one row per record")
    parser.add_argument("--bedgraph", help="also write per-window probabilities here (bedGraph)")
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="windows per forward pass"
    )
    add_device_arguments(parser)
    parser.add_argument(
        "--window-bp",
        type=int,
        help="scan window in bp (default: the length of the model's training examples; for "
        "checkpoints that do not record it, the longest the context holds)",
    )
    parser.add_argument(
        "--overlap-bp",
        type=int,
        help="overlap of consecutive windows in bp (default: half a window)",
    )
    parser.add_argument(
        "--strands",
        choices=("both", "forward"),
        default="both",
        help="both: score each window and its reverse complement and keep the higher "
        "probability (strand-agnostic); forward: the sequence as written only",
    )
    parser.add_argument(
        "--max-n-fraction",
        type=float,
        default=0.5,
        help="windows in which more than this fraction of the k-mers contain N (assembly gaps) "
        "are not scored: no bedGraph interval, left out of the record's max and mean (1 scores "
        "all)",
    )
    parser.add_argument(
        "--bigwig",
        metavar="PREFIX",
        help="also write one bigWig per label, PREFIX.<label>.bw (chromosome sizes from the FASTA)",
    )
    parser.add_argument(
        "--peaks",
        help="also write a BED6 of peaks: per label, consecutive windows with probability >= "
        "--threshold merged (name = label, score = highest probability)",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="probability that calls a peak (0.5)"
    )
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument(
        "--records",
        help="score only these records (comma-separated ids), e.g. chr1,chr2",
    )
    selection.add_argument(
        "--shard",
        metavar="I/N",
        help="score every N-th record from the I-th (0-based), for N jobs over one genome; "
        "`bigbird-genomics gather-predictions` joins their outputs in FASTA order",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: only on a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.inference.scan import (
        CheckpointNotFoundError,
        parse_shard,
        predict_fasta,
        scan_plan,
    )
    from bigbird_genomics.io.paths import check_outputs

    check_outputs(
        "predict",
        inputs={"--checkpoint": args.checkpoint, "--fasta": args.fasta},
        outputs={"--out": args.out, "--bedgraph": args.bedgraph, "--peaks": args.peaks},
    )
    from bigbird_genomics.io.fasta import check_fasta_path

    check_fasta_path(args.fasta)  # before the model loads and the scan plan is printed
    checkpoints = [Path(path) for path in args.checkpoint]
    for checkpoint in checkpoints:
        if not checkpoint.is_file():
            raise CheckpointNotFoundError(
                f"--checkpoint {checkpoint}: no such file; point it at a trained run's "
                "checkpoints/best.ckpt (written by bigbird-genomics-train)"
            )
    from bigbird_genomics.inference.ensemble import load_models  # imports torch: only when needed

    model = load_models(checkpoints, device=args.device, precision=args.precision)
    if args.bigwig:  # one file per label: known once the model is loaded, before any scoring
        from bigbird_genomics.io.bigwig import bigwig_path

        check_outputs(
            "predict",
            inputs={"--checkpoint": args.checkpoint, "--fasta": args.fasta},
            outputs={
                "--out": args.out,
                "--bedgraph": args.bedgraph,
                "--peaks": args.peaks,
                "--bigwig": [bigwig_path(args.bigwig, label) for label in model.label_names],
            },
        )
    shard = parse_shard(args.shard) if args.shard else None
    records = [name for name in args.records.split(",") if name] if args.records else None
    plan = scan_plan(model, args.window_bp, args.overlap_bp)
    print(
        f"predict: windows of {plan.window_bp} bp ({plan.source}), step {plan.step_bp} bp",
        file=sys.stderr,
        flush=True,
    )
    summary = predict_fasta(
        model,
        args.fasta,
        args.out,
        bedgraph=args.bedgraph,
        window_bp=args.window_bp,
        overlap_bp=args.overlap_bp,
        batch_size=args.batch_size,
        progress=args.progress,
        strands=args.strands,
        max_n_fraction=args.max_n_fraction,
        bigwig=args.bigwig,
        peaks=args.peaks,
        threshold=args.threshold,
        records=records,
        shard=shard,
    )
    plan = summary.plan
    print(
        f"predicted {summary.num_records} records, {summary.num_bases} bp, {summary.num_windows} "
        f"windows of {plan.window_bp} bp (overlap {plan.overlap_bp} bp), labels "
        f"{', '.join(summary.label_names)} -> {args.out}"
        + (f", {args.bedgraph}" if args.bedgraph else "")
        + "".join(f", {path}" for path in summary.bigwigs)
        + (f", {args.peaks} ({summary.num_peaks} peaks)" if args.peaks else "")
    )
    if summary.num_unscored_windows:
        print(
            f"{summary.num_unscored_windows} window(s) not scored: more than "
            f"{args.max_n_fraction:g} of their k-mers contain N (--max-n-fraction), or shorter "
            "than one k-mer"
        )
    return 0
