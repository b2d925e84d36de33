"""The `bigbird-genomics` command line: one sub-command per pipeline stage.

Each sub-command lives in `bigbird_genomics/commands/<name>.py` and defines `HELP`,
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when their command
runs, so `bigbird-genomics --help` stays fast (torch is not imported for it).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bigbird_genomics import __version__
from bigbird_genomics.errors import UserError

# command name -> (module, one-line help). A dict, not a plugin registry: the list is the docs.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("validate", "Check FASTA files; summarise records, lengths, Ns, ambiguity codes."),
    "extract": ("extract", "Cut windows around BED intervals out of a genome FASTA."),
    "tokenize": ("tokenize", "Turn a (labelled) FASTA into a tokenized, memory-mapped data set."),
    "pretrain-corpus": (
        "pretrain_corpus", "Cut genome FASTA(s) into an unlabelled masked-LM corpus (both strands)."
    ),
    "demo-data": ("demo_data", "Write the embedded synthetic demo data (planted motifs, seeded)."),
    "evaluate": ("evaluate", "Score a trained checkpoint on a tokenized data set split."),
    "predict": ("predict", "Predict on new FASTA files: per-record TSV and per-window bedGraph."),
    "sweep-summary": ("sweep_summary", "Compare the runs of a sparsity sweep: table and plot."),
    "report": ("report", "Collect metrics, plots and predictions of a workflow run into a report."),
    "build-promoters": ("build_promoters", "Build a promoter data set: positives plus negatives."),
    "build-chromatin": ("build_chromatin", "Build a chromatin data set from genome + peaks."),
    "make-longrange": ("make_longrange", "Generate the synthetic long-range data set."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bigbird-genomics",
        description="BigBird transformers for long DNA: prepare data, evaluate and predict. "
        "Training is `bigbird-genomics-train` (Hydra).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0].startswith("-") or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])  # prints help / version / error and exits
        return 2
    name = argv[0]
    module = importlib.import_module(f"bigbird_genomics.commands.{COMMANDS[name][0]}")
    sub_parser = argparse.ArgumentParser(
        prog=f"bigbird-genomics {name}",
        description=module.HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a path that is a file, no permission, a full disk: no traceback
        print(
            f"error: {error}; check the paths given to bigbird-genomics {name}, their "
            "permissions and the free disk space",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
