"""The harness's own on-disk layout (SPEC §4), to write databases a loader must read.

Tests, the simulator and benchmarks need databases that look exactly like
the ones ``@poncho-ai/harness`` writes: the same DDL per migration (1-8),
the same ``_migrations`` rows, JSON as TEXT (SQLite) or JSONB (PostgreSQL),
ISO-8601 text timestamps in SQLite, and both ``conversations.data``
layouts (heavy fields in their own columns after migration 3, or still
inside ``data`` before it). Stop at ``version=7`` for a database from
before 0.56 (no ``conversation_entries`` table).

Migrations 1-3 and 8 follow the harness source (``storage/schema.ts``);
4-7 are reconstructed from the 0.58.0 sample database's final schema
(the columns and index they add), which is all a reader can observe.

Example:
    >>> import sqlite3
    >>> con = sqlite3.connect(":memory:")
    >>> create_sqlite(con, version=8)
    >>> write_sqlite(con, [conv_dict], {conv_dict["conversationId"]: entry_dicts})  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from poncho_replay._js import json_dumps
from poncho_replay.store.base import DEFAULT_OWNER, DEFAULT_TENANT

Dialect = Literal["sqlite", "postgresql"]
JsonbShape = Literal["string", "object", "mixed"]
"""How JSONB values are written: ``"string"`` as the harness does (postgres.js
binds ``JSON.stringify`` text, stored as a JSONB string scalar), ``"object"``
as other tools do, ``"mixed"`` alternating row by row (objects on even rows)."""
JsonDict = dict[str, Any]

__all__ = [
    "HEAVY_FIELDS",
    "MIGRATION_NAMES",
    "conversation_row",
    "create_postgres",
    "create_sqlite",
    "entry_row",
    "iso_ms",
    "migration_statements",
    "write_postgres",
    "write_sqlite",
]

MIGRATION_NAMES: dict[int, str] = {
    1: "initial_schema",
    2: "separate_tool_result_archive",
    3: "extract_heavy_fields_from_data_blob",
    4: "promote_summary_fields_to_columns",
    5: "add_reminder_recurrence",
    6: "add_thread_anchor",
    7: "fix_reminder_scheduled_at_precision",
    8: "conversation_entries",
}
HEAVY_FIELDS: dict[str, str] = {
    "_toolResultArchive": "tool_result_archive",
    "_harnessMessages": "harness_messages",
    "_continuationMessages": "continuation_messages",
}
"""Conversation keys that migration 3 moved out of ``data`` -> their column."""


def migration_statements(dialect: Dialect, version: int) -> list[str]:
    """The DDL one harness migration runs, for ``"sqlite"`` or ``"postgresql"``."""
    json_t = "TEXT" if dialect == "sqlite" else "JSONB"
    blob_t = "BLOB" if dialect == "sqlite" else "BYTEA"
    auto_ts = "DEFAULT (datetime('now'))" if dialect == "sqlite" else "DEFAULT (NOW())"
    if version == 1:
        return [
            f"""CREATE TABLE IF NOT EXISTS conversations (
          id TEXT PRIMARY KEY,
          agent_id TEXT NOT NULL,
          tenant_id TEXT NOT NULL DEFAULT '__default__',
          owner_id TEXT NOT NULL DEFAULT 'local-owner',
          title TEXT NOT NULL DEFAULT 'New conversation',
          data {json_t} NOT NULL,
          message_count INTEGER NOT NULL DEFAULT 0,
          created_at TIMESTAMP {auto_ts},
          updated_at TIMESTAMP {auto_ts}
        )""",
            """CREATE INDEX IF NOT EXISTS idx_conversations_lookup
          ON conversations (agent_id, tenant_id, owner_id, updated_at DESC)""",
            f"""CREATE TABLE IF NOT EXISTS memory (
          agent_id TEXT NOT NULL,
          tenant_id TEXT NOT NULL DEFAULT '__default__',
          content TEXT NOT NULL DEFAULT '',
          updated_at TIMESTAMP {auto_ts},
          PRIMARY KEY (agent_id, tenant_id)
        )""",
            f"""CREATE TABLE IF NOT EXISTS todos (
          agent_id TEXT NOT NULL,
          conversation_id TEXT NOT NULL,
          data {json_t} NOT NULL,
          PRIMARY KEY (agent_id, conversation_id)
        )""",
            f"""CREATE TABLE IF NOT EXISTS reminders (
          id TEXT PRIMARY KEY,
          agent_id TEXT NOT NULL,
          tenant_id TEXT NOT NULL DEFAULT '__default__',
          owner_id TEXT,
          conversation_id TEXT NOT NULL,
          task TEXT NOT NULL,
          status TEXT NOT NULL DEFAULT 'pending',
          scheduled_at REAL NOT NULL,
          timezone TEXT,
          created_at TIMESTAMP {auto_ts}
        )""",
            """CREATE INDEX IF NOT EXISTS idx_reminders_lookup
          ON reminders (agent_id, tenant_id, status, scheduled_at)""",
            f"""CREATE TABLE IF NOT EXISTS vfs_entries (
          agent_id TEXT NOT NULL,
          tenant_id TEXT NOT NULL DEFAULT '__default__',
          path TEXT NOT NULL,
          parent_path TEXT NOT NULL,
          type TEXT NOT NULL DEFAULT 'file',
          content {blob_t},
          symlink_target TEXT,
          mime_type TEXT,
          size INTEGER NOT NULL DEFAULT 0,
          mode INTEGER NOT NULL DEFAULT 438,
          created_at TIMESTAMP {auto_ts},
          updated_at TIMESTAMP {auto_ts},
          PRIMARY KEY (agent_id, tenant_id, path)
        )""",
            """CREATE INDEX IF NOT EXISTS idx_vfs_parent
          ON vfs_entries (agent_id, tenant_id, parent_path)""",
        ]
    if version == 2:
        return [f"ALTER TABLE conversations ADD COLUMN tool_result_archive {json_t}"]
    if version == 3:
        # The harness also moves existing heavy fields out of `data` here; a
        # freshly created database has no rows, so only the columns matter.
        return [
            f"ALTER TABLE conversations ADD COLUMN harness_messages {json_t}",
            f"ALTER TABLE conversations ADD COLUMN continuation_messages {json_t}",
        ]
    if version == 4:
        return [
            "ALTER TABLE conversations ADD COLUMN parent_conversation_id TEXT",
            "ALTER TABLE conversations ADD COLUMN has_pending_approvals INTEGER NOT NULL DEFAULT 0",
            f"ALTER TABLE conversations ADD COLUMN channel_meta {json_t}",
        ]
    if version == 5:
        return [
            "ALTER TABLE reminders ADD COLUMN recurrence TEXT",
            "ALTER TABLE reminders ADD COLUMN occurrence_count INTEGER NOT NULL DEFAULT 0",
        ]
    if version == 6:
        return [
            "ALTER TABLE conversations ADD COLUMN parent_message_id TEXT",
            """CREATE INDEX IF NOT EXISTS idx_conversations_thread_anchor
         ON conversations (parent_conversation_id, parent_message_id)
         WHERE parent_message_id IS NOT NULL""",
        ]
    if version == 7:
        # SQLite's REAL is already a double; PostgreSQL's REAL is 4 bytes.
        return (
            []
            if dialect == "sqlite"
            else ["ALTER TABLE reminders ALTER COLUMN scheduled_at TYPE DOUBLE PRECISION"]
        )
    if version == 8:
        return [
            f"""CREATE TABLE IF NOT EXISTS conversation_entries (
          seq INTEGER NOT NULL,
          id TEXT NOT NULL UNIQUE,
          agent_id TEXT NOT NULL,
          tenant_id TEXT NOT NULL DEFAULT '__default__',
          conversation_id TEXT NOT NULL,
          type TEXT NOT NULL,
          payload {json_t} NOT NULL,
          created_at TIMESTAMP {auto_ts},
          UNIQUE (conversation_id, seq)
        )""",
            """CREATE INDEX IF NOT EXISTS idx_conversation_entries_seq
          ON conversation_entries (conversation_id, seq)""",
        ]
    raise ValueError(f"the harness has no migration {version}")


_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS _migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
      )"""


