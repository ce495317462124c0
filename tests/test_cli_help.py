"""Every ``poncho-replay`` command documents itself with an example (STYLE.md, item 8)."""

from __future__ import annotations

import click
import pytest

from poncho_replay.cli import cli

ISSUE_COMMANDS = {"load", "audit", "show", "compaction", "export", "simulate", "demo"}


def test_the_group_has_the_commands_the_issue_asks_for() -> None:
    assert set(cli.commands) == ISSUE_COMMANDS


@pytest.mark.parametrize("name", sorted(ISSUE_COMMANDS))
def test_every_command_has_help_with_an_example_of_itself(name: str) -> None:
    command = cli.commands[name]
    assert command.help, f"{name} has no help text"
    examples = [
        line.strip() for line in command.help.splitlines() if line.strip().startswith("Example:")
    ]
    assert examples, f"{name}'s help has no 'Example:' line"
    assert examples[0].startswith(f"Example: poncho-replay {name}"), examples[0]
    assert command.get_short_help_str(limit=60) and not command.get_short_help_str(
        limit=60
    ).endswith("...")


@pytest.mark.parametrize("name", sorted(ISSUE_COMMANDS))
def test_every_option_is_described(name: str) -> None:
    undocumented = [
        p.name for p in cli.commands[name].params if isinstance(p, click.Option) and not p.help
    ]
    assert undocumented == []


def test_the_group_help_has_an_example_too() -> None:
    assert "Example: poncho-replay demo" in (cli.help or "")


WRITES = {("audit", "html_path"): "replaced", ("compaction", "png"): "replaced", ("demo", "out"): "replaced",
          ("simulate", "force"): "refused", ("export", "force"): "refused"}  # fmt: skip
"""Each option that writes a file, and the word of DESIGN's rule its help must say."""


@pytest.mark.parametrize(("command", "option"), sorted(WRITES))
def test_every_file_writing_option_says_its_overwrite_rule(command: str, option: str) -> None:
    """Outputs for reading are replaced with a note; data is refused unless --force (DESIGN)."""
    params = {p.name: p for p in cli.commands[command].params}
    assert WRITES[(command, option)] in (params[option].help or "")
