"""The DuckDB engine: a harness ConversationStore over the workbench tables.

The tables are the ones of ``sql/schema.sql`` (the same ones the loaders and
the fleet SQL use); the queries are in ``sql/store.sql``. Each store sees
the rows of one ``source`` (``"store"`` by default) and, for conversations,
of one ``agent_id``.

Concurrency. DuckDB connections are not thread-safe, so every thread gets
its own cursor. Seqs are assigned as upstream does (max(seq) + 1 inside a
transaction, the unique constraint as backstop), but appends to one
conversation are first serialised by an in-process lock shared by every
store on the same database, so threads do not collide on seqs. A conflict
that still happens (a writer outside this module) is retried up to
:data:`MAX_APPEND_ATTEMPTS` times, then raised as ``StoreError``. A DuckDB
file can only be opened for writing by one process, so the lock covers
every writer that can exist.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Sequence
from typing import Any, Self

import duckdb

from poncho_replay.errors import StoreError
from poncho_replay.models import JsonDict, StatusSnapshot
from poncho_replay.rebuild import Policy
from poncho_replay.sql import CONVERSATION_JSON_COLUMNS, read_sql, run_script
from poncho_replay.store.records import (
    ConversationRow,
    duplicate_id_error,
    row_to_status,
    stored_entry,
    to_json,
)
from poncho_replay.store.rowstore import ALL_TENANTS, Clock, RowStore

__all__ = ["MAX_APPEND_ATTEMPTS", "DuckDBStore"]

MAX_APPEND_ATTEMPTS = 10
"""Compute-max(seq)-and-insert attempts before an append gives up (upstream: 3)."""

_ROW_FIELDS = {f for f in ConversationRow.__dataclass_fields__}
_CONFLICTS = (duckdb.TransactionException, duckdb.ConstraintException)
_LOCK_STRIPES = [threading.Lock() for _ in range(64)]


@functools.cache
def _queries() -> dict[str, str]:
    """The named statements of ``store.sql`` (``-- name: x`` starts statement ``x``)."""
    parts = re.split(r"^-- name: (\w+)\s*$", read_sql("store.sql"), flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


class DuckDBStore(RowStore):
    """A ConversationStore in a DuckDB database (a file, memory, or a connection you own).

    Example:
        >>> from poncho_replay.store import DuckDBStore
        >>> with DuckDBStore(":memory:", agent_id="my-agent", read_cutover=False) as store:
        ...     conv = store.create(title="experiment")
        ...     stored = store.append_entries(conv.conversation_id, "local-owner", None, [
        ...         {"id": "e1", "type": "harness_message", "turnId": "t1",
        ...          "message": {"role": "user", "content": "hi"}}])
        ...     [e.seq for e in store.read_entries(conv.conversation_id)]
        [1]

    Args:
        path: a database file (created if missing, reopened with everything
            in it) or ``":memory:"``. Ignored when ``connection`` is given.
        agent_id: the agent whose conversations this store reads and writes.
        read_cutover: force the 0.58 read cutover on/off; None follows ``PONCHO_READ_ENTRIES``.
        source: which loaded source's rows to use (``"store"`` for rows written here).
        connection: an open DuckDB connection to share (for example a
            Workspace's); the store creates missing tables but never closes it.
        policy: which fields the read cutover rebuilds.
        clock: "now" in epoch ms.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        agent_id: str = "local-agent",
        *,
        read_cutover: bool | None = None,
        source: str = "store",
        connection: duckdb.DuckDBPyConnection | None = None,
        policy: Policy = "0.58",
        clock: Clock | None = None,
    ) -> None:
        super().__init__(agent_id, read_cutover=read_cutover, policy=policy, clock=clock)
        self.source = source
        self._owns_connection = connection is None
        try:
            self._con = connection if connection is not None else duckdb.connect(str(path))
            run_script(self._con, "schema.sql")
            db_path = self._con.execute(
                "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
            ).fetchone()[0]
        except duckdb.Error as exc:
            raise StoreError(f"cannot open DuckDB store at {path}: {exc}") from exc
        # Stores on one file share append locks; an in-memory database is private to its connection.
        self._db_key: object = os.path.realpath(db_path) if db_path else id(self._con)
        self._local = threading.local()

    def close(self) -> None:
        """Close the connection if this store opened it."""
        if self._owns_connection:
            self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (a DuckDB connection is not safe to share across threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self._con.cursor()
        return cur

    def _run(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run a named query with bound parameters, converting driver errors."""
        cur = self._cursor()
        try:
            return cur.execute(_queries()[query], {"source": self.source, **params}).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"{query} failed: {exc}") from exc

    def _rows(self, query: str, **params: Any) -> list[ConversationRow]:
        cur = self._cursor()
        try:
            cur.execute(
                _queries()[query], {"source": self.source, "agent": self.agent_id, **params}
            )
            names = [d[0] for d in cur.description]
            return [_to_row(dict(zip(names, values, strict=True))) for values in cur.fetchall()]
        except duckdb.Error as exc:
            raise StoreError(f"{query} failed: {exc}") from exc

    def _row_params(self, row: ConversationRow) -> dict[str, Any]:
        params = {f: getattr(row, f) for f in _ROW_FIELDS if f not in ("id", "agent_id")}
        params.update({c: None if params[c] is None else to_json(params[c]) for c in CONVERSATION_JSON_COLUMNS})
        return {**params, "id": row.id, "agent": row.agent_id}

    # --- conversation rows -------------------------------------------------------------

    def _fetch_row(self, conversation_id: str, *, with_archive: bool) -> ConversationRow | None:
        rows = self._rows("fetch_row", id=conversation_id, with_archive=with_archive)
        return rows[0] if rows else None

    def _insert_row(self, row: ConversationRow) -> None:
        self._run("insert_row", **self._row_params(row))

    def _upsert_row(self, row: ConversationRow) -> None:
        self._run("upsert_row", **self._row_params(row))

    def _delete_row(self, conversation_id: str) -> bool:
        return bool(self._run("delete_row", id=conversation_id, agent=self.agent_id))

    def _summary_rows(self, owner_id: str | None, tenant_id: Any) -> list[ConversationRow]:
        all_tenants = tenant_id is ALL_TENANTS
        return self._rows(
            "summary_rows",
            all_tenants=all_tenants,
            tenant_id=None
            if all_tenants
            else (tenant_id if tenant_id is not None else "__default__"),
            owner_id=owner_id,
        )

    def _thread_rows(self, parent_conversation_id: str) -> list[ConversationRow]:
        return self._rows("thread_rows", parent=parent_conversation_id)

    def get_status_snapshot(self, conversation_id: str) -> StatusSnapshot | None:
        cur = self._cursor()
        try:
            cur.execute(
                _queries()["status_row"],
                {"source": self.source, "agent": self.agent_id, "id": conversation_id},
            )
            names = [d[0] for d in cur.description]
            found = cur.fetchone()
        except duckdb.Error as exc:
            raise StoreError(f"status_row failed: {exc}") from exc
        if found is None:
            return None
        values = dict(zip(names, found, strict=True))
        run_status, has_continuation = (
            values.pop("run_status"),
            values.pop("has_continuation_messages"),
        )
        return row_to_status(_to_row(values), run_status, bool(has_continuation))

    # --- entries ---------------------------------------------------------------------------

    def _append_payloads(
        self,
        conversation_id: str,
        agent_id: str,
        tenant_id: str,
        payloads: list[JsonDict],
        now: int,
    ) -> int:
        ids = [p["id"] for p in payloads]
        batch = {
            "source": self.source,
            "ids": ids,
            "types": [p["type"] for p in payloads],
            "payloads": [to_json(p) for p in payloads],
            "agent_id": agent_id,
            "tenant_id": tenant_id,
            "conversation_id": conversation_id,
            "now": now,
        }
        cur = self._cursor()
        last: duckdb.Error | None = None
        with _LOCK_STRIPES[hash((self._db_key, self.source, conversation_id)) % len(_LOCK_STRIPES)]:
            for _attempt in range(MAX_APPEND_ATTEMPTS):
                try:
                    cur.begin()
                    first = self._max_seq(cur, conversation_id) + 1
                    cur.execute(
                        _queries()["insert_entries"],
                        {**batch, "seqs": list(range(first, first + len(ids)))},
                    )
                    cur.commit()
                    return first
                except _CONFLICTS as exc:
                    # The unique constraints rejected the whole batch: a reused id is
                    # the caller's error, a taken seq is a race worth retrying.
                    last = exc
                    _rollback(cur)
                    reused = [r[0] for r in self._run("used_ids", ids=ids)]
                    if reused:
                        raise duplicate_id_error(conversation_id, reused) from exc
                except duckdb.Error as exc:
                    _rollback(cur)
                    raise StoreError(
                        f"conversation {conversation_id}: append failed: {exc}"
                    ) from exc
        raise StoreError(
            f"conversation {conversation_id}: append gave up after {MAX_APPEND_ATTEMPTS} attempts "
            f"(concurrent writers kept taking the same seqs): {last}"
        ) from last

    def _max_seq(self, cur: duckdb.DuckDBPyConnection, conversation_id: str) -> int:
        """The conversation's current max seq (0 for an empty log), inside the caller's transaction."""
        return cur.execute(
            _queries()["max_seq"], {"source": self.source, "conversation_id": conversation_id}
        ).fetchone()[0]

    def _entry_dicts(
        self,
        conversation_id: str,
        types: Sequence[str] | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> list[JsonDict]:
        rows = self._run(
            "read_entries",
            conversation_id=conversation_id,
            types=list(types) if types else None,
            after_seq=after_seq,
            limit=limit,
        )
        return [
            stored_entry({**json.loads(payload), "id": id_}, seq, created)
            for seq, id_, payload, created in rows
        ]


def _to_row(values: dict[str, Any]) -> ConversationRow:
    """A row from query columns: JSON decoded; columns a query skipped stay at their defaults."""
    for column in CONVERSATION_JSON_COLUMNS:
        if values.get(column) is not None:
            values[column] = json.loads(values[column])
    values.setdefault("data", {})
    return ConversationRow(**values)


def _rollback(cur: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open (a failed commit already ended it)."""
    try:
        cur.rollback()
    except duckdb.Error:
        pass
