"""Reader for the harness's PostgreSQL tables (production), streamed through psycopg 3.

One ``REPEATABLE READ READ ONLY`` transaction reads both tables, so the
conversations and their entries come from one snapshot even while the
harness keeps committing turns. A server-side cursor is fetched in batches
that become Arrow arrays, so memory stays bounded by the batch size.

JSON columns: the harness binds ``JSON.stringify(value)`` to JSONB through
postgres.js, so production rows hold a JSONB *string scalar* whose text is
the document (SPEC §4, "On PostgreSQL"); rows written by other tools hold
JSONB objects. Each value is unwrapped on the server row by row
(``#>> '{}'`` for a string scalar, the value's text otherwise) and parsed
on the client by the shared ingest, never with ``::jsonb`` on the server,
which rejects the U+0000 and lone surrogates a string scalar can hold.
Pick the schema with the libpq ``options`` parameter, e.g.
``postgresql://user@host/db?options=-csearch_path%3Dmyschema``.

The URL's password never leaves this module: labels, errors and logs carry
:func:`redact_url`'s version, and driver messages are scrubbed before they
are re-raised.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import pyarrow as pa

from poncho_replay.errors import SourceError
from poncho_replay.sources.ingest import CONVERSATION_COLUMNS, ENTRY_COLUMNS, Stager

__all__ = ["count_rows_postgres", "is_postgres_url", "read_postgres", "redact_url"]

BATCH_ROWS = 20_000


def is_postgres_url(source: str) -> bool:
    """True for ``postgresql://`` and ``postgres://`` URLs."""
    return source.startswith(("postgresql://", "postgres://"))


def redact_url(url: str) -> str:
    """The URL with any password (in the netloc or a ``password=`` parameter) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostinfo}"
    query = urlencode(
        [
            (k, "***" if k == "password" else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="/",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [v for k, v in parse_qsl(parts.query) if k == "password" and v]
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    return found


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def read_postgres(
    url: str,
    stager: Stager,
    *,
    agent_id: str | None = None,
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    """Stage every conversation and entry row of the harness tables behind ``url``."""
    import psycopg

    secrets = _secrets(url)
    label = redact_url(url)
    try:
        conn = psycopg.connect(url)
    except psycopg.Error as exc:
        # Chaining would print the driver's message unscrubbed; keep only ours.
        raise SourceError(f"cannot connect to {label}: {_scrub(str(exc), secrets)}") from None
    try:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            tables = {r[0] for r in conn.execute(_TABLES_SQL).fetchall()}
            if "conversations" not in tables:
                raise SourceError(
                    f"{label} has no conversations table in its search_path: not a harness database"
                )
            present = dict(conn.execute(_COLUMNS_SQL, ("conversations",)).fetchall())
            select = ", ".join(_column(c, present) for c in CONVERSATION_COLUMNS)
            where = " WHERE agent_id = %s" if agent_id is not None else ""
            params = (agent_id,) if agent_id is not None else ()
            _stream(
                conn,
                f"SELECT {select} FROM conversations{where} ORDER BY id",
                params,
                stager,
                "conversations",
                CONVERSATION_COLUMNS,
                advance,
            )
            if "conversation_entries" in tables:
                present = dict(conn.execute(_COLUMNS_SQL, ("conversation_entries",)).fetchall())
                select = ", ".join(_column(c, present) for c in ENTRY_COLUMNS)
                where = (
                    " WHERE conversation_id IN (SELECT id FROM conversations WHERE agent_id = %s)"
                    if params
                    else ""
                )
                sql = f"SELECT {select} FROM conversation_entries{where} ORDER BY conversation_id, seq, id"
                _stream(conn, sql, params, stager, "conversation_entries", ENTRY_COLUMNS, advance)
    except SourceError:
        raise
    except psycopg.Error as exc:
        raise SourceError(f"cannot read {label}: {_scrub(str(exc), secrets)}") from None
    finally:
        conn.close()


def count_rows_postgres(url: str) -> int | None:
    """Conversations + entries behind ``url`` (the shard count's and progress bar's total), or None.

    A count of its own, outside the read's snapshot: it sizes the work, the
    read decides what is loaded. None when the database cannot be read
    (the read then says why).
    """
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.read_only = True
            tables = {r[0] for r in conn.execute(_TABLES_SQL).fetchall()}
            if "conversations" not in tables:
                return None
            counted = [t for t in ("conversations", "conversation_entries") if t in tables]
            return sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in counted)
    except psycopg.Error:
        return None


_TABLES_SQL = (
    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
)
_COLUMNS_SQL = (
    "SELECT column_name, data_type FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = %s"
)


def _column(name: str, present: dict[str, str]) -> str:
    """One column as text: JSON unwrapped row by row, timestamps as ISO text, absent ones NULL."""
    kind = present.get(name)
    if kind is None:
        return f"NULL::text AS {name}"  # an older layout: the ingest derives it from data
    if kind in ("jsonb", "json"):
        typeof = "jsonb_typeof" if kind == "jsonb" else "json_typeof"
        return f"CASE WHEN {typeof}({name}) = 'string' THEN {name} #>> '{{}}' ELSE {name}::text END AS {name}"
    if kind.startswith("timestamp"):
        # ISO text with microseconds, whatever the session's DateStyle; UTC (SPEC §4).
        return f"to_char({name}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') AS {name}"
    return f"{name}::text AS {name}"


def _stream(
    conn,
    sql: str,
    params: tuple,
    stager: Stager,
    table: str,
    columns: tuple[str, ...],
    advance: Callable[[int], None],
) -> None:
    with conn.cursor(name=f"poncho_replay_{table}") as cur:
        cur.itersize = BATCH_ROWS
        cur.execute(sql, params or None)
        while rows := cur.fetchmany(BATCH_ROWS):
            arrays = [pa.array(col, pa.string()) for col in zip(*rows)]
            advance(stager.add(table, pa.table(arrays, names=list(columns))))
