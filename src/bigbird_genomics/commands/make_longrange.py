"""`bigbird-genomics make-longrange`: the synthetic long-range motif-interaction data set."""

from __future__ import annotations

import argparse

HELP = (
    "Generate long sequences whose label needs both ends: a cluster of --copies copies of "
    "motif A or B within --edge-bp of each end, distractor clusters in the middle so every "
    "record holds two A and two B clusters; label 1 when the end motifs differ (--rule xor) "
    "or for A..B only (--rule and). Background: a Markov chain fitted to --background-fasta "
    "(e.g. a bacterial genome) or, without one, independent bases."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output labelled FASTA")
    parser.add_argument("--num-records", type=int, default=2000, help="records to write")
    parser.add_argument("--length-bp", type=int, default=8192, help="length of every record")
    parser.add_argument("--edge-bp", type=int, default=500, help="motif distance from an end")
    parser.add_argument(
        "--margin-bp", type=int, default=100, help="no motif this close to an end (CNN padding)"
    )
    parser.add_argument("--copies", type=int, default=3, help="motif copies per cluster")
    parser.add_argument(
        "--frame-bp", type=int, default=1, help="motif starts are multiples of this (6: 6-mers)"
    )
    parser.add_argument(
        "--start-a-fraction",
        type=float,
        default=0.5,
        help="xor: how often the start motif is A; 0.5 = pure XOR, 0.2 = the end alone says 80%%",
    )
    parser.add_argument("--background-fasta", help="FASTA to fit the background chain to")
    parser.add_argument("--order", type=int, default=3, help="Markov order of the background")
    parser.add_argument("--gc", type=float, default=0.5, help="GC without --background-fasta")
    parser.add_argument(
        "--rule", choices=("xor", "and"), default="xor",
        help="xor: 1 when the end motifs differ; and: 1 for A at the start and B at the end only",
    )
    parser.add_argument(
        "--split-fractions", default="0.8,0.1,0.1", help="train,val,test fractions of the records"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sequences and labels")


def run(args: argparse.Namespace) -> int:
    from bigbird_genomics.builders.longrange import (
        LongRangeSettings,
        background_chain,
        write_longrange,
    )
    from bigbird_genomics.builders.splits import parse_fractions
    from bigbird_genomics.errors import UserError
    from bigbird_genomics.io.paths import check_outputs

    check_outputs(
        "make-longrange",
        inputs={"--background-fasta": args.background_fasta},
        outputs={"--out": args.out},
    )
    try:
        settings = LongRangeSettings(
            num_records=args.num_records,
            length_bp=args.length_bp,
            edge_bp=args.edge_bp,
            margin_bp=args.margin_bp,
            copies=args.copies,
            frame_bp=args.frame_bp,
            start_a_fraction=args.start_a_fraction,
            fractions=parse_fractions(args.split_fractions),
            rule=args.rule,
            seed=args.seed,
        )
        settings.validate()
        chain = background_chain(args.background_fasta, order=args.order, gc=args.gc)
    except ValueError as error:
        raise UserError(f"make-longrange: {error}") from None
    counts = write_longrange(args.out, chain, settings)
    print("\t".join(f"{name}={count}" for name, count in counts.items()))
    print(f"wrote {args.out}")
    return 0
