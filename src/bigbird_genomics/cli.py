"""The `bigbird-genomics` command line: one sub-command per pipeline stage.

Each sub-command lives in `bigbird_genomics/commands/<name>.py` and defines `HELP`,
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when their command
runs, so `bigbird-genomics --help` stays fast (torch is not imported for it).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from types import ModuleType

from bigbird_genomics import __version__
from bigbird_genomics.errors import UserError

INTERRUPTED = 130  # the shell's exit status for a command stopped by SIGINT (128 + 2)

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
    "variant-effect": ("variant_effect", "Score VCF variants: REF vs ALT window per allele."),
    "ism": ("ism", "In-silico saturation mutagenesis of FASTA records or a genome region."),
    "sweep-summary": ("sweep_summary", "Compare the runs of a sparsity sweep: table and plot."),
    "gather-predictions": (
        "gather_predictions",
        "Join the outputs of predict --shard I/N jobs into one TSV, bedGraph and bigWigs.",
    ),
    "report": ("report", "Collect metrics, plots and predictions of a workflow run into a report."),
    "build-promoters": ("build_promoters", "Build a promoter data set: positives plus negatives."),
    "build-chromatin": ("build_chromatin", "Build a chromatin data set from genome + peaks."),
    "make-longrange": ("make_longrange", "Generate the synthetic long-range data set."),
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to an option's help only where it tells something: not where the
    help already says what the default is, and not for options without one (None, [])."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text.lower() or action.default is None or action.default == []:
            return action.help
        return super()._get_help_string(action)


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


def command_parser(name: str) -> tuple[ModuleType, argparse.ArgumentParser]:
    """The module of command `name` and its argument parser."""
    module = importlib.import_module(f"bigbird_genomics.commands.{COMMANDS[name][0]}")
    parser = argparse.ArgumentParser(
        prog=f"bigbird-genomics {name}", description=module.HELP, formatter_class=HelpFormatter
    )
    module.add_arguments(parser)
    return module, parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0].startswith("-") or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])  # prints help / version / error and exits
        return 2
    name = argv[0]
    module, sub_parser = command_parser(name)
    args = sub_parser.parse_args(argv[1:])
    previous = _terminate_as_interrupt()
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: outputs are atomic, nothing half-written
        print(
            f"bigbird-genomics {name}: interrupted (unfinished outputs were removed)",
            file=sys.stderr,
        )
        return INTERRUPTED
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
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _terminate_as_interrupt() -> signal.Handlers | None:
    """Handle SIGTERM (`kill`, a scheduler's time limit) like Ctrl-C, so the atomic writers'
    cleanup runs; returns the handler to restore (None off the main thread, where Python
    cannot set one)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


if __name__ == "__main__":
    sys.exit(main())
