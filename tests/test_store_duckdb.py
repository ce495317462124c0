"""The DuckDB store: the conformance suite (in memory and on a file), plus the
things only a SQL engine has: columns, reopening, scoping, loaded rows, retries."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from poncho_replay.errors import BadEntryError, StoreError
from poncho_replay.sql import run_script
from poncho_replay.store import MAX_APPEND_ATTEMPTS, DuckDBStore
from poncho_replay.testing.store_contract import T0, FakeClock, StoreContract, harness, msg


class TestDuckDBStoreInMemory(StoreContract):
    def make_store(self, tmp_path: Path, **options: Any) -> DuckDBStore:
        return DuckDBStore(":memory:", agent_id="agent-x", **options)


class TestDuckDBStoreOnFile(StoreContract):
    def make_store(self, tmp_path: Path, **options: Any) -> DuckDBStore:
        return DuckDBStore(tmp_path / "store.duckdb", agent_id="agent-x", **options)


@pytest.fixture
def con() -> Any:
    """A workbench connection with the shared schema, as a loader leaves it."""
    connection = duckdb.connect()
    run_script(connection, "schema.sql")
    yield connection
    connection.close()


def test_file_store_reopens_with_everything(tmp_path: Path) -> None:
    path = tmp_path / "kept.duckdb"
    with DuckDBStore(path, agent_id="a", read_cutover=False, clock=FakeClock()) as store:
        conv = store.create("o", "kept", "northwind").to_dict()
        conv["_toolResultArchive"] = {"tr": {"size": 1}}
        conv["_harnessMessages"] = [msg("user", "h")]
        store.update(conv)
        stored = store.append_entries(
            conv["conversationId"], "o", "northwind", [harness("e1", "user", "h")]
        )
        before = (
            store.get_with_archive(conv["conversationId"]).to_dict(),
            [e.to_dict() for e in stored],
        )
    with DuckDBStore(path, agent_id="a", read_cutover=False) as reopened:
        after = (
            reopened.get_with_archive(conv["conversationId"]).to_dict(),
            [e.to_dict() for e in reopened.read_entries(conv["conversationId"])],
        )
    assert after == before
    assert before[0]["_toolResultArchive"] == {"tr": {"size": 1}}


def test_rows_have_the_harness_layout(con: Any) -> None:
    store = DuckDBStore(
        connection=con, agent_id="agent-x", read_cutover=False, clock=FakeClock(T0 + 1)
    )
    conv = store.create("owner-ines", "t").to_dict()
    cid = conv["conversationId"]
    conv["_harnessMessages"] = [msg("user", "h")]
    conv["_toolResultArchive"] = {}  # {} is truthy in JavaScript: stored
    conv["_continuationMessages"] = []  # [] too
    store.update(conv)
    entry = harness("e1", "user", "héllo ✈️")
    store.append_entries(cid, "owner-ines", None, [entry])

    row = con.execute(
        "SELECT source, agent_id, tenant_id, data, tool_result_archive, harness_messages,"
        " continuation_messages, created_at FROM conversations"
    ).fetchone()
    assert row[:3] == ("store", "agent-x", "__default__")
    data = json.loads(row[3])
    assert not {"_harnessMessages", "_toolResultArchive", "_continuationMessages"} & data.keys()
    assert data["tenantId"] is None
    assert (json.loads(row[4]), json.loads(row[5]), json.loads(row[6])) == (
        {},
        [msg("user", "h")],
        [],
    )
    assert row[7] == datetime(2026, 3, 4, 13, 30, 0, 1000)  # T0 + 1 ms, exact

    e = con.execute(
        "SELECT source, seq, id, agent_id, tenant_id, conversation_id, type, payload, created_at, dup FROM conversation_entries"
    ).fetchone()
    assert e[:7] == ("store", 1, "e1", "owner-ines", "__default__", cid, "harness_message")
    assert (
        json.loads(e[7]) == entry
    )  # the new entry as given: id and type included, no seq/createdAt
    assert (e[8], e[9]) == (datetime(2026, 3, 4, 13, 30, 0, 1000), 0)


def test_conversations_are_per_agent_entries_per_conversation(con: Any) -> None:
    mine = DuckDBStore(connection=con, agent_id="agent-a", read_cutover=False)
    theirs = DuckDBStore(connection=con, agent_id="agent-b", read_cutover=False)
    cid = mine.create("o", "mine").conversation_id
    assert theirs.get(cid) is None and theirs.list_summaries() == [] and theirs.delete(cid) is False
    assert mine.get(cid) is not None
    # Entries are keyed by conversation only (their agent_id column holds the owner id upstream).
    mine.append_entries(cid, "o", None, [harness("e1", "user", "x")])
    assert [e.id for e in theirs.read_entries(cid)] == ["e1"]


def test_sources_are_separate(con: Any) -> None:
    store = DuckDBStore(connection=con, agent_id="a", read_cutover=False)
    loaded = DuckDBStore(connection=con, agent_id="a", read_cutover=False, source="sample.db")
    cid = store.create("o", "t").conversation_id
    store.append_entries(cid, "o", None, [harness("e1", "user", "x")])
    assert loaded.get(cid) is None and loaded.read_entries(cid) == []
    # The same id may exist in another source: the seq space and id uniqueness are per source.
    assert loaded.append_entries(cid, "o", None, [harness("e1", "user", "x")])[0].seq == 1


def _load_conversation(con: Any, data: dict[str, Any], harness_messages: Any = None) -> None:
    """Insert a row as a loader would (raw SQL, source 'sample')."""
    con.execute(
        "INSERT INTO conversations (source, id, agent_id, tenant_id, owner_id, title, data, updated_at, harness_messages)"
        " VALUES ('sample', ?, 'a', '__default__', 'o', 't', ?, make_timestamp(?::BIGINT * 1000), ?)",
        [data["conversationId"], json.dumps(data), data["updatedAt"], harness_messages],
    )


def _load_entry(con: Any, cid: str, seq: int, payload: dict[str, Any]) -> None:
    con.execute(
        "INSERT INTO conversation_entries (source, seq, id, agent_id, conversation_id, type, payload, created_at)"
        " VALUES ('sample', ?, ?, 'o', ?, ?, ?, NULL)",
        [seq, payload["id"], cid, payload["type"], json.dumps(payload)],
    )


BLOB = {
    "conversationId": "old",
    "title": "t",
    "ownerId": "o",
    "tenantId": None,
    "createdAt": T0,
    "updatedAt": T0,
    "messages": [msg("user", "BLOB")],
    "pendingSubagentResults": [],
}


def test_legacy_rows_with_heavy_fields_inside_data(con: Any) -> None:
    # Before migration 3, _harnessMessages lived inside `data`; the column is null.
    _load_conversation(con, {**BLOB, "_harnessMessages": [msg("user", "legacy")]})
    store = DuckDBStore(connection=con, agent_id="a", read_cutover=False, source="sample")
    assert store.get("old").to_dict()["_harnessMessages"] == [msg("user", "legacy")]


def test_loaded_entry_without_timestamp_reads_as_zero(con: Any) -> None:
    _load_entry(con, "old", 1, harness("e1", "user", "x"))
    store = DuckDBStore(connection=con, agent_id="a", source="sample")
    assert store.read_entries("old")[0].created_at == 0  # JavaScript: new Date(null).getTime()


def test_partial_rebuild_quirk_on_a_loaded_log(con: Any, caplog: pytest.LogCaptureFixture) -> None:
    # SPEC §3: an assistant_message with no message (only possible in loaded
    # data: appends are validated) fails the display rebuild after the LLM
    # context was already replaced. The read never raises.
    _load_conversation(con, BLOB, harness_messages=json.dumps([msg("user", "BLOB")]))
    _load_entry(con, "old", 1, harness("h1", "user", "from log"))
    _load_entry(
        con, "old", 2, {"id": "a1", "type": "assistant_message", "turnId": "t", "runId": "r"}
    )
    _load_entry(
        con,
        "old",
        3,
        {
            "id": "s1",
            "type": "subagent_result",
            "result": {"subagentId": "s", "task": "x", "status": "completed", "timestamp": T0},
        },
    )
    store = DuckDBStore(connection=con, agent_id="a", read_cutover=True, source="sample")
    with caplog.at_level(logging.WARNING):
        got = store.get("old").to_dict()
    assert got["_harnessMessages"] == [msg("user", "from log")]
    assert got["messages"] == [msg("user", "BLOB")]
    assert got["pendingSubagentResults"] == []
    assert "[entries-read] old rebuild failed, using blob:" in caplog.text


def _foreign_entry(con: Any, cid: str, seq: int, entry_id: str, source: str = "store") -> None:
    """A row written behind the store's back (by hand, or by a loader)."""
    con.execute(
        "INSERT INTO conversation_entries (source, seq, id, agent_id, conversation_id, type, payload, created_at)"
        " VALUES (?, ?, ?, 'o', ?, 'harness_message', ?, NULL)",
        [source, seq, entry_id, cid, json.dumps(harness(entry_id, "user", "x"))],
    )


