"""`bigbird-genomics gather-predictions`: join `predict --shard I/N` outputs into one run's."""

from __future__ import annotations

import argparse

HELP = (
    "Join the TSVs (and bedGraphs) of `predict --shard I/N` jobs, given in shard order 0..N-1, "
    "into the TSV, bedGraph and per-label bigWigs one unsharded `predict` would write."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tsv", nargs="+", required=True, help="every shard's TSV, in order")
    parser.add_argument(
        "--bedgraphs", nargs="+", default=[], help="every shard's bedGraph, in the same order"
    )
    parser.add_argument("--out", required=True, help="joined TSV")
    parser.add_argument("--bedgraph", help="joined bedGraph (needs --bedgraphs)")
    parser.add_argument(
        "--bigwig", metavar="PREFIX", help="one bigWig per label, PREFIX.<label>.bw"
    )


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.inference.gather import gather_predictions, label_names
    from bigbird_genomics.io.bigwig import bigwig_path
    from bigbird_genomics.io.paths import check_outputs

    bigwigs = (
        [bigwig_path(args.bigwig, label) for label in label_names(args.tsv[0])]
        if args.bigwig else []
    )
    check_outputs(
        "gather-predictions",
        inputs={"--tsv": args.tsv, "--bedgraphs": args.bedgraphs},
        outputs={"--out": args.out, "--bedgraph": args.bedgraph, "--bigwig": bigwigs},
    )

    summary = gather_predictions(
        args.tsv, args.out, args.bedgraphs, out_bedgraph=args.bedgraph, bigwig=args.bigwig
    )
    print(
        f"gathered {summary.num_records} records from {summary.num_shards} shards, labels "
        f"{', '.join(summary.label_names)} -> {args.out}"
        + (f", {args.bedgraph}" if args.bedgraph else "")
        + "".join(f", {path}" for path in summary.bigwigs)
    )
    return 0
