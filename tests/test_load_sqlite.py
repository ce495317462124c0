"""The SQLite reader on the real 0.58 sample and on files in every harness layout."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

import poncho_replay
from poncho_replay.errors import SourceError
from poncho_replay.harness_layout import create_sqlite, write_sqlite
from poncho_replay.models import parse_entry
from tests.load_data import SAMPLE_DB, T0, conversation, log, sha256

OLD_NOTES = "61ed8647-29e6-459b-ae2a-a29d0b9600cd"  # the sample's blob-only conversation


@pytest.fixture()
def sample(tmp_path: Path) -> Path:
    target = tmp_path / "poncho-sample.db"
    shutil.copy(SAMPLE_DB, target)
    return target


def make_db(path: Path, *, version: int = 8, heavy_in_data: bool | None = None) -> Path:
    create_sqlite(path, version=version)
    convs = [conversation("c1"), conversation("c2", owner="owner-b", tenant="acme")]
    write_sqlite(
        path,
        convs,
        {"c1": log("c1"), "c2": log("c2")} if version >= 8 else None,
        heavy_in_data=heavy_in_data,
    )
    return path


def test_sample_counts_match_its_readme(sample: Path) -> None:
    ws = poncho_replay.open()
    summary = ws.load(sample)
    assert summary.read == {"conversations": 16, "conversation_entries": 145}
    assert summary.loaded == summary.read
    assert summary.quarantined == {}
    by_type = dict(
        ws.con.execute("SELECT type, count(*) FROM conversation_entries GROUP BY type").fetchall()
    )
    assert by_type == {
        "user_message": 30, "harness_message": 76, "assistant_message": 30, "assistant_amendment": 1,
        "compaction": 3, "subagent_result": 3, "callback_started": 2,
    }  # fmt: skip
    assert ws.con.execute(
        "SELECT count(*) FROM conversations WHERE tenant_id = 'northwind'"
    ).fetchone() == (1,)
    # "Old notes" is blob only: the one no_entries anomaly, nothing else.
    assert ws.anomalies[["kind", "conversation_id"]].values.tolist() == [["no_entries", OLD_NOTES]]


def test_sample_file_bytes_unchanged(sample: Path) -> None:
    before = sha256(sample)
    poncho_replay.open().load(sample)
    assert sha256(sample) == before
    assert sorted(p.name for p in sample.parent.iterdir()) == ["poncho-sample.db"]


def test_sample_entries_are_payload_plus_columns(sample: Path) -> None:
    ws = poncho_replay.open()
    ws.load(sample)
    rows = ws.con.execute(
        "SELECT payload, id, seq, epoch_ms(created_at) FROM conversation_entries "
        "WHERE id = 'ea8fdcbe-736c-4c53-b0aa-070b131166e8'"
    ).fetchone()
    entry = {**json.loads(rows[0]), "id": rows[1], "seq": rows[2], "createdAt": rows[3]}
    parsed = parse_entry(entry)
    assert parsed.seq == 1 and parsed.type == "user_message"
    # 2026-03-04T13:30:46.674Z in the file.
    assert rows[3] == int(
        datetime.fromisoformat("2026-03-04T13:30:46.674+00:00").timestamp() * 1000
    )


def test_split_layout_loads_heavy_columns(tmp_path: Path) -> None:
    ws = poncho_replay.open()
    ws.load(make_db(tmp_path / "v8.db"))
    data, hm, tra = ws.con.execute(
        "SELECT data, harness_messages, tool_result_archive FROM conversations WHERE id = 'c1'"
    ).fetchone()
    assert "_harnessMessages" not in json.loads(data)
    assert json.loads(hm) == conversation("c1")["_harnessMessages"]
    assert json.loads(tra) == {"call-1": {"output": "x"}}


@pytest.mark.parametrize("version", [2, 7])
def test_heavy_fields_still_in_data_are_moved(tmp_path: Path, version: int) -> None:
    db = make_db(tmp_path / f"v{version}.db", version=version, heavy_in_data=True)
    raw = json.loads(
        sqlite3.connect(db).execute("SELECT data FROM conversations WHERE id='c1'").fetchone()[0]
    )
    assert "_harnessMessages" in raw  # the pre-migration-3 layout really is on disk
    ws = poncho_replay.open()
    summary = ws.load(db)
    data, hm, tra, cm = ws.con.execute(
        "SELECT data, harness_messages, tool_result_archive, continuation_messages FROM conversations WHERE id='c1'"
    ).fetchone()
    assert json.loads(hm) == conversation("c1")["_harnessMessages"]
    assert json.loads(tra) == {"call-1": {"output": "x"}}
    assert cm is None
    assert set(json.loads(data)) == set(raw) - {"_harnessMessages", "_toolResultArchive"}
    # No entries table before 0.56: every conversation is blob only.
    assert "conversation_entries" not in summary.read or summary.read["conversation_entries"] == 0
    assert summary.anomalies == {"no_entries": 2}


def test_timestamps_iso_and_sqlite_default_form(tmp_path: Path) -> None:
    db = make_db(tmp_path / "ts.db")
    with sqlite3.connect(db) as con:
        con.execute("UPDATE conversations SET created_at = '2026-03-04 13:30:01' WHERE id = 'c2'")
    ws = poncho_replay.open()
    ws.load(db)
    got = dict(ws.con.execute("SELECT id, epoch_ms(created_at) FROM conversations").fetchall())
    assert got == {"c1": T0, "c2": T0 - 558}


def test_agent_filter_and_agent_id_kept(tmp_path: Path) -> None:
    db = tmp_path / "agents.db"
    create_sqlite(db)
    write_sqlite(db, [conversation("a1")], {"a1": log("a1")}, agent_id="agent-a")
    write_sqlite(db, [conversation("b1")], {"b1": log("b1")}, agent_id="agent-b")
    ws = poncho_replay.open()
    ws.load(db)
    assert dict(ws.con.execute("SELECT id, agent_id FROM conversations").fetchall()) == {
        "a1": "agent-a",
        "b1": "agent-b",
    }
    only_b = poncho_replay.open()
    summary = only_b.load(db, agent_id="agent-b")
    assert summary.loaded == {"conversations": 1, "conversation_entries": 4}
    # Entry rows carry the owner id, so the filter goes through the conversation id.
    assert only_b.con.execute(
        "SELECT DISTINCT conversation_id, agent_id FROM conversation_entries"
    ).fetchall() == [("b1", "owner-a")]


def test_reload_replaces_and_sources_stay_apart(tmp_path: Path) -> None:
    db = make_db(tmp_path / "r.db")
    ws = poncho_replay.open()
    ws.load(db)
    ws.load(db)
    ws.load(db, name="copy")
    counts = dict(
        ws.con.execute(
            "SELECT source, count(*) FROM conversation_entries GROUP BY source"
        ).fetchall()
    )
    assert counts == {str(db.resolve()): 8, "copy": 8}
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM conversation_entries WHERE conversation_id = 'c2'")
    assert ws.load(db).loaded["conversation_entries"] == 4
    assert ws.con.execute(
        "SELECT count(*) FROM conversation_entries WHERE source = 'copy'"
    ).fetchone() == (8,)


def test_not_a_harness_file(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(SourceError, match="no conversations table"):
        poncho_replay.open().load(other)
    with pytest.raises(SourceError, match="no such source"):
        poncho_replay.open().load(tmp_path / "missing.db")


def test_summary_renders(sample: Path) -> None:
    summary = poncho_replay.open().load(sample, progress=False)
    text = str(summary)
    assert "loaded conversation_entries" in text and "145" in text
    html = summary._repr_html_()
    assert "<table>" in html and "no_entries" in html
    assert summary.to_dict()["anomalies"] == {"no_entries": 1}


def test_a_failed_read_leaves_the_workspace_as_it_was(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging runs in one transaction: a reader failing after some batches rolls it back, none stays open."""
    import poncho_replay.sources.sqlite as sqlite_source

    ws = poncho_replay.open()
    ws.load(sample, name="first")
    stream = sqlite_source._stream

    def fail_after_entries(con, sql, params, stager, table, advance) -> None:
        stream(con, sql, params, stager, table, advance)
        if table == "conversation_entries":
            raise RuntimeError("disk gone")

    monkeypatch.setattr(sqlite_source, "_stream", fail_after_entries)
    with pytest.raises(SourceError, match="disk gone"):
        ws.load(sample, name="second")
    monkeypatch.setattr(sqlite_source, "_stream", stream)
    ws.con.execute("BEGIN TRANSACTION")  # raises if the staging transaction were still open
    ws.con.execute("ROLLBACK")
    assert ws.load(sample, name="third").loaded["conversation_entries"] == 145
    sources = ws.con.execute("SELECT DISTINCT source FROM conversations ORDER BY 1").fetchall()
    assert sources == [("first",), ("third",)]