def create_sqlite(target: str | Path | sqlite3.Connection, *, version: int = 8) -> None:
    """Create the harness tables in a SQLite file, as migrations 1..``version`` would."""
    con = _sqlite(target)
    try:
        con.execute(_MIGRATIONS_TABLE)
        for v in range(1, version + 1):
            for stmt in migration_statements("sqlite", v):
                con.execute(stmt)
            con.execute(
                "INSERT INTO _migrations (version, name) VALUES (?, ?)", (v, MIGRATION_NAMES[v])
            )
        con.commit()
    finally:
        if not isinstance(target, sqlite3.Connection):
            con.close()


def write_sqlite(
    target: str | Path | sqlite3.Connection,
    conversations: Iterable[JsonDict],
    entries: Mapping[str, Sequence[JsonDict]] | None = None,
    *,
    agent_id: str = "poncho-agent",
    heavy_in_data: bool | None = None,
) -> None:
    """Insert harness conversation dicts and stored entry dicts the way the harness does.

    Args:
        target: a path or an open ``sqlite3`` connection with the harness tables.
        conversations: conversation objects in the harness JSON shape.
        entries: stored entries (with ``seq``/``createdAt``) per conversation id.
        agent_id: the ``conversations.agent_id`` value (call again per agent).
        heavy_in_data: keep ``_harnessMessages`` & co inside ``data`` (the
            pre-migration-3 layout). ``None`` decides from the table's columns.
    """
    con = _sqlite(target)
    try:
        # Committed inside the block, before the cache shrinks back: nothing spills.
        with _page_cache(con, _WRITE_CACHE_KIB):
            _insert_rows(con, conversations, entries, agent_id=agent_id, heavy_in=heavy_in_data)
            con.commit()
    finally:
        if not isinstance(target, sqlite3.Connection):
            con.close()


