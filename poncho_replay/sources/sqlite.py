"""Reader for a harness SQLite file (local agents), opened read-only through ADBC.

Rows travel as Arrow batches (``adbc-driver-sqlite``), never as Python
tuples. The file is opened with ``mode=ro``, so its bytes stay identical.
Every column is read as text: SQLite lets any value sit in any column, and
the checks in ``sql/ingest.sql`` must see what is really there. Older
layouts are handled here by what the file lacks: no ``conversation_entries``
table (before 0.56), no heavy-field columns (before migration 3: they stay
inside ``data`` and the ingest moves them), no summary columns (before
migration 4: the ingest derives them from ``data`` as that migration did).

One snapshot: both tables are read inside one SQLite read transaction (an
explicit ``BEGIN`` ... ``ROLLBACK`` on the connection), so a harness that
commits a turn while we read (a new entry *and* the blob's update, one
transaction) is seen either wholly or not at all. Without it every SELECT
would see the newest commit, and the entries could be newer than the
conversations read a moment earlier (tests/test_snapshot.py).

Row by row: a BLOB value where the harness writes TEXT (``typeof = 'blob'``)
cannot be told from text once cast, so the SELECT itself flags such a row
(``problem_field`` = its first such column, which makes ``problem_reason``
``blob_value``) and the ingest quarantines it with its bytes kept escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from poncho_replay.errors import SourceError
from poncho_replay.sources.ingest import (
    CONVERSATION_COLUMNS,
    ENTRY_COLUMNS,
    NULL_SUFFIX,
    PROBLEM,
    PROBLEM_FIELD,
    Stager,
)

__all__ = ["read_sqlite"]

BATCH_ROWS = 20_000
BLOB_VALUE = "blob_value"
"""Quarantine reason of a row holding a BLOB in a column the harness writes as TEXT (or INTEGER)."""


def read_sqlite(
    path: str | Path,
    stager: Stager,
    *,
    agent_id: str | None = None,
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    """Stage every conversation and entry row of a harness SQLite file.

    Args:
        path: the database file.
        stager: where the raw batches go.
        agent_id: keep only this agent's conversations (and their entries,
            selected by conversation id: entry rows carry the owner id).
        advance: progress callback, called with each batch's row count.
    """
    file = Path(path)
    con = _open(file)
    try:
        # A deferred BEGIN: the read snapshot starts at the first SELECT below and
        # holds for every later one until the ROLLBACK (WAL: writers go on; a
        # rollback-journal file: writers wait for us, as for any reader).
        _execute(con, "BEGIN")
        tables = {r[0] for r in _rows(con, "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "conversations" not in tables:
            raise SourceError(f"{file} has no conversations table: not a harness database")
        present = _columns(con, "conversations")
        where = " WHERE agent_id = ?" if agent_id is not None else ""
        params = (agent_id,) if agent_id is not None else ()
        select = ", ".join(_column(c, present) for c in CONVERSATION_COLUMNS)
        select += ", " + _problem(CONVERSATION_COLUMNS, present)
        _stream(
            con,
            f"SELECT {select} FROM conversations{where} ORDER BY rowid",
            params,
            stager,
            "conversations",
            advance,
        )
        if "conversation_entries" in tables:
            present = _columns(con, "conversation_entries")
            select = ", ".join(_column(c, present) for c in ENTRY_COLUMNS)
            select += ", " + _problem(ENTRY_COLUMNS, present)
            where = (
                " WHERE conversation_id IN (SELECT id FROM conversations WHERE agent_id = ?)"
                if params
                else ""
            )
            sql = f"SELECT {select} FROM conversation_entries{where} ORDER BY rowid"
            _stream(con, sql, params, stager, "conversation_entries", advance)
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(f"cannot read {file}: {exc}") from exc
    finally:
        # Read-only: ROLLBACK ends the snapshot, there is nothing to commit. It fails
        # only when BEGIN did (no transaction open): the connection is closed either way.
        with suppress(Exception):
            _execute(con, "ROLLBACK")
        con.close()


def count_rows(path: str | Path) -> int | None:
    """Conversations + entries in the file (the progress bar's total), or None if unreadable.

    Counted through ADBC's SQLite, the reader's own library, and closed before
    returning. Python's ``sqlite3`` links a second SQLite library, and its
    connections live until the cyclic GC collects them: one closed by the GC
    in the middle of a read drops every POSIX lock this process holds on the
    file's ``-shm`` (POSIX locks are per process and file), the reader's WAL
    read mark included, and a writer's checkpoint can then overwrite WAL
    frames the read is using ("database disk image is malformed").
    """
    file = Path(path)
    try:
        con = _open(file)
    except SourceError:
        return None
    try:
        tables = {r[0] for r in _rows(con, "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "conversations" not in tables:
            return None
        counted = [t for t in ("conversations", "conversation_entries") if t in tables]
        return sum(_rows(con, f"SELECT count(*) FROM {t}")[0][0] for t in counted)
    except Exception:  # noqa: BLE001 - a file the reader will reject: no total, the read says why
        return None
    finally:
        con.close()


def _open(file: Path):
    """A read-only ADBC connection to ``file`` (``SourceError`` when there is none)."""
    import adbc_driver_sqlite.dbapi as adbc

    if not file.is_file():
        raise SourceError(f"no SQLite file at {file}")
    try:
        # autocommit=True: the driver issues no transaction of its own; a BEGIN is the
        # caller's, so the one-snapshot guarantee does not rest on a driver default.
        return adbc.connect(uri=file.resolve().as_uri() + "?mode=ro", autocommit=True)
    except Exception as exc:
        raise SourceError(f"cannot open {file} read-only: {exc}") from exc


def _columns(con, table: str) -> dict[str, bool]:
    """The table's columns, each with whether the file's schema declares it NOT NULL."""
    return {r[1]: bool(r[3]) for r in _rows(con, f"PRAGMA table_info({table})")}


def _column(name: str, present: dict[str, bool]) -> str:
    """Text value plus a NULL flag (ADBC infers a type per batch; an all-NULL batch would break it).

    A column the file declares NOT NULL holds no NULL (SQLite enforces it on
    every write), so it needs no flag: about 0.4 s of the read per million
    entries.
    """
    if present.get(name):
        return f"CAST({name} AS TEXT) AS {name}"
    expr = name if name in present else "NULL"
    return f"ifnull(CAST({expr} AS TEXT), '') AS {name}, ({expr}) IS NULL AS {name}{NULL_SUFFIX}"


def _problem(columns: tuple[str, ...], present: dict[str, bool]) -> str:
    """``problem_field`` of a row: its first BLOB column (:func:`_stream` adds the reason).

    Sent as text with ``''`` for "none" (an all-NULL batch would give ADBC no
    type to infer). One CASE, so SQLite asks each value's type once: the
    reason column is derived from this one in Arrow, not computed again.
    """
    blobs = [c for c in columns if c in present]
    if not blobs:
        return f"'' AS {PROBLEM_FIELD}"
    first = " ".join(f"WHEN typeof({c}) = 'blob' THEN '{c}'" for c in blobs)
    return f"CASE {first} ELSE '' END AS {PROBLEM_FIELD}"


def _execute(con, sql: str) -> None:
    """Run a statement that returns no rows (BEGIN, ROLLBACK)."""
    cur = con.cursor()
    try:
        cur.execute(sql)
    finally:
        cur.close()


def _rows(con, sql: str) -> list[tuple]:
    cur = con.cursor()
    try:
        cur.execute(sql)
        return cur.fetchall()
    finally:
        cur.close()


def _stream(
    con, sql: str, params: tuple, stager: Stager, table: str, advance: Callable[[int], None]
) -> None:
    cur = con.cursor()
    try:
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
        cur.execute(sql, parameters=params or None)
        reader: pa.RecordBatchReader = cur.fetch_record_batch()
        for batch in reader:
            advance(stager.add(table, _problems_as_null(batch)))
    finally:
        cur.close()


def _problems_as_null(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``problem_field`` with ``''`` (no problem) as NULL, the ingest's "nothing known", and its reason beside it."""
    names = batch.schema.names
    index = names.index(PROBLEM_FIELD)
    field = batch.column(index).cast(pa.string())
    field = pc.if_else(pc.equal(field, ""), pa.scalar(None, pa.string()), field)
    reason = pc.if_else(pc.is_null(field), pa.scalar(None, pa.string()), pa.scalar(BLOB_VALUE))
    arrays = [*batch.columns[:index], field, *batch.columns[index + 1 :], reason]
    return pa.RecordBatch.from_arrays(arrays, names=[*names, PROBLEM])
