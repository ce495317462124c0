"""--profile / profile=True: each phase's time and memory on stderr, nothing without it."""

from __future__ import annotations

import io
import json
import re

import pytest
from click.testing import CliRunner

import poncho_replay
from poncho_replay.cli import cli
from poncho_replay.profiling import phase, profiling

LINE = re.compile(
    r"^\[profile\] +(?P<name>.+?) +(?P<s>\d+\.\d\d) s +cpu +(?P<cpu>\d+\.\d\d) s +rss +\d+ MiB +peak +(?P<peak>\d+) MiB$"
)


def _phases(text: str) -> list[str]:
    return [m["name"].strip() for line in text.splitlines() if (m := LINE.match(line))]


def test_load_and_parity_print_their_phases(capsys: pytest.CaptureFixture[str]) -> None:
    ws = poncho_replay.open()
    ws.load(poncho_replay.sample_db(), profile=True)
    ws.parity(profile=True, shards=2)
    err = capsys.readouterr().err
    names = _phases(err)
    for expected in ("read and stage rows", "check entries", "insert entries", "load sqlite",
                     "shard 1/2", "shard 2/2", "compare and find causes", "parity"):  # fmt: skip
        assert expected in names, (expected, err)
    assert names[-1] == "parity"  # the whole is reported last, after its parts


def test_nothing_is_printed_without_profile(capsys: pytest.CaptureFixture[str]) -> None:
    ws = poncho_replay.open()
    ws.load(poncho_replay.sample_db())
    ws.parity()
    assert "[profile]" not in capsys.readouterr().err


def test_phases_are_timed_and_nested() -> None:
    with profiling(stream=io.StringIO()) as timings, phase("outer"), phase("inner"):
        sum(range(100_000))
    assert [t.name for t in timings] == ["  inner", "outer"]
    assert timings[1].seconds >= timings[0].seconds > 0
    assert timings[1].cpu_seconds >= timings[0].cpu_seconds > 0  # a busy loop is CPU time
    assert all(t.peak_rss >= t.rss > 0 for t in timings)


def test_cli_profile_goes_to_stderr_and_leaves_json_intact() -> None:
    result = CliRunner().invoke(cli, ["audit", "--profile", "--json", "--shards", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["conversations_total"] == 16
    assert "shard 2/2" in _phases(result.stderr) and "load sqlite" in _phases(result.stderr)
