"""Every option of every `bigbird-genomics` command has help, and states its default once."""

from __future__ import annotations

import argparse

import pytest

from bigbird_genomics.cli import COMMANDS, HelpFormatter, command_parser


def option_help(parser: argparse.ArgumentParser) -> dict[str, tuple[str, str]]:
    """Each option's own help and its help as `--help` prints it (the default text added)."""
    formatter = HelpFormatter(parser.prog)
    shown = {}
    for action in parser._actions:  # argparse has no public list of a parser's actions
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[0] if action.option_strings else action.dest
        shown[name] = (action.help or "", formatter._expand_help(action))
    return shown


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help_that_states_its_default_once(name: str) -> None:
    _, parser = command_parser(name)
    shown = option_help(parser)
    assert shown, name
    for option, (own, printed) in shown.items():
        assert own.strip(), f"{name} {option}: no help"
        assert printed.lower().count("default") <= 1, f"{name} {option}: {printed!r}"


def test_defaults_are_shown_where_the_help_does_not_say_them() -> None:
    _, parser = command_parser("predict")
    shown = {option: printed for option, (_, printed) in option_help(parser).items()}
    assert shown["--batch-size"].endswith("(default: 32)")
    assert "(default: None)" not in shown["--window-bp"]  # "the longest the context holds"
    assert "default" not in shown["--checkpoint"]  # required: no default to show
    help_text = parser.format_help()
    assert help_text.count("default: None") == 0