def test_seq_conflicts_retry_then_raise_naming_the_conversation(
    con: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DuckDBStore(connection=con, agent_id="a")
    store.append_entries("busy", "o", None, [harness("e1", "user", "x")])
    _foreign_entry(con, "other", 1, "f1")  # the store no longer knows the table: it reads max(seq)
    calls = []

    def stale_log_state(cur: Any, conversation_id: str) -> tuple[int, int]:
        calls.append(conversation_id)
        return 0, 0  # every attempt computes seq 1, which is taken

    monkeypatch.setattr(store, "_log_state", stale_log_state)
    with pytest.raises(StoreError, match="conversation busy") as err:
        store.append_entries(
            "busy", "o", None, [harness("e2", "user", "y"), harness("e3", "user", "z")]
        )
    assert isinstance(err.value.__cause__, duckdb.Error)
    assert calls == ["busy"] * MAX_APPEND_ATTEMPTS
    monkeypatch.undo()
    assert [e.id for e in store.read_entries("busy")] == ["e1"]
    assert store.append_entries("busy", "o", None, [harness("e2", "user", "y")])[0].seq == 2


def test_appends_to_a_known_log_do_not_read_max_seq(
    con: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DuckDBStore(connection=con, agent_id="a")
    store.append_entries("c", "o", None, [harness("e1", "user", "x")])

    def no_scan(cur: Any, conversation_id: str) -> tuple[int, int]:
        raise AssertionError("read max(seq) although nothing else wrote")

    monkeypatch.setattr(store, "_log_state", no_scan)
    assert store.append_entries("c", "o", None, [harness("e2", "user", "y")])[0].seq == 2
    # Another store on the same database shares what this one knows.
    other = DuckDBStore(connection=con, agent_id="b")
    monkeypatch.setattr(other, "_log_state", no_scan)
    assert other.append_entries("c", "o", None, [harness("e3", "user", "z")])[0].seq == 3
    assert store.append_entries("c", "o", None, [harness("e4", "user", "z")])[0].seq == 4


def test_rows_written_behind_the_store_are_seen(con: Any) -> None:
    store = DuckDBStore(connection=con, agent_id="a")
    store.append_entries("c", "o", None, [harness("e1", "user", "x")])
    _foreign_entry(con, "c", 2, "f2")
    assert store.append_entries("c", "o", None, [harness("e3", "user", "x")])[0].seq == 3
    assert [e.seq for e in store.read_entries("c")] == [1, 2, 3]


def test_rows_deleted_behind_the_store_are_seen(con: Any) -> None:
    # A loader reloading a source deletes its rows first: the next seq follows what is left.
    store = DuckDBStore(connection=con, agent_id="a")
    store.append_entries("c", "o", None, [harness(f"e{i}", "user", "x") for i in range(1, 4)])
    con.execute("DELETE FROM conversation_entries WHERE conversation_id = 'c' AND seq >= 2")
    assert store.append_entries("c", "o", None, [harness("e9", "user", "x")])[0].seq == 2
    con.execute("DELETE FROM conversation_entries WHERE conversation_id = 'c'")
    assert store.append_entries("c", "o", None, [harness("e10", "user", "x")])[0].seq == 1


def test_other_sources_written_meanwhile(con: Any) -> None:
    store = DuckDBStore(connection=con, agent_id="a")
    store.append_entries("c", "o", None, [harness("e1", "user", "x")])
    # The same conversation id in another source has its own seq space.
    _foreign_entry(con, "c", 1, "loaded-1", source="sample.db")
    assert store.append_entries("c", "o", None, [harness("e2", "user", "x")])[0].seq == 2
    assert [e.id for e in store.read_entries("c")] == ["e1", "e2"]


@pytest.mark.parametrize("reused", [["e1"], ["e2", "e1"]], ids=["one", "batch"])
def test_reused_id_on_a_known_log_writes_nothing_and_keeps_counting(
    con: Any, reused: list[str]
) -> None:
    store = DuckDBStore(connection=con, agent_id="a")
    store.append_entries("c", "o", None, [harness("e1", "user", "x")])
    with pytest.raises(BadEntryError, match="e1"):
        store.append_entries("c", "o", None, [harness(i, "user", "x") for i in reused])
    assert store.append_entries("c", "o", None, [harness("e2", "user", "x")])[0].seq == 2
    assert [e.id for e in store.read_entries("c")] == ["e1", "e2"]


def test_a_recreated_file_starts_again_at_seq_1(tmp_path: Path) -> None:
    path = tmp_path / "again.duckdb"
    first = DuckDBStore(path, agent_id="a")
    first.append_entries("c", "o", None, [harness("e1", "user", "x"), harness("e2", "user", "x")])
    first.close()
    path.unlink()
    with DuckDBStore(path, agent_id="a") as second:  # `first` is still alive, with what it knew
        assert second.append_entries("c", "o", None, [harness("n1", "user", "x")])[0].seq == 1


def test_rename_0_59_3_is_json_set_on_the_stored_blob(con: Any) -> None:
    store = DuckDBStore(connection=con, agent_id="a", policy="0.59.3", clock=FakeClock())
    conv = store.create("o", "old").to_dict()
    conv["futureField"] = {"kept": True}
    store.update(conv)
    before = json.loads(con.execute("SELECT data FROM conversations").fetchone()[0])
    store.clock = FakeClock(T0 + 50)
    store.rename(conv["conversationId"], 'say "hi" ✈️')
    title, data, updated = con.execute(
        "SELECT title, data, updated_at FROM conversations"
    ).fetchone()
    after = json.loads(data)
    assert title == after["title"] == 'say "hi" ✈️'
    assert list(after) == list(before)  # the key keeps its place, nothing else changes
    assert {**after, "title": "old"} == before
    assert updated == datetime(2026, 3, 4, 13, 30, 0, 50_000)


def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        DuckDBStore(tmp_path / "missing-dir" / "x.duckdb")


def test_a_database_whose_tables_declare_the_keys_gets_no_second_copy(tmp_path: Path) -> None:
    """Files written before the keys became indexes hold them as table constraints: the store uses those."""
    path = tmp_path / "old.duckdb"
    old = duckdb.connect(str(path))
    old.execute(
        "CREATE TABLE conversation_entries (source VARCHAR NOT NULL DEFAULT 'store', seq BIGINT NOT NULL, "
        "id VARCHAR NOT NULL, agent_id VARCHAR NOT NULL, tenant_id VARCHAR NOT NULL DEFAULT '__default__', "
        "conversation_id VARCHAR NOT NULL, type VARCHAR NOT NULL, payload JSON NOT NULL, created_at TIMESTAMP, "
        "dup INTEGER NOT NULL DEFAULT 0, ordinal BIGINT, UNIQUE (source, conversation_id, seq, dup), "
        "UNIQUE (source, id, dup))"
    )
    old.close()
    with DuckDBStore(path, agent_id="a", read_cutover=False) as store:
        assert store._con.execute("SELECT count(*) FROM duckdb_indexes()").fetchone() == (0,)
        conv = store.create(title="t")
        stored = store.append_entries(conv.conversation_id, "local-owner", None, [harness("e1", "user", "hi")])
        assert [e.seq for e in stored] == [1]
        with pytest.raises(duckdb.ConstraintException):  # the declared key still guards the log
            store._con.execute(
                "INSERT INTO conversation_entries SELECT * FROM conversation_entries WHERE id = 'e1'"
            )
    fresh = DuckDBStore(tmp_path / "new.duckdb", agent_id="a")
    assert fresh._con.execute("SELECT count(*) FROM duckdb_indexes()").fetchone() == (3,)
    fresh.close()
