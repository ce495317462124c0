"""The Inspect AI dataset: written by the kit, read back by inspect_ai's own reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("inspect_ai")

from inspect_ai.dataset import json_dataset

import poncho_replay
from poncho_replay.inspect_dataset import write_inspect_dataset
from poncho_replay.requests import to_inspect_messages


def _projection(message: object) -> dict:
    """What the dataset carries per message: role, content, tool calls and ids (Inspect adds its own ids)."""
    data = message.model_dump(exclude_none=True)  # type: ignore[attr-defined]
    content = data["content"]
    if isinstance(content, list):
        content = [{k: v for k, v in part.items() if k in ("type", "text", "image", "document")} for part in content]
    calls = [{"id": c["id"], "function": c["function"], "arguments": c["arguments"]} for c in data.get("tool_calls") or []]
    return {"role": data["role"], "content": content, "tool_calls": calls, "tool_call_id": data.get("tool_call_id")}


def test_inspect_reads_back_the_same_messages(tmp_path: Path) -> None:
    ws = poncho_replay.open()
    ws.load(str(poncho_replay.sample_db()))
    path = ws.to_inspect_dataset(tmp_path / "turns.jsonl", "0.58", system="You are poncho.")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]  # not splitlines(): U+2028 stays raw in JSON
    dataset = json_dataset(str(path))
    assert len(dataset) == len(records) > 0
    saw_tool_call = False
    for record, sample in zip(records, dataset):
        assert sample.target == record["target"]
        assert sample.metadata["conversation_id"] == record["metadata"]["conversation_id"]
        assert sample.metadata["policy"] == "0.58"
        assert sample.input[0].role == "system" and sample.input[0].content == "You are poncho."
        expected = [
            {
                "role": m["role"],
                "content": m["content"],
                "tool_calls": [{k: c[k] for k in ("id", "function", "arguments")} for c in m.get("tool_calls", [])],
                "tool_call_id": m.get("tool_call_id"),
            }
            for m in record["input"]
        ]
        assert [_projection(m) for m in sample.input] == expected
        saw_tool_call = saw_tool_call or any(m["tool_calls"] for m in expected)
    assert saw_tool_call or any(r["metadata"]["reply_tool_calls"] for r in records)
    diverged = [r for r in records if r["metadata"]["causes"]]
    assert diverged  # the sample's 0.58 audit diverges somewhere: its causes travel with the sample


def test_lone_surrogates_are_escaped_like_json_stringify(tmp_path: Path) -> None:
    messages = to_inspect_messages([{"role": "user", "content": "half \ud83d emoji"}])
    path = write_inspect_dataset([{"id": "x", "input": messages, "target": "\ud83d"}], tmp_path / "s.jsonl")
    text = path.read_text(encoding="utf-8")
    assert "\\ud83d" in text
    assert json.loads(text)["input"][0]["content"] == "half \ud83d emoji"


def test_cli_export_inspect(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from poncho_replay.cli import cli

    out = tmp_path / "turns.jsonl"
    result = CliRunner().invoke(cli, ["export", "--format", "inspect", "--policy", "blob", str(out)])
    assert result.exit_code == 0, result.output
    assert len(json_dataset(str(out))) > 0
    again = CliRunner().invoke(cli, ["export", "--format", "inspect", str(out)])
    assert again.exit_code == 2  # data is never replaced without --force
