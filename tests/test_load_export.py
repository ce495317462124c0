"""JSONL and Parquet exports: export -> load round-trips every row; broken lines are quarantined."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import poncho_replay
from poncho_replay.errors import BadEntryError, SourceError
from tests.load_data import SAMPLE_DB

COLUMNS = {
    "conversations": "id, agent_id, tenant_id, owner_id, title, data::VARCHAR, message_count, created_at, updated_at, "
    "tool_result_archive::VARCHAR, harness_messages::VARCHAR, continuation_messages::VARCHAR, "
    "parent_conversation_id, has_pending_approvals, channel_meta::VARCHAR, parent_message_id",
    "conversation_entries": "seq, id, agent_id, tenant_id, conversation_id, type, payload::VARCHAR, created_at, dup, ordinal",
}


def rows(ws: poncho_replay.Workspace, table: str) -> list[tuple]:
    return ws.con.execute(f"SELECT {COLUMNS[table]} FROM {table} ORDER BY id").fetchall()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_round_trip_is_exact(tmp_path: Path, fmt: str) -> None:
    first = poncho_replay.open()
    first.load(SAMPLE_DB)
    out = first.export(tmp_path / "export", format=fmt)
    assert sorted(p.name for p in out.iterdir()) == [f"conversations.{fmt}", f"entries.{fmt}"]
    second = poncho_replay.open()
    summary = second.load(out)
    assert summary.kind == fmt and summary.quarantined == {}
    for table in COLUMNS:
        assert rows(second, table) == rows(first, table)
        assert len(rows(second, table)) == {"conversations": 16, "conversation_entries": 145}[table]


def test_jsonl_format_is_documented_shape(tmp_path: Path) -> None:
    ws = poncho_replay.open()
    ws.load(SAMPLE_DB)
    out = ws.export(tmp_path / "e")
    line = json.loads((out / "entries.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(line) == {
        "seq",
        "id",
        "agent_id",
        "tenant_id",
        "conversation_id",
        "type",
        "payload",
        "created_at",
        "ordinal",
    }
    assert isinstance(line["payload"], dict) and line["payload"]["type"] == line["type"]
    assert line["created_at"].endswith("Z") and "T" in line["created_at"]


def test_round_trip_keeps_duplicates_and_order(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    entry = {"seq": 1, "id": "a", "agent_id": "o", "tenant_id": "__default__", "conversation_id": "c",
             "type": "callback_started", "payload": {"id": "a", "type": "callback_started", "consumedSeqs": []},
             "created_at": "2026-03-04T13:30:01.558Z"}  # fmt: skip
    lines = [entry, {**entry, "id": "b", "payload": {**entry["payload"], "id": "b"}}]
    (src / "entries.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8"
    )
    ws = poncho_replay.open()
    assert ws.load(src).anomalies == {"duplicate_seq": 1, "orphan_entries": 1}
    again = poncho_replay.open()
    again.load(ws.export(tmp_path / "out"))
    assert rows(again, "conversation_entries") == rows(ws, "conversation_entries")


def test_broken_jsonl_lines_are_quarantined(tmp_path: Path) -> None:
    ws = poncho_replay.open()
    ws.load(SAMPLE_DB)
    out = ws.export(tmp_path / "e")
    path = out / "entries.jsonl"
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    lines[3] = '{"seq": 4, "id": "x", "payload": {oops'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines.insert(6, "")  # a blank line counts as a line of the file
    lines[9] = json.dumps({**json.loads(lines[9]), "type": "no_such_type"})
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fresh = poncho_replay.open()
    summary = fresh.load(out)
    assert summary.quarantined == {"invalid_json": 1, "type_mismatch": 1}
    assert summary.loaded["conversation_entries"] == 143
    bad = {r["row_key"]: r for r in fresh.quarantine.to_dict("records")}
    assert set(bad) == {"line 4", "line 10"}
    # A line that is not JSON keeps its own text; one that is keeps its columns.
    assert bad["line 4"]["raw"] == '{"seq": 4, "id": "x", "payload": {oops'
    assert json.loads(bad["line 10"]["raw"])["type"] == "no_such_type"
    with pytest.raises(BadEntryError, match=r"entries\.jsonl, line 4\)"):
        poncho_replay.open().load(out, strict=True)


def test_bad_parquet_rows_are_named_by_row_number(tmp_path: Path) -> None:
    ws = poncho_replay.open()
    ws.load(SAMPLE_DB)
    out = ws.export(tmp_path / "p", format="parquet")
    rows = pq.read_table(out / "entries.parquet").to_pylist()
    rows[6]["type"] = "no_such_type"
    pq.write_table(pa.Table.from_pylist(rows), out / "entries.parquet")
    fresh = poncho_replay.open()
    fresh.load(out)
    (row,) = fresh.quarantine.to_dict("records")
    assert row["row_key"] == "row 7" and row["reason"] == "type_mismatch"
    assert json.loads(row["raw"])["id"] == rows[6]["id"]
    with pytest.raises(BadEntryError, match=r"entries\.parquet, row 7\)"):
        poncho_replay.open().load(out, strict=True)


def test_export_needs_one_source(tmp_path: Path) -> None:
    ws = poncho_replay.open()
    ws.load(SAMPLE_DB)
    ws.load(SAMPLE_DB, name="again")
    with pytest.raises(SourceError, match="pick one"):
        ws.export(tmp_path / "x")
    assert (ws.export(tmp_path / "x", source="again") / "entries.jsonl").is_file()