_WRITE_CACHE_KIB = 128 * 1024
"""SQLite page cache while :func:`write_sqlite` inserts (KiB): entry ids are random
UUIDs, so each insert lands on a random page of the ``id`` index; with SQLite's
2 MiB default a 1M-entry file spills and re-reads those pages all along."""


@contextmanager
def _page_cache(con: sqlite3.Connection, kib: int) -> Iterator[None]:
    """At least ``kib`` KiB of page cache on ``con`` for the block, then the caller's setting back.

    ``cache_size`` belongs to the connection, not the file: nothing of it is
    written into the database.
    """
    (before,) = con.execute("PRAGMA cache_size").fetchone()
    (page_size,) = con.execute("PRAGMA page_size").fetchone()
    current_kib = -before if before < 0 else before * page_size // 1024
    con.execute(f"PRAGMA cache_size = {-max(current_kib, kib)}")
    try:
        yield
    finally:
        con.execute(f"PRAGMA cache_size = {int(before)}")


def _insert_rows(
    con: sqlite3.Connection,
    conversations: Iterable[JsonDict],
    entries: Mapping[str, Sequence[JsonDict]] | None,
    *,
    agent_id: str,
    heavy_in: bool | None,
) -> None:
    """:func:`write_sqlite`'s inserts, in the caller's transaction."""
    cols = [r[1] for r in con.execute("PRAGMA table_info(conversations)")]
    in_data = "harness_messages" not in cols if heavy_in is None else heavy_in
    owners: dict[str, tuple[str, str]] = {}
    names: list[str] = []

    def conversation_values() -> Iterator[list[Any]]:
        for conv in conversations:
            row = conversation_row(conv, agent_id=agent_id, heavy_in_data=in_data)
            owners[row["id"]] = (row["owner_id"], row["tenant_id"])
            if not names:
                names.extend(k for k in row if k in cols)
            yield [row[k] for k in names]

    # One statement per table over a generator: a fleet of a million entries
    # is written without a Python list of its rows or a statement per conversation.
    rows = conversation_values()
    first = next(rows, None)
    if first is not None:
        columns, marks = ", ".join(names), ", ".join("?" * len(names))
        insert = f"INSERT INTO conversations ({columns}) VALUES ({marks})"
        con.executemany(insert, itertools.chain([first], rows))

    def entry_values() -> Iterator[tuple[Any, ...]]:
        for cid, items in (entries or {}).items():
            owner, tenant = owners.get(cid, (DEFAULT_OWNER, DEFAULT_TENANT))
            for e in items:
                yield _entry_values(cid, e, owner, tenant)

    if entries:  # a database from before migration 8 has no entries table to prepare against
        con.executemany(
            "INSERT INTO conversation_entries (seq, id, agent_id, tenant_id, conversation_id, type, "
            "payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            entry_values(),
        )


