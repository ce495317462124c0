"""Loading a live harness database: every load sees one committed state, never a torn one.

The harness commits a turn as one transaction: the new entries *and* the
blob's update (its ``messages`` and ``message_count``). So in every committed
state of the test databases below this invariant holds, per conversation:

    message_count == len(data.messages) == user_message + assistant_message entries

and no entry belongs to a conversation that has no row yet (a new conversation
is created in the same transaction as its first turn).

A reader reads the two tables one after the other. If each SELECT took its
own snapshot (SQLite without the reader's ``BEGIN``, PostgreSQL under READ
COMMITTED), a turn committed between the two reads would be in the entries
but not in the blobs read a moment before: ``log_n = message_count + 2`` for
that conversation, or entries of a conversation that "does not exist". The
tests check the invariant on what landed in DuckDB:

- ``test_*_commit_between_the_two_reads`` commits a turn deterministically
  at the worst moment, from the reader's progress callback (called after the
  conversations batch is staged, before the entries are read). Without the
  snapshot this fails every time (verified: removing the ``BEGIN`` from
  ``read_sqlite``, or running ``read_postgres`` under READ COMMITTED, gives
  ``log_n == message_count + 2`` for the turned conversation).
- ``test_*_loads_while_a_writer_commits`` loads repeatedly while a writer
  thread commits turns and new conversations as fast as it can, the way a
  busy harness does; each load must see a consistent state, and the loads
  must have seen several distinct states (else nothing was exercised).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import poncho_replay
from poncho_replay.harness_layout import (
    conversation_row,
    create_postgres,
    create_sqlite,
    entry_row,
    write_postgres,
    write_sqlite,
)
from poncho_replay.sources.ingest import Stager
from poncho_replay.sources.postgres import read_postgres
from poncho_replay.sources.sqlite import read_sqlite
from tests.load_data import T0, assistant, user
from tests.pg_server import TEST_URL, connect

JsonDict = dict[str, Any]
AGENT = "snap-agent"
START_CONVERSATIONS = 40
LOADS = 12
"""Loads per backend in the concurrent test (each waits for a fresh commit first)."""


class Harness:
    """The harness's turn commits, in memory: the blobs it would write and the entries of each turn.

    ``turn(cid)`` returns what one commit writes for a conversation: the two
    new entries and the updated blob (which also holds the turn). A
    conversation the harness has not seen yet is created by its first turn.
    """

    def __init__(self) -> None:
        self.blobs: dict[str, JsonDict] = {}
        self.n_new = 0

    def new_id(self) -> str:
        self.n_new += 1
        return f"conv-{self.n_new:04d}"

    def turn(self, cid: str) -> tuple[JsonDict, list[JsonDict], bool]:
        """(blob after the turn, the turn's stored entries, whether the conversation is new)."""
        created = cid not in self.blobs
        blob = self.blobs.get(cid) or {
            "conversationId": cid,
            "title": f"title {cid}",
            "messages": [],
            "ownerId": "owner-a",
            "tenantId": None,
            "createdAt": T0,
            "updatedAt": T0,
        }
        k = len(blob["messages"]) // 2
        turn_id = f"t{k + 1}"
        ask, reply = user(f"question {k + 1} " * 20), assistant(f"answer {k + 1} " * 40)
        at = T0 + 1000 * (2 * k + 1)
        entries = [
            {"id": f"{cid}-e{2 * k + 1}", "seq": 2 * k + 1, "createdAt": at, "type": "user_message",
             "message": ask, "turnId": turn_id},
            {"id": f"{cid}-e{2 * k + 2}", "seq": 2 * k + 2, "createdAt": at + 500, "type": "assistant_message",
             "message": reply, "turnId": turn_id, "runId": f"r{k + 1}"},
        ]  # fmt: skip
        blob = {**blob, "messages": [*blob["messages"], ask, reply], "updatedAt": at + 500}
        self.blobs[cid] = blob
        return blob, entries, created

    def seed(self, n: int) -> tuple[list[JsonDict], dict[str, list[JsonDict]]]:
        """``n`` conversations of one or two turns each, as writer input."""
        logs: dict[str, list[JsonDict]] = {}
        for i in range(n):
            cid = self.new_id()
            for _ in range(1 + i % 2):
                _, entries, _ = self.turn(cid)
                logs.setdefault(cid, []).extend(entries)
        return list(self.blobs.values()), logs


def torn(ws: poncho_replay.Workspace) -> list[tuple]:
    """Conversations (and orphan entries) that break the invariant in the loaded tables."""
    return ws.con.execute(
        """
        WITH log AS (
            SELECT conversation_id, count(*) AS log_n FROM conversation_entries
            WHERE type IN ('user_message', 'assistant_message') GROUP BY conversation_id
        )
        SELECT coalesce(c.id, l.conversation_id), c.message_count,
            json_array_length(c.data, '$.messages') AS blob_n, coalesce(l.log_n, 0) AS log_n
        FROM conversations c FULL JOIN log l ON l.conversation_id = c.id
        WHERE c.id IS NULL OR c.message_count <> coalesce(l.log_n, 0)
            OR json_array_length(c.data, '$.messages') <> c.message_count
        ORDER BY 1
        """
    ).fetchall()


def state(ws: poncho_replay.Workspace) -> tuple[int, int]:
    """(conversations, entries) loaded: which committed state a load saw."""
    return ws.con.execute(
        "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM conversation_entries)"
    ).fetchone()


def check_load(ws: poncho_replay.Workspace, summary: Any) -> None:
    """Every row read loaded (the writer writes only good rows) and the invariant holds."""
    assert summary.quarantined == {}
    assert summary.loaded == summary.read
    assert torn(ws) == []


# --- SQLite (WAL, as a local harness runs it) ---------------------------------------------
#
# The writer runs in its own process, as the harness (Node) does. It must: Python's
# sqlite3 and ADBC's driver link two different SQLite libraries, and POSIX file locks
# are per process, so in one process neither library sees the other's locks and a
# checkpoint can overwrite WAL frames the reader still uses ("database disk image is
# malformed"). That is an artefact of sharing a process, not of the reader.


def _sqlite_writer_main(path: str, pipe: Any, count: Any, stop: Any) -> None:
    """Child process: create the file (WAL), then commit turns on command.

    Commands on ``pipe``: ``("turn", cid)`` commits one turn and answers;
    ``("run",)`` commits turns (every 7th a new conversation) until ``stop``
    is set, bumping ``count`` after each commit, then answers; ``("quit",)``.
    Answers are ``(None,)`` or ``(error text,)``.
    """
    harness = Harness()
    con = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        create_sqlite(con)
        write_sqlite(con, *harness.seed(START_CONVERSATIONS), agent_id=AGENT)
        pipe.send((None,))
        existing = sorted(harness.blobs)
        while True:
            command = pipe.recv()
            try:
                if command[0] == "turn":
                    _sqlite_commit_turn(con, harness, command[1])
                elif command[0] == "run":
                    i = 0
                    while not stop.is_set():
                        i += 1
                        cid = harness.new_id() if i % 7 == 0 else existing[(i * 13) % len(existing)]
                        _sqlite_commit_turn(con, harness, cid)
                        with count.get_lock():
                            count.value += 1
                else:
                    return
                pipe.send((None,))
            except Exception as exc:  # noqa: BLE001 - reported to the test process
                pipe.send((f"{type(exc).__name__}: {exc}",))
    finally:
        con.close()


def _sqlite_commit_turn(con: sqlite3.Connection, harness: Harness, cid: str) -> None:
    """One turn, one transaction: the entries and the blob's new messages and count."""
    blob, entries, created = harness.turn(cid)
    row = conversation_row(blob, agent_id=AGENT)
    con.execute("BEGIN IMMEDIATE")
    try:
        if created:
            con.execute(
                f"INSERT INTO conversations ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
        else:
            con.execute(
                "UPDATE conversations SET data = ?, message_count = ?, updated_at = ?, harness_messages = ? "
                "WHERE id = ?",
                (row["data"], row["message_count"], row["updated_at"], row["harness_messages"], cid),
            )
        con.executemany(
            "INSERT INTO conversation_entries (seq, id, agent_id, tenant_id, conversation_id, type, payload, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [tuple(entry_row(cid, e, agent_id="owner-a").values()) for e in entries],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


class SqliteWriter:
    """The test's handle on the writer process (see :func:`_sqlite_writer_main`)."""

    def __init__(self, path: Path) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process holding DuckDB threads
        self.pipe, child = ctx.Pipe()
        self.count = ctx.Value("l", 0)
        self.stop_flag = ctx.Event()
        self.process = ctx.Process(
            target=_sqlite_writer_main, args=(str(path), child, self.count, self.stop_flag), daemon=True
        )
        self.process.start()
        self._answer()  # the file is ready

    def _answer(self) -> None:
        if not self.pipe.poll(60):
            raise AssertionError("the writer process did not answer")
        (error,) = self.pipe.recv()
        assert error is None, f"writer process: {error}"

    def commit_turn(self, cid: str) -> None:
        self.pipe.send(("turn", cid))
        self._answer()

    def start(self) -> None:
        self.pipe.send(("run",))

    def commits(self) -> int:
        return self.count.value

    def stop(self) -> None:
        self.stop_flag.set()
        self._answer()

    def close(self) -> None:
        if self.process.is_alive():
            self.stop_flag.set()
            self.pipe.send(("quit",))
            self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()  # only our own child, by its handle


@pytest.fixture()
def live_sqlite(tmp_path: Path) -> Iterator[tuple[Path, SqliteWriter]]:
    """A WAL harness file with START_CONVERSATIONS conversations and a writer process on it."""
    path = tmp_path / "live.db"
    writer = SqliteWriter(path)
    try:
        yield path, writer
    finally:
        writer.close()


def test_sqlite_commit_between_the_two_reads(live_sqlite: tuple[Path, SqliteWriter]) -> None:
    """A turn committed after the conversations are read is not in the entries read next."""
    path, writer = live_sqlite
    ws = poncho_replay.open()
    stager = Stager(ws.con)
    read_sqlite(path, stager, advance=_once(lambda: writer.commit_turn("conv-0001")))
    summary = stager.finish("live", "sqlite")
    check_load(ws, summary)
    # The commit happened (a fresh load sees it), and this load saw the state before it.
    assert state(ws) == (START_CONVERSATIONS, 2 * 60)
    again = poncho_replay.open()
    check_load(again, again.load(path))
    assert state(again) == (START_CONVERSATIONS, 2 * 60 + 2)


def test_sqlite_loads_while_a_writer_commits(live_sqlite: tuple[Path, SqliteWriter]) -> None:
    path, writer = live_sqlite
    _loads_while_writing(path, writer)


# --- PostgreSQL (the real server; CI=true makes its absence a failure) --------------------


class PostgresWriter:
    """Commits harness turns into a schema, JSONB as string scalars as the harness binds them."""

    def __init__(self, conn: Any, schema: str, harness: Harness) -> None:
        self.conn, self.schema, self.harness = conn, schema, harness
        self._stop = threading.Event()
        self._count = 0
        self._errors: list[BaseException] = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Commit turns in a thread (every 7th a new conversation) until :meth:`stop`."""
        existing = sorted(self.harness.blobs)

        def run() -> None:
            i = 0
            try:
                while not self._stop.is_set():
                    i += 1
                    cid = self.harness.new_id() if i % 7 == 0 else existing[(i * 13) % len(existing)]
                    self.commit_turn(cid)
                    self._count += 1
            except BaseException as exc:  # noqa: BLE001 - re-raised by stop()
                self._errors.append(exc)

        self._thread = threading.Thread(target=run, name="harness-writer", daemon=True)
        self._thread.start()

    def commits(self) -> int:
        assert not self._errors, self._errors
        return self._count

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        assert not self._errors, self._errors

    def commit_turn(self, cid: str) -> None:
        """One turn, one transaction: the entries and the blob's new messages and count."""
        from psycopg.types.json import Jsonb

        blob, entries, created = self.harness.turn(cid)
        row = conversation_row(blob, agent_id=AGENT)
        json_cols = ("data", "tool_result_archive", "harness_messages", "continuation_messages", "channel_meta")
        values = {k: (Jsonb(v) if k in json_cols and v is not None else v) for k, v in row.items()}
        with self.conn.transaction():
            self.conn.execute(f'SET LOCAL search_path TO "{self.schema}"')
            if created:
                self.conn.execute(
                    f"INSERT INTO conversations ({', '.join(values)}) VALUES ({', '.join(['%s'] * len(values))})",
                    list(values.values()),
                )
            else:
                self.conn.execute(
                    "UPDATE conversations SET data = %s, message_count = %s, updated_at = %s, harness_messages = %s "
                    "WHERE id = %s",
                    (values["data"], row["message_count"], row["updated_at"], values["harness_messages"], cid),
                )
            with self.conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO conversation_entries (seq, id, agent_id, tenant_id, conversation_id, type, payload, "
                    "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (*list(r.values())[:6], Jsonb(r["payload"]), r["created_at"])
                        for r in (entry_row(cid, e, agent_id="owner-a") for e in entries)
                    ],
                )


@pytest.fixture()
def live_postgres() -> Iterator[tuple[str, PostgresWriter]]:
    """A throwaway schema with START_CONVERSATIONS conversations, its URL and a writer on it."""
    conn = connect()
    name = f"pr_snap_{uuid.uuid4().hex[:10]}"
    harness = Harness()
    try:
        create_postgres(conn, name)
        write_postgres(conn, name, *harness.seed(START_CONVERSATIONS), agent_id=AGENT)
        conn.autocommit = True  # each commit_turn is its own explicit transaction
        yield f"{TEST_URL}?options=-csearch_path%3D{name}", PostgresWriter(conn, name, harness)
    finally:
        if not conn.autocommit:
            conn.rollback()
            conn.autocommit = True
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.close()


def test_postgres_commit_between_the_two_reads(live_postgres: tuple[str, PostgresWriter]) -> None:
    """A turn committed after the conversations are read is not in the entries read next."""
    url, writer = live_postgres
    ws = poncho_replay.open()
    stager = Stager(ws.con)
    read_postgres(url, stager, advance=_once(lambda: writer.commit_turn("conv-0001")))
    summary = stager.finish("live", "postgres")
    check_load(ws, summary)
    assert state(ws) == (START_CONVERSATIONS, 2 * 60)
    again = poncho_replay.open()
    check_load(again, again.load(url))
    assert state(again) == (START_CONVERSATIONS, 2 * 60 + 2)


def test_postgres_loads_while_a_writer_commits(live_postgres: tuple[str, PostgresWriter]) -> None:
    url, writer = live_postgres
    _loads_while_writing(url, writer)


# --- shared ---------------------------------------------------------------------------------


def _once(action: Callable[[], None]) -> Callable[[int], None]:
    """A progress callback that runs ``action`` at its first call (after the first staged batch)."""
    done = False

    def advance(_n: int) -> None:
        nonlocal done
        if not done:
            done = True
            action()

    return advance


def _loads_while_writing(source: str | Path, writer: SqliteWriter | PostgresWriter) -> None:
    """LOADS loads of ``source`` while ``writer`` commits turns as fast as it can.

    Before each load the test waits (bounded) for the writer's next commit, so
    successive loads see different states; the writer goes on committing
    during the load itself, which is the race under test.
    """
    seen: list[tuple[int, int]] = []
    writer.start()
    try:
        for _ in range(LOADS):
            target = writer.commits() + 1
            _wait_for(lambda t=target: writer.commits() >= t)
            ws = poncho_replay.open()
            summary = ws.load(source, name="live")
            problems = torn(ws)
            assert problems == [], f"torn state (id, message_count, blob_n, log_n): {problems[:5]}"
            assert summary.quarantined == {} and summary.loaded == summary.read
            seen.append(state(ws))
            ws.con.close()
    finally:
        writer.stop()
    # The loads really ran against a moving database: they saw several committed states.
    assert len(set(seen)) > LOADS // 2, seen


def _wait_for(condition: Callable[[], bool], limit: float = 30.0) -> None:
    """Poll ``condition`` until true; a writer that stalls for ``limit`` seconds fails the test."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the writer made no commit")
        time.sleep(0.001)


def test_counting_rows_leaves_no_connection_for_the_gc_to_close(tmp_path: Path) -> None:
    """The progress total is counted on a connection closed before the read starts.

    A Python ``sqlite3`` connection left to the cyclic GC (it holds a reference
    cycle through its statement cache) can be closed in the middle of the
    ADBC read, dropping this process's POSIX locks on the ``-shm`` file and so
    the reader's WAL read mark: that is how ``test_sqlite_loads_while_a_writer_commits``
    failed now and then ("database disk image is malformed").
    """
    import gc

    from poncho_replay.sources.sqlite import count_rows

    path = tmp_path / "h.db"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    create_sqlite(con)
    write_sqlite(con, *Harness().seed(3), agent_id=AGENT)  # 3 conversations, 1 + 2 + 1 turns
    con.close()
    del con
    (tmp_path / "other.db").write_bytes(b"")
    gc.collect()
    gc.disable()
    try:
        assert count_rows(path) == 3 + 2 * 4
        assert count_rows(tmp_path / "other.db") is None  # no conversations table: no total
        assert count_rows(tmp_path / "missing.db") is None
        alive = [o for o in gc.get_objects() if isinstance(o, sqlite3.Connection)]
    finally:
        gc.enable()
    assert alive == []
