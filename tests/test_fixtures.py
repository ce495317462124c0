"""Each committed fixture loads and matches its hand-written expected.json.

``expected.json`` (one per ``fixtures/<class>/``) was written from SPEC §3/§5
by following each scenario's script; this test reads the harness-layout
SQLite file with plain ``sqlite3`` (SPEC §4: entry = payload + seq/createdAt
columns; blob = data + heavy columns) and checks the rebuild and the
harness's parity check against it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from poncho_replay.dualwrite import parity_check
from poncho_replay.models import message_text
from poncho_replay.rebuild import rebuild_conversation

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CLASSES = ["chat", "resume", "compaction", "subagents", "threads", "faults"]
TYPE_CODES = {
    "user_message": "U",
    "harness_message": "H",
    "assistant_message": "A",
    "assistant_amendment": "M",
    "compaction": "C",
    "subagent_result": "S",
    "callback_started": "B",
}


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def _load(db: Path) -> tuple[dict[str, dict], dict[str, list[dict]], dict[str, tuple[str, str]]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    blobs, entries, columns = {}, {}, {}
    for r in con.execute("SELECT * FROM conversations"):
        blob = json.loads(r["data"])
        for col, key in (("harness_messages", "_harnessMessages"), ("tool_result_archive", "_toolResultArchive")):
            if r[col] is not None:
                blob[key] = json.loads(r[col])
        blobs[blob["title"]] = blob
        entries[blob["conversationId"]] = []
    for r in con.execute("SELECT * FROM conversation_entries ORDER BY conversation_id, seq"):
        e = {**json.loads(r["payload"]), "seq": r["seq"], "createdAt": _ms(r["created_at"])}
        entries[r["conversation_id"]].append(e)
        columns[e["id"]] = (r["agent_id"], r["tenant_id"])
    con.close()
    return blobs, entries, columns


def _code(e: dict) -> str:
    return "u" if e["type"] == "user_message" and e.get("hidden") else TYPE_CODES[e["type"]]


def _cases() -> list[tuple[str, str]]:
    return [(c, title) for c in CLASSES for title in json.loads((FIXTURES / c / "expected.json").read_text())]


@pytest.fixture(scope="module")
def loaded() -> dict[str, tuple]:
    return {c: _load(FIXTURES / c / "harness.db") for c in CLASSES}


@pytest.mark.parametrize("cls", CLASSES)
def test_fixture_is_small_and_complete(cls: str, loaded: dict[str, tuple]) -> None:
    db = FIXTURES / cls / "harness.db"
    assert db.stat().st_size < 1_000_000
    assert (FIXTURES / cls / "README.md").exists()
    expected = json.loads((FIXTURES / cls / "expected.json").read_text())
    assert set(loaded[cls][0]) == set(expected)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert [v for (v,) in con.execute("SELECT version FROM _migrations ORDER BY version")] == list(range(1, 9))
    con.close()


@pytest.mark.parametrize(("cls", "title"), _cases())
def test_fixture_matches_expected(cls: str, title: str, loaded: dict[str, tuple]) -> None:
    blobs, entries, columns = loaded[cls]
    want = json.loads((FIXTURES / cls / "expected.json").read_text())[title]
    blob = blobs[title]
    cid = blob["conversationId"]
    log = entries[cid]

    assert " ".join(_code(e) for e in log) == want["types"]
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    for e in log:  # the dual-write stores the owner id as agent_id (SPEC §5)
        assert columns[e["id"]] == (blob["ownerId"], want.get("tenant", "__default__"))

    rebuilt = rebuild_conversation(blob, log, cutover=True)
    llm, display = rebuilt["_harnessMessages"], rebuilt["messages"]
    got = {
        "llm_context_length": len(llm),
        "llm_last_text": message_text(llm[-1]) if llm else None,
        "display_count": len(display),
        "display_last_text": message_text(display[-1]) if display else None,
        "pending_count": len(rebuilt.get("pendingSubagentResults") or []),
    }
    if "display_first_text" in want["rebuilt"]:
        got["display_first_text"] = message_text(display[0])
    assert got == want["rebuilt"]

    result = parity_check(log, blob.get("_harnessMessages"), blob["messages"], conversation_id=cid)
    if want["parity"] == "OK":
        assert result.log_line == f"[entries-parity] {cid} OK"
    else:
        assert len(result.mismatches) == want["parity"]["count"]
        for got_line, want_line in zip(result.mismatches, want["parity"]["mismatches"], strict=True):
            if want_line.endswith("…"):
                assert got_line.startswith(want_line[:-1]), got_line
            else:
                assert got_line == want_line
        assert result.log_line == (
            f"[entries-parity] {cid} MISMATCH ({want['parity']['count']}): {' | '.join(result.mismatches)}"
        )

    for c, spec in zip([e for e in log if e["type"] == "compaction"], want.get("compactions", []), strict=True):
        assert {"firstKeptSeq": c["firstKeptSeq"], "tokensBefore": c.get("tokensBefore")} == spec
    consumed = [e["consumedSeqs"] for e in log if e["type"] == "callback_started"]
    assert consumed == want.get("consumed", consumed)
    if "blob_pending_count" in want:
        assert len(blob.get("pendingSubagentResults") or []) == want["blob_pending_count"]
    if "parent" in want:
        assert blob["parentConversationId"] == blobs[want["parent"]]["conversationId"]
    if want.get("resume_turn_id"):
        assert log[-1]["turnId"] == f"resume-{cid}"


def _table_rows(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table, sorted (the SQLite file's page layout is not compared)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        con.close()


@pytest.mark.parametrize("cls", CLASSES)
def test_fixture_regenerates_with_the_committed_rows(cls: str, tmp_path: Path) -> None:
    """``python -m poncho_replay.simulate.fixtures`` rebuilds exactly what is committed (DESIGN, "Fixtures").

    Seeded ids and a fixed clock: every row of every table is equal, ids and
    timestamps included, ``_migrations.applied_at`` too.
    """
    from poncho_replay.simulate.fixtures import APPLIED_AT, FIXTURE_DB, build_fixture

    build_fixture(cls, tmp_path / cls)
    fresh, committed = _table_rows(tmp_path / cls / FIXTURE_DB), _table_rows(FIXTURES / cls / FIXTURE_DB)
    assert fresh.keys() == committed.keys()
    for table in committed:
        assert fresh[table] == committed[table], f"{cls}: table {table} differs from the committed fixture"
    assert {r[2] for r in committed["_migrations"]} == {APPLIED_AT}
    assert committed["conversations"] and committed["conversation_entries"]