def create_postgres(conn: Any, schema: str, *, version: int = 8) -> None:
    """Create ``schema`` and the harness tables in it (migrations 1..``version``) via psycopg."""
    from psycopg import sql

    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        cur.execute(_MIGRATIONS_TABLE)
        for v in range(1, version + 1):
            for stmt in migration_statements("postgresql", v):
                cur.execute(stmt)
            cur.execute(
                "INSERT INTO _migrations (version, name) VALUES (%s, %s)", (v, MIGRATION_NAMES[v])
            )
    conn.commit()


def write_postgres(
    conn: Any,
    schema: str,
    conversations: Iterable[JsonDict],
    entries: Mapping[str, Sequence[JsonDict]] | None = None,
    *,
    agent_id: str = "poncho-agent",
    heavy_in_data: bool = False,
    jsonb: JsonbShape = "string",
) -> None:
    """The PostgreSQL twin of :func:`write_sqlite` (JSONB columns, TIMESTAMP values).

    ``jsonb`` picks the shape of every JSONB value (see :data:`JsonbShape`);
    the default is what the harness itself writes (SPEC §4, "On
    PostgreSQL"). Objects cannot hold U+0000 or lone surrogates, so rows
    holding them fail in PostgreSQL under ``"object"``, as they would for any
    tool.
    """
    from psycopg import sql

    json_cols = {
        "data",
        "tool_result_archive",
        "harness_messages",
        "continuation_messages",
        "channel_meta",
    }
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'conversations'",
            (schema,),
        )
        cols = {r[0] for r in cur.fetchall()}
        owners: dict[str, tuple[str, str]] = {}
        for i, conv in enumerate(conversations):
            row = conversation_row(conv, agent_id=agent_id, heavy_in_data=heavy_in_data)
            owners[row["id"]] = (row["owner_id"], row["tenant_id"])
            row = {k: v for k, v in row.items() if k in cols}
            values = [_pg_json(v, jsonb, i) if k in json_cols else v for k, v in row.items()]
            cur.execute(
                sql.SQL("INSERT INTO conversations ({}) VALUES ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, row)),
                    sql.SQL(", ").join(sql.Placeholder() * len(row)),
                ),
                values,
            )
        for cid, items in (entries or {}).items():
            owner, tenant = owners.get(cid, (DEFAULT_OWNER, DEFAULT_TENANT))
            rows = [entry_row(cid, e, agent_id=owner, tenant_id=tenant) for e in items]
            cur.executemany(
                "INSERT INTO conversation_entries (seq, id, agent_id, tenant_id, conversation_id, type, payload, "
                "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(*list(r.values())[:6], _pg_json(r["payload"], jsonb, i), r["created_at"]) for i, r in enumerate(rows)],
            )
    conn.commit()


