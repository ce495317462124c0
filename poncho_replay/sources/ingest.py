"""The one ingest path every reader shares: stage raw batches, check in SQL, swap in.

Readers only move rows: they hand Arrow batches of the source's columns, as
text, to a :class:`Stager`. Validation, quarantine, duplicate marking and the
atomic replace of a source's rows all happen set-based in DuckDB
(``sql/validate.sql``, ``sql/ingest.sql``), so a million-row source never
becomes a million Python objects, and every reader obeys the same rules.
"""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from poncho_replay.errors import BadEntryError, SourceError
from poncho_replay.sql import read_sql, run_script

__all__ = ["LoadSummary", "Stager", "ensure_schema", "progress_bar"]

CONVERSATION_COLUMNS = (
    "id", "agent_id", "tenant_id", "owner_id", "title", "data", "message_count", "created_at", "updated_at",
    "tool_result_archive", "harness_messages", "continuation_messages", "parent_conversation_id",
    "has_pending_approvals", "channel_meta", "parent_message_id",
)  # fmt: skip
ENTRY_COLUMNS = (
    "seq",
    "id",
    "agent_id",
    "tenant_id",
    "conversation_id",
    "type",
    "payload",
    "created_at",
)
NULL_SUFFIX = "__null"
"""A reader may send ``<col>__null`` booleans beside ``<col>`` when its driver cannot carry NULLs faithfully."""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the workbench tables, the validation macros and the anomalies view."""
    for name in ("schema.sql", "validate.sql", "anomalies.sql"):
        run_script(con, name)


@cache
def _statements() -> dict[str, str]:
    """The named blocks of ``ingest.sql`` (``-- name: x`` headers)."""
    parts = re.split(r"^-- name: (\w+)\s*$", read_sql("ingest.sql"), flags=re.MULTILINE)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


@dataclass
class LoadSummary:
    """What one ``load()`` did: rows read and loaded per table, quarantine and anomaly counts."""

    source: str
    kind: str
    read: dict[str, int] = field(default_factory=dict)
    loaded: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready) of every count."""
        return {
            "source": self.source,
            "kind": self.kind,
            "read": dict(self.read),
            "loaded": dict(self.loaded),
            "quarantined": dict(self.quarantined),
            "anomalies": dict(self.anomalies),
        }

    def rows(self) -> list[tuple[str, str, int]]:
        """``(section, name, count)`` lines, the table both renderings show."""
        out = [("read", t, n) for t, n in self.read.items()]
        out += [("loaded", t, n) for t, n in self.loaded.items()]
        out += [("quarantined", r, n) for r, n in self.quarantined.items()]
        out += [("anomaly", k, n) for k, n in self.anomalies.items()]
        return out

    def __str__(self) -> str:
        lines = [f"load {self.kind} {self.source}"]
        width = max((len(f"{s} {n}") for s, n, _ in self.rows()), default=10)
        lines += [f"  {f'{s} {n}':<{width}}  {c:>10,}" for s, n, c in self.rows()]
        if not self.quarantined:
            lines.append("  nothing quarantined")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        try:
            body = "".join(
                f"<tr><td>{html.escape(s)}</td><td>{html.escape(n)}</td><td style='text-align:right'>{c:,}</td></tr>"
                for s, n, c in self.rows()
            )
            return (
                f"<table><caption>load {html.escape(self.kind)} {html.escape(self.source)}</caption>"
                f"<tr><th></th><th></th><th>rows</th></tr>{body}</table>"
            )
        except Exception:  # noqa: BLE001 - a notebook display must never raise
            return f"<pre>{html.escape(str(self))}</pre>"


class Stager:
    """Collects a source's raw rows in temp tables, then checks and swaps them in.

    Example:
        >>> stager = Stager(con)
        >>> stager.add("conversations", arrow_batch)          # doctest: +SKIP
        >>> summary = stager.finish("my.db", "sqlite", strict=False)  # doctest: +SKIP
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._next = {"conversations": 0, "conversation_entries": 0}
        ensure_schema(con)
        con.execute(_statements()["stage"])

    def add(self, table: str, batch: pa.RecordBatch | pa.Table) -> int:
        """Stage one batch of raw rows of ``table`` (text columns, harness names); returns its size."""
        n = batch.num_rows
        if n == 0:
            return 0
        cols = CONVERSATION_COLUMNS if table == "conversations" else ENTRY_COLUMNS
        names = set(batch.schema.names)
        # row_id: the staged row's position, the key the checks join back on (an
        # export carries its rows' original ordinals, which need not be unique;
        # other sources use the position as ordinal too).
        row_id = pa.array(np.arange(self._next[table], self._next[table] + n))
        ordinal = row_id
        if "ordinal" in names:  # broken export lines have none: negative positions cannot collide
            ordinal = pc.coalesce(
                batch.column("ordinal").cast(pa.int64()), pc.negate(pc.add(row_id, 1))
            )
        arrays: dict[str, pa.Array] = {"row_id": row_id, "ordinal": ordinal}
        for col in cols:
            if col not in names:
                continue
            values = batch.column(col).cast(pa.string())
            if col + NULL_SUFFIX in names:
                values = pc.if_else(
                    batch.column(col + NULL_SUFFIX).cast(pa.bool_()),
                    pa.scalar(None, pa.string()),
                    values,
                )
            arrays[col] = values
        self._next[table] += n
        staged = pa.table(arrays)  # noqa: F841  (read by DuckDB's replacement scan below)
        stage = "_stage_conversations" if table == "conversations" else "_stage_entries"
        self.con.execute(f"INSERT INTO {stage} BY NAME SELECT * FROM staged")
        return n

    def finish(self, source: str, kind: str, *, strict: bool = False) -> LoadSummary:
        """Check every staged row, then replace ``source``'s rows in one transaction."""
        st = _statements()
        con = self.con
        try:
            con.execute(st["check_conversations"])
            con.execute(st["check_entries"])
            if strict:
                bad = con.execute(st["first_problem"]).fetchone()
                if bad is not None:
                    table, cid, seq, reason, fld = bad
                    raise BadEntryError(
                        f"{reason} in source {source!r}, table {table}",
                        field=fld,
                        conversation_id=cid,
                        seq=int(seq)
                        if seq is not None and str(seq).lstrip("-").isdigit()
                        else None,
                    )
            params = {"source": source}
            con.execute("BEGIN TRANSACTION")
            try:
                for name in ("clear_source", "clear_entries", "clear_quarantine"):
                    con.execute(st[name], params)
                for name in ("insert_conversations", "insert_entries", "insert_quarantine"):
                    con.execute(st[name], params)
                con.execute("COMMIT")
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                raise SourceError(f"could not store the rows of {source!r}: {exc}") from exc
            summary = LoadSummary(source=source, kind=kind)
            for table, read, loaded in con.execute(st["counts"]).fetchall():
                summary.read[table] = read
                summary.loaded[table] = loaded
            summary.quarantined = dict(con.execute(st["quarantine_counts"], params).fetchall())
            summary.anomalies = dict(con.execute(st["anomaly_counts"], params).fetchall())
            return summary
        finally:
            con.execute(st["drop_stage"])


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


@contextmanager
def progress_bar(
    enabled: bool | None, total: int | None, description: str
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a rich bar when enabled (default: a terminal, not a notebook)."""
    if enabled is None:
        enabled = sys.stderr.isatty() and not _in_notebook()
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
