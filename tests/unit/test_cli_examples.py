"""Every example that ``--help`` shows is a command line the parser takes as written, and
every command has examples."""

from __future__ import annotations

import argparse
import shlex

import pytest

from skypi.cli import build_parser
from skypi.cli_help import EXAMPLES


def _example_lines() -> list[str]:
    lines = []
    for block in EXAMPLES.values():
        for line in block.splitlines()[1:]:
            command = line.strip().split("  ")[0]  # the text after two spaces is a comment
            if "skypi " in command and not command.startswith("Each command"):
                lines.append(command[command.index("skypi ") :])
    return lines


@pytest.mark.parametrize("line", _example_lines())
def test_an_example_parses_as_written(line: str) -> None:
    build_parser().parse_args(shlex.split(line)[1:])


def _commands(parser: argparse.ArgumentParser, name: str = "skypi") -> list[str]:
    found = [name]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                deeper = command if name == "skypi" else f"{name} {command}"
                if deeper.count(" ") < 1 or deeper.startswith("token"):
                    found += _commands(sub, deeper)
    return found


def test_every_command_has_examples() -> None:
    missing = [c for c in _commands(build_parser()) if c not in EXAMPLES]
    assert missing == []