def conversation_row(conv: JsonDict, *, agent_id: str, heavy_in_data: bool = False) -> JsonDict:
    """The ``conversations`` row the harness's create/update would store for ``conv``."""
    data = dict(conv)
    heavy: dict[str, str | None] = {}
    for key, col in HEAVY_FIELDS.items():
        value = conv.get(key)
        # The harness writes a column only for a truthy value (`x ? JSON.stringify(x) : null`).
        heavy[col] = None if heavy_in_data or value is None else _js_json(value)
        if not heavy_in_data:
            data.pop(key, None)
    approvals = conv.get("pendingApprovals")
    return {
        "id": conv["conversationId"],
        "agent_id": agent_id,
        "tenant_id": conv.get("tenantId") or DEFAULT_TENANT,
        "owner_id": conv.get("ownerId") or DEFAULT_OWNER,
        "title": conv.get("title") or "New conversation",
        "data": _js_json(data),
        "message_count": len(conv.get("messages") or []),
        "created_at": iso_ms(conv["createdAt"]),
        "updated_at": iso_ms(conv["updatedAt"]),
        **heavy,
        "parent_conversation_id": conv.get("parentConversationId"),
        "has_pending_approvals": 1 if approvals else 0,
        "channel_meta": None if conv.get("channelMeta") is None else _js_json(conv["channelMeta"]),
        "parent_message_id": conv.get("parentMessageId"),
    }


_ENTRY_COLUMNS: tuple[str, ...] = (
    "seq", "id", "agent_id", "tenant_id", "conversation_id", "type", "payload", "created_at"
)  # fmt: skip
"""The ``conversation_entries`` columns :func:`entry_row` fills, in its order."""


def entry_row(
    conversation_id: str, entry: JsonDict, *, agent_id: str, tenant_id: str = DEFAULT_TENANT
) -> JsonDict:
    """The ``conversation_entries`` row for a stored entry: payload = the entry minus seq/createdAt."""
    values = _entry_values(conversation_id, entry, agent_id, tenant_id)
    return dict(zip(_ENTRY_COLUMNS, values, strict=True))


def _entry_values(
    conversation_id: str, entry: JsonDict, agent_id: str, tenant_id: str
) -> tuple[Any, ...]:
    """:func:`entry_row`'s values as a tuple, what ``executemany`` binds (no dict per row)."""
    payload = {k: v for k, v in entry.items() if k != "seq" and k != "createdAt"}
    return (
        entry["seq"],
        entry["id"],
        agent_id,
        tenant_id,
        conversation_id,
        entry["type"],
        _js_json(payload),
        iso_ms(entry["createdAt"]),
    )


def iso_ms(epoch_ms: float) -> str:
    """JavaScript's ``new Date(ms).toISOString()``: ``2026-03-04T13:30:01.558Z``."""
    ms = int(epoch_ms)
    return _iso_second(ms // 1000) + f"{ms % 1000:03d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_second(epoch_s: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.`` of a whole second, cached: a fleet's entries share their seconds."""
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""``json.dumps(ensure_ascii=False, separators=(",", ":"))``, built once instead of per call."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def _js_json(value: Any) -> str:
    """``JSON.stringify``: compact separators, non-ASCII kept as is, lone surrogates escaped.

    Text without any surrogate code point is final as encoded; the rare
    rest goes through :func:`poncho_replay._js.json_dumps`, the one owner of
    the escaping rule.
    """
    text = _JSON.encode(value)
    if _SURROGATE.search(text) is None:
        return text
    return json_dumps(value, separators=(",", ":"))


def _pg_json(value: str | None, shape: JsonbShape, row: int) -> Any:
    """A JSON text bound for a JSONB column: a string scalar holding it, or the parsed object."""
    from psycopg.types.json import Jsonb

    if value is None:
        return None
    if shape == "object" or (shape == "mixed" and row % 2 == 0):
        return Jsonb(json.loads(value))
    return Jsonb(value)  # psycopg encodes the str as a JSON string: a JSONB string scalar


def _sqlite(target: str | Path | sqlite3.Connection) -> sqlite3.Connection:
    return target if isinstance(target, sqlite3.Connection) else sqlite3.connect(target)
