"""The audit by shards of conversations: one plain function per shard, any engine to run it.

The parity audit is independent per conversation, so a fleet splits into
shards that are audited on their own and concatenated: the result equals
the whole-fleet audit row for row, while each shard's working tables stay
small. The shard key (DESIGN, "Shards") is ``(source, thread root)``, the
thread root being the parent conversation for a thread and the
conversation itself otherwise, so a thread and its parent always share a
shard; the hash is the first 8 bytes of MD5 of ``source || '\\x1f' || root``
as an unsigned integer, modulo the shard count, the same in DuckDB
(:data:`SHARD_SQL`), Python (:func:`shard_of`) and any engine.

:func:`audit_shard` is the unit a distributed engine schedules: a function
from one shard's Arrow tables to its result table, running the single
machine's SQL and Python rules unchanged.

Example:
    >>> shard_of("agent.db", "c1", None, 4) == shard_of("agent.db", "c1", None, 4)
    True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from poncho_replay import audit
from poncho_replay.policy import Policy, resolve_policy
from poncho_replay.profiling import phase
from poncho_replay.sources.ingest import ensure_schema

__all__ = [
    "SHARD_ENTRIES",
    "SHARD_SQL",
    "ShardTables",
    "audit_shard",
    "default_shards",
    "export_shards",
    "parity_by_shards",
    "shard_folders",
    "shard_of",
    "shard_tables",
]

SHARD_ENTRIES = 250_000
"""Entries per shard by default: the audit's working set at this size stays well under 1 GiB."""

SHARD_SQL = "(('0x' || left(md5(source || chr(31) || coalesce(parent_conversation_id, id)), 16))::UBIGINT % $shards)"
"""The shard of a ``conversations`` row, in DuckDB (``$shards`` bound): the twin of :func:`shard_of`."""


