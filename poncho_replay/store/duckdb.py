"""The DuckDB engine: a harness ConversationStore over the workbench tables.

The tables are the ones of ``sql/schema.sql`` (the same ones the loaders and
the fleet SQL use); the queries are in ``sql/store.sql``. Each store sees
the rows of one ``source`` (``"store"`` by default) and, for conversations,
of one ``agent_id``.

Concurrency. DuckDB connections are not thread-safe, so every thread gets
its own cursor. Appends are serialised by an in-process lock shared by
every store on the same database (a DuckDB file can only be opened for
writing by one process, so the lock covers every store that can write it).

Seqs. Upstream computes max(seq) + 1 inside a transaction; in DuckDB that
is a scan of the table per append, and a transaction of four round trips.
Instead, the stores on one database share :class:`_LogHeads`: each
conversation's max seq as of the last append made here, and the number of
rows the table held then. An append is then one autocommit INSERT (atomic,
durable at commit as before) that writes only if the table still holds
that many rows (a metadata lookup, no scan); the unique key (sql/keys.sql) on
(conversation, seq) catches the rest. Anything else (a loader reloading a
source, rows inserted or deleted by hand) makes the INSERT write nothing
or conflict; the store then forgets what it knew and falls back to
upstream's way (max(seq) + 1 inside a transaction), retried up to
:data:`MAX_APPEND_ATTEMPTS` times before ``StoreError``. A change by
someone else that leaves the row count exactly as it was between two of
this store's appends would go unnoticed: the one case the check cannot see.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Self

import duckdb

from poncho_replay.errors import StoreError
from poncho_replay.models import JsonDict, StatusSnapshot
from poncho_replay.policy import Policy, ReadPolicy
from poncho_replay.sql import CONVERSATION_JSON_COLUMNS, read_sql, run_script
from poncho_replay.store.records import (
    ConversationRow,
    EntryBatch,
    duplicate_id_error,
    row_to_status,
    stored_entry,
    to_json,
)
from poncho_replay.store.rowstore import ALL_TENANTS, Clock, RowStore

__all__ = ["MAX_APPEND_ATTEMPTS", "DuckDBStore", "ensure_keys"]

MAX_APPEND_ATTEMPTS = 10
"""Compute-max(seq)-and-insert attempts before an append gives up (upstream: 3)."""

_ROW_FIELDS = {f for f in ConversationRow.__dataclass_fields__}
_CONFLICTS = (duckdb.TransactionException, duckdb.ConstraintException)


class _LogHeads:
    """What the stores of this process know about one database's entry log.

    ``seqs`` maps (source, conversation id) to the max seq after the last
    append made here; ``rows`` is how many rows ``conversation_entries``
    held right after it (None: unknown). Both are only read and written
    under ``lock``, which also serialises every append to the database.
    """

    def __init__(self, anchor: object) -> None:
        self.lock = threading.Lock()
        self.anchor = anchor  # an in-memory database is keyed by id(connection): keep that id taken
        self.rows: int | None = None
        self.seqs: dict[tuple[str, str], int] = {}

    def remember(self, key: tuple[str, str], last_seq: int, rows: int) -> None:
        """The state after an append this process made."""
        self.seqs[key] = last_seq
        self.rows = rows

    def forget(self) -> None:
        """Someone else wrote: every remembered head may be stale."""
        self.seqs.clear()
        self.rows = None


_HEADS: weakref.WeakValueDictionary[object, _LogHeads] = weakref.WeakValueDictionary()
"""One :class:`_LogHeads` per open database, alive while a store on it is."""
_HEADS_LOCK = threading.Lock()


def _heads_for(key: object, anchor: object) -> _LogHeads:
    with _HEADS_LOCK:
        heads = _HEADS.get(key)
        if heads is None:
            heads = _HEADS[key] = _LogHeads(anchor)
        return heads


@functools.cache
def ensure_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Give the tables the unique keys every store write relies on (``sql/keys.sql``).

    A workspace's tables are created without them (loading and auditing need
    none); the first store on a database builds them over whatever is loaded,
    once. A database written before the keys moved out of the tables already
    has them as table constraints and is left as it is.
    """
    declared = con.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE database_name = current_database() "
        "AND schema_name = current_schema() AND table_name = 'conversation_entries' AND constraint_type = 'UNIQUE'"
    ).fetchone()[0]
    if not declared:
        run_script(con, "keys.sql")


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
        policy: the harness release to behave as (reads and ``rename``; see
            :class:`~poncho_replay.store.rowstore.RowStore`).
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
        policy: Policy | ReadPolicy = "0.58",
        clock: Clock | None = None,
    ) -> None:
        super().__init__(agent_id, read_cutover=read_cutover, policy=policy, clock=clock)
        self.source = source
        self._owns_connection = connection is None
        try:
            self._con = connection if connection is not None else duckdb.connect(str(path))
            run_script(self._con, "schema.sql")
            ensure_keys(self._con)
            db_path = self._con.execute(
                "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
            ).fetchone()[0]
        except duckdb.Error as exc:
            raise StoreError(f"cannot open DuckDB store at {path}: {exc}") from exc
        # Stores on one file share what they know of its log (and its append lock);
        # an in-memory database is private to its connection.
        if db_path:
            self._heads = _heads_for(os.path.realpath(db_path), None)
        else:
            self._heads = _heads_for(id(self._con), self._con)
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
        params.update(
            {
                c: None if params[c] is None else to_json(params[c])
                for c in CONVERSATION_JSON_COLUMNS
            }
        )
        return {**params, "id": row.id, "agent": row.agent_id}

    # --- conversation rows -------------------------------------------------------------

    def _fetch_row(self, conversation_id: str, *, with_archive: bool) -> ConversationRow | None:
        rows = self._rows("fetch_row", id=conversation_id, with_archive=with_archive)
        return rows[0] if rows else None

    def _insert_row(self, row: ConversationRow) -> None:
        self._run("insert_row", **self._row_params(row))

    def _upsert_row(self, row: ConversationRow) -> None:
        self._run("upsert_row", **self._row_params(row))

    def _retitle_row(self, conversation_id: str, title: str, *, in_blob: bool, now: int) -> bool:
        return bool(
            self._run(
                "retitle_row",
                id=conversation_id,
                agent=self.agent_id,
                title=title,
                in_blob=in_blob,
                now=now,
            )
        )

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
        batch: EntryBatch,
        now: int,
    ) -> int:
        common = {
            "source": self.source,
            "agent_id": agent_id,
            "tenant_id": tenant_id,
            "conversation_id": conversation_id,
            "now": now,
        }
        cur = self._cursor()
        heads = self._heads
        key = (self.source, conversation_id)
        with heads.lock:
            last_seq, rows = heads.seqs.get(key), heads.rows
            if last_seq is not None and rows is not None:
                try:
                    written = self._insert(cur, common, batch, last_seq + 1, rows)
                except _CONFLICTS as exc:
                    self._raise_if_ids_used(conversation_id, batch.ids, exc)
                    written = False  # a seq taken by a writer outside this process
                except duckdb.Error as exc:
                    raise StoreError(
                        f"conversation {conversation_id}: append failed: {exc}"
                    ) from exc
                if written:
                    heads.remember(key, last_seq + len(batch.ids), rows + len(batch.ids))
                    return last_seq + 1
                heads.forget()
            return self._append_reading_max(cur, conversation_id, common, batch)

    def _insert(
        self,
        cur: duckdb.DuckDBPyConnection,
        common: dict[str, Any],
        batch: EntryBatch,
        first: int,
        rows: int | None,
    ) -> bool:
        """One INSERT of the batch from seq ``first``; False if the ``rows`` guard stopped it.

        A single entry has a statement of its own: without the lists to
        unnest it costs DuckDB about a fifth less, and single appends are
        the harness's common case.
        """
        if len(batch.ids) == 1:
            query, params = (
                "insert_entry",
                {
                    "seq": first,
                    "id": batch.ids[0],
                    "type": batch.types[0],
                    "payload": batch.payloads[0],
                },
            )
        else:
            query, params = (
                "insert_entries",
                {
                    "seqs": list(range(first, first + len(batch.ids))),
                    "ids": batch.ids,
                    "types": batch.types,
                    "payloads": batch.payloads,
                },
            )
        written = cur.execute(_queries()[query], {**common, **params, "rows": rows}).fetchone()[0]
        return written > 0

    def _append_reading_max(
        self,
        cur: duckdb.DuckDBPyConnection,
        conversation_id: str,
        common: dict[str, Any],
        batch: EntryBatch,
    ) -> int:
        """Upstream's append: max(seq) + 1 and the insert in one transaction, retried on conflicts.

        Called with the heads lock held; leaves the heads knowing this conversation again.
        """
        last: duckdb.Error | None = None
        for _attempt in range(MAX_APPEND_ATTEMPTS):
            try:
                cur.begin()
                max_seq, rows = self._log_state(cur, conversation_id)
                self._insert(cur, common, batch, max_seq + 1, None)
                cur.commit()
            except _CONFLICTS as exc:
                # The unique constraints rejected the whole batch: a reused id is
                # the caller's error, a taken seq is a race worth retrying.
                last = exc
                _rollback(cur)
                self._raise_if_ids_used(conversation_id, batch.ids, exc)
                continue
            except duckdb.Error as exc:
                _rollback(cur)
                raise StoreError(f"conversation {conversation_id}: append failed: {exc}") from exc
            size = len(batch.ids)
            self._heads.remember((self.source, conversation_id), max_seq + size, rows + size)
            return max_seq + 1
        raise StoreError(
            f"conversation {conversation_id}: append gave up after {MAX_APPEND_ATTEMPTS} attempts "
            f"(concurrent writers kept taking the same seqs): {last}"
        ) from last

    def _raise_if_ids_used(self, conversation_id: str, ids: list[str], exc: duckdb.Error) -> None:
        """After a constraint error: ``BadEntryError`` if the batch reuses stored ids."""
        reused = [r[0] for r in self._run("used_ids", ids=ids)]
        if reused:
            raise duplicate_id_error(conversation_id, reused) from exc

    def _log_state(self, cur: duckdb.DuckDBPyConnection, conversation_id: str) -> tuple[int, int]:
        """(the conversation's max seq, 0 for an empty log; the table's rows), in the caller's transaction."""
        max_seq, rows = cur.execute(
            _queries()["log_state"], {"source": self.source, "conversation_id": conversation_id}
        ).fetchone()
        return max_seq, rows

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