def shard_of(source: str, conversation_id: str, parent_conversation_id: str | None, shards: int) -> int:
    """The shard of a conversation: MD5 of ``source`` + U+001F + thread root, first 8 bytes, big-endian."""
    root = parent_conversation_id if parent_conversation_id is not None else conversation_id
    digest = hashlib.md5(f"{source}\x1f{root}".encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") % shards


def default_shards(entries: int, memory_limit_bytes: int | None = None) -> int:
    """How many shards a fleet of ``entries`` needs: one per :data:`SHARD_ENTRIES`, more under a tight memory limit.

    An audit's working set is about 2.5 KiB per entry; with a ``memory_limit``
    the shard is sized to fit a quarter of it.
    """
    per_shard = SHARD_ENTRIES
    if memory_limit_bytes is not None:
        per_shard = max(10_000, min(per_shard, memory_limit_bytes // (4 * 2_560)))
    return max(1, math.ceil(entries / per_shard))


@dataclass(frozen=True)
class ShardTables:
    """One shard's rows of the workbench tables (the schema of ``sql/schema.sql``), as Arrow.

    ``source_facts`` are the facts of the whole source(s) the shard belongs
    to (:func:`poncho_replay.audit.source_facts`), which no shard can see
    alone; ``None`` when the shard's rows are taken for the whole source.
    """

    conversations: pa.Table
    entries: pa.Table
    quarantine: pa.Table
    source_facts: pa.Table | None = None

    @property
    def entry_count(self) -> int:
        """How many entry rows the shard holds."""
        return self.entries.num_rows


def shard_tables(
    con: duckdb.DuckDBPyConnection, shard: int, shards: int, *, source: str | None = None
) -> ShardTables:
    """Read one shard of a workspace's tables (conversations, their entries and quarantined rows).

    With them go the facts of the whole source (:func:`poncho_replay.audit.source_facts`,
    over every shard), so :func:`audit_shard` names the causes the whole-fleet audit names.
    """
    params = {"shard": shard, "shards": shards, "source": source}
    # A cursor of its own: the caller's connection may hold an unfinished result
    # (a fetchone() elsewhere), which DuckDB refuses to run another query beside.
    cur = con.cursor()
    try:
        cur.execute("SET enable_progress_bar = false")  # a cursor starts with DuckDB's defaults
        keys = (
            f"SELECT source, id FROM conversations WHERE {SHARD_SQL} = $shard "
            "AND ($source::VARCHAR IS NULL OR source = $source)"
        )
        tables = [
            cur.sql(f"SELECT x.* FROM {table} AS x SEMI JOIN ({keys}) AS k ON k.source = x.source AND k.id = x.{key}",
                    params=params).to_arrow_table()
            for table, key in (("conversations", "id"), ("conversation_entries", "conversation_id"),
                               ("quarantine", "conversation_id"))
        ]  # fmt: skip
        facts = audit.source_facts(cur, source)
    finally:
        cur.close()
    return ShardTables(*tables, source_facts=facts)


def audit_shard(
    tables: ShardTables,
    policy: Policy = "0.58",
    compare: audit.Comparison | audit.Normaliser = "exact",
    *,
    memory_limit: str | None = None,
) -> pd.DataFrame:
    """The parity audit of one shard: its Arrow tables in, its result rows out (:func:`audit.parity_df`'s columns).

    Runs in a fresh in-memory DuckDB, so it can run anywhere the package is
    installed (a worker process, a Dask task) with nothing shared.
    """
    from poncho_replay.workspace import open_for_audit

    con = open_for_audit(memory_limit).con
    try:
        for table, rows in (
            ("conversations", tables.conversations),
            ("conversation_entries", tables.entries),
            ("quarantine", tables.quarantine),
        ):
            con.register("_shard_rows", rows)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _shard_rows")
            con.unregister("_shard_rows")
        with audit.source_facts_shadowed(con, tables.source_facts):
            return pd.DataFrame(audit.parity_df(con, policy, compare))
    finally:
        con.close()


_TABLES = (("conversations", "id"), ("conversation_entries", "conversation_id"), ("quarantine", "conversation_id"))
"""The workbench tables a shard holds rows of, with the column naming their conversation (fixed names)."""


@contextmanager
def _shard_scope(con: duckdb.DuckDBPyConnection, shard: int) -> Iterator[None]:
    """Shadow the workbench tables on ``con`` by TEMP tables holding one shard's rows.

    Every rule reads the tables by their bare names, which resolve to the
    TEMP copies first, so the whole-fleet audit runs unchanged on the
    shard: the same result as :func:`audit_shard` on :func:`shard_tables`,
    without the round trip through Arrow and a fresh database (no re-validated
    JSON, no rebuilt constraints, the rules installed once).
    """
    try:
        with phase("read shard"):
            for table, key in _TABLES:
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT x.* FROM main.{table} AS x "
                    f"SEMI JOIN temp._shard_keys AS k ON k.source = x.source AND k.id = x.{key} AND k.shard = $shard",
                    {"shard": shard},
                )
        yield
    finally:
        for table, _ in _TABLES:
            con.execute(f"DROP TABLE IF EXISTS temp.{table}")


def iter_shard_results(
    con: duckdb.DuckDBPyConnection,
    policy: Policy,
    compare: audit.Comparison | audit.Normaliser,
    shards: int,
    *,
    source: str | None = None,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Each shard's audit, one after another, as it finishes (results can be written as they come).

    The rules are installed once, the facts of each whole source
    (:func:`poncho_replay.audit.source_facts`) and each conversation's shard
    computed once; each shard's rows are then copied to TEMP tables that
    shadow the workbench tables on ``con`` while that shard is audited (never
    across a ``yield``), and every shard reads the whole source's facts.
    """
    with phase("install rules"):
        audit.install(con, compare if callable(compare) else None)
    with phase("facts of the whole source"):
        facts = audit.source_facts(con, source)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _shard_keys AS SELECT source, id, {SHARD_SQL} AS shard "
            "FROM main.conversations WHERE $source::VARCHAR IS NULL OR source = $source",
            {"shards": shards, "source": source},
        )
        for shard in range(shards):
            with phase(f"shard {shard + 1}/{shards}"), audit.source_facts_shadowed(con, facts), \
                    _shard_scope(con, shard):
                result = pd.DataFrame(audit.parity_rows(con, policy, compare, source))
            yield shard, result
    finally:
        con.execute("DROP TABLE IF EXISTS temp._shard_keys")


def parity_by_shards(
    con: duckdb.DuckDBPyConnection,
    policy: Policy = "0.58",
    compare: audit.Comparison | audit.Normaliser = "exact",
    *,
    source: str | None = None,
    shards: int,
    on_shard: Callable[[int, int], None] = lambda done, total: None,
) -> audit.ParityReport:
    """The whole-fleet audit computed shard by shard: equal to :func:`audit.parity_df`, row for row.

    ``on_shard(done, total)`` is called as each shard finishes (a progress bar).
    """
    if shards < 1:
        raise ValueError(f"shards must be at least 1, not {shards}")
    parts = []
    for done, (_, result) in enumerate(iter_shard_results(con, policy, compare, shards, source=source), 1):
        parts.append(result)
        on_shard(done, shards)
    frame = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    report = audit.ParityReport(frame.sort_values(["source", "conversation_id"], ignore_index=True))
    report.attrs["policy"] = resolve_policy(policy).describe()
    return report


SHARD_FOLDER = "shard={shard}"
"""A sharded export's folder per shard (hive style): each one is a plain export folder of its own."""


def export_shards(
    con: duckdb.DuckDBPyConnection, path: Path, shards: int, *, source: str | None = None
) -> Path:
    """Write one source as ``path/shard=K/{conversations,entries}.parquet``, split by the shard key.

    Each shard folder is self-contained (a worker reads its own), and the
    whole folder still loads as a plain export.
    """
    from poncho_replay.sources.export import write_export

    if shards < 1:
        raise ValueError(f"shards must be at least 1, not {shards}")
    path.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        tables = shard_tables(con, shard, shards, source=source)
        part = duckdb.connect()
        try:
            ensure_schema(part)
            for table, rows in (("conversations", tables.conversations), ("conversation_entries", tables.entries)):
                part.register("_shard_rows", rows)
                part.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _shard_rows")
                part.unregister("_shard_rows")
            write_export(part, path / SHARD_FOLDER.format(shard=shard), "parquet")
        finally:
            part.close()
    return path


def shard_folders(path: Path) -> list[Path]:
    """The shard folders of a sharded export, in shard order (empty for a plain export)."""
    found = [p for p in path.glob("shard=*") if p.is_dir() and p.name.split("=", 1)[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("=", 1)[1]))
