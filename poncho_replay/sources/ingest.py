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
from poncho_replay.profiling import phase
from poncho_replay.sql import CONVERSATION_JSON_COLUMNS, ENTRY_JSON_COLUMNS, read_sql, run_script

__all__ = ["LoadSummary", "Stager", "decode_utf8", "ensure_schema", "progress_bar"]

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
PROBLEM = "problem_reason"
PROBLEM_FIELD = "problem_field"
"""A reader may send these two text columns for rows it already knows are bad
(e.g. a BLOB where the harness stores TEXT): the row is quarantined with that
reason and field, whatever else it holds."""
SOURCE_ROW = "source_row"
SOURCE_TEXT = "source_text"
"""A file reader may send where each row sits (``line 12``, ``row 12``) and, for a
row its columns cannot hold (a line that is not JSON), the original text: a
quarantined row then keeps them as its ``row_key`` and ``raw``."""

# A JSON escape as JSON.stringify writes it for a lone surrogate, scanned so that
# an escaped backslash (``\\``) is consumed first and a valid pair is kept.
_SURROGATE_ESCAPES = re.compile(
    r"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)
_SURROGATE_HINT = r"\\u[dD][89a-fA-F]"  # RE2: rows that may hold one (the exact scan runs on those only)


def ensure_schema(con: duckdb.DuckDBPyConnection, *, keys: bool = True) -> None:
    """Create the workbench tables, the validation macros and the anomalies view.

    ``keys=False`` leaves out the tables' PRIMARY KEY and UNIQUE constraints,
    for a workspace that is loaded once and only audited (one shard of a
    streamed or distributed audit): nothing appends to it, and keeping the
    two entry indexes is most of a load's insert time. Loads stay exact
    without them: duplicates are ranked by the ingest, not by the indexes.
    """
    schema = read_sql("schema.sql")
    con.execute(schema if keys else _KEYS.sub("", schema))
    for name in ("validate.sql", "anomalies.sql"):
        run_script(con, name)


_KEYS = re.compile(r",\s*(?:PRIMARY KEY|UNIQUE) \([^)]*\)")
"""A table constraint of schema.sql with the comma before it."""


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
    repaired: dict[str, int] = field(default_factory=dict)
    """Values loaded with a documented substitution (lone surrogates as U+FFFD), by kind."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready) of every count."""
        return {
            "source": self.source,
            "kind": self.kind,
            "read": dict(self.read),
            "loaded": dict(self.loaded),
            "quarantined": dict(self.quarantined),
            "anomalies": dict(self.anomalies),
            "repaired": dict(self.repaired),
        }

    def rows(self) -> list[tuple[str, str, int]]:
        """``(section, name, count)`` lines, the table both renderings show."""
        out = [("read", t, n) for t, n in self.read.items()]
        out += [("loaded", t, n) for t, n in self.loaded.items()]
        out += [("quarantined", r, n) for r, n in self.quarantined.items()]
        out += [("anomaly", k, n) for k, n in self.anomalies.items()]
        out += [("repaired", k, n) for k, n in self.repaired.items()]
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
        self.repaired = 0
        """JSON values whose lone-surrogate escapes were replaced by U+FFFD (SPEC §9)."""
        self.files: dict[str, str] = {}
        """The file each table's rows came from, when a reader read files (named in strict errors)."""
        self._staging = False
        """Whether the staging transaction (opened by the first :meth:`add`) is open."""
        ensure_schema(con)
        con.execute(_statements()["stage"])

    def add(self, table: str, batch: pa.RecordBatch | pa.Table) -> int:
        """Stage one batch of raw rows of ``table`` (text columns, harness names); returns its size.

        Two repairs happen here, once for every reader: text that is not
        UTF-8 is kept (escaped, ``\\xNN``) but marks its row for quarantine
        (``invalid_utf8``), and a lone-surrogate escape inside JSON text
        (``\\ud83d``, which JSON.stringify writes and DuckDB's JSON rejects)
        becomes ``\\ufffd`` (SPEC §9), counted in :attr:`repaired`.
        """
        n = batch.num_rows
        if n == 0:
            return 0
        cols = CONVERSATION_COLUMNS if table == "conversations" else ENTRY_COLUMNS
        json_cols = CONVERSATION_JSON_COLUMNS if table == "conversations" else ENTRY_JSON_COLUMNS
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
        reason = _text_column(batch, PROBLEM, n)
        field = _text_column(batch, PROBLEM_FIELD, n)
        for col in cols:
            if col not in names:
                continue
            values = batch.column(col)
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
                values, bad = decode_utf8(values)
            else:
                values = values.cast(pa.string())
                values, bad = _valid_utf8(values)
            if bad is not None:
                first = pc.and_kleene(bad, pc.is_null(reason))
                reason = pc.if_else(first, pa.scalar("invalid_utf8"), reason)
                field = pc.if_else(first, pa.scalar(col), field)
            if col + NULL_SUFFIX in names:
                values = pc.if_else(
                    batch.column(col + NULL_SUFFIX).cast(pa.bool_()),
                    pa.scalar(None, pa.string()),
                    values,
                )
            if col in json_cols:
                values, fixed = _replace_lone_surrogates(values)
                self.repaired += fixed
            arrays[col] = values
        arrays[PROBLEM] = reason
        arrays[PROBLEM_FIELD] = field
        arrays[SOURCE_ROW] = _text_column(batch, SOURCE_ROW, n)
        arrays[SOURCE_TEXT] = _text_column(batch, SOURCE_TEXT, n)
        self._next[table] += n
        staged = pa.table(arrays)  # noqa: F841  (read by DuckDB's replacement scan below)
        stage = "_stage_conversations" if table == "conversations" else "_stage_entries"
        if not self._staging:
            # Every batch goes in one transaction, committed by finish(): an
            # autocommit INSERT per batch costs in proportion to the rows
            # already staged (quadratic over a fleet: 8.2 s of CPU instead
            # of 1.7 s for 48 batches of 20k entries).
            self.con.execute("BEGIN TRANSACTION")
            self._staging = True
        self.con.execute(f"INSERT INTO {stage} BY NAME SELECT * FROM staged")
        return n

    def abort(self) -> None:
        """Drop what was staged (a reader failed): the connection is left as it was before."""
        if self._staging:
            self._staging = False
            self.con.execute("ROLLBACK")
        self.con.execute(_statements()["drop_stage"])

    def finish(self, source: str, kind: str, *, strict: bool = False) -> LoadSummary:
        """Check every staged row, then replace ``source``'s rows in one transaction."""
        st = _statements()
        con = self.con
        try:
            if self._staging:
                self._staging = False
                con.execute("COMMIT")
            with phase("check conversations"):
                con.execute(st["check_conversations"])
            with phase("check entries"):
                con.execute(st["check_entries"])
            if strict:
                bad = con.execute(st["first_problem"]).fetchone()
                if bad is not None:
                    table, cid, seq, reason, fld, row = bad
                    where = f"{self.files[table]}, {row}" if table in self.files and row else row
                    raise BadEntryError(
                        f"{reason} in source {source!r}, table {table}" + (f" ({where})" if where else ""),
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
                    with phase(name.replace("_", " ")):
                        con.execute(st[name], params)
                with phase("commit"):
                    con.execute("COMMIT")
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                raise SourceError(f"could not store the rows of {source!r}: {exc}") from exc
            summary = LoadSummary(source=source, kind=kind)
            for table, read, loaded in con.execute(st["counts"]).fetchall():
                summary.read[table] = read
                summary.loaded[table] = loaded
            summary.quarantined = dict(con.execute(st["quarantine_counts"], params).fetchall())
            with phase("count anomalies"):
                summary.anomalies = dict(con.execute(st["anomaly_counts"], params).fetchall())
            if self.repaired:
                summary.repaired["lone_surrogate_to_fffd"] = self.repaired
            return summary
        finally:
            con.execute(st["drop_stage"])


def _text_column(batch: pa.RecordBatch | pa.Table, name: str, n: int) -> pa.Array:
    """A reader's optional text column, or all NULL."""
    if name in batch.schema.names:
        column = batch.column(name)
        return (column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column).cast(pa.string())
    return pa.nulls(n, pa.string())


def _valid_utf8(values: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """``values`` unchanged when every string is UTF-8 (the usual case, checked natively), else repaired."""
    try:
        values.validate(full=True)
    except pa.ArrowInvalid:
        return decode_utf8(values.view(pa.binary()))
    return values, None


def decode_utf8(values: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """Bytes as text; bytes that are not UTF-8 are kept escaped (``\\xNN``) and flagged."""
    texts: list[str | None] = []
    bad: list[bool] = []
    for raw in values.to_pylist():
        if raw is None:
            texts.append(None)
            bad.append(False)
            continue
        try:
            texts.append(raw.decode("utf-8"))
            bad.append(False)
        except UnicodeDecodeError:
            texts.append(raw.decode("utf-8", "backslashreplace"))
            bad.append(True)
    return pa.array(texts, pa.string()), (pa.array(bad, pa.bool_()) if any(bad) else None)


def _replace_lone_surrogates(values: pa.Array) -> tuple[pa.Array, int]:
    """JSON text with each lone-surrogate escape replaced by ``\\ufffd``; how many values changed."""
    hint = pc.match_substring_regex(values, _SURROGATE_HINT)
    if not pc.any(hint).as_py():
        return values, 0
    texts = values.to_pylist()
    changed = 0
    for i in np.flatnonzero(hint.fill_null(False).to_numpy(zero_copy_only=False)):
        fixed = _SURROGATE_ESCAPES.sub(_fix_escape, texts[i])
        if fixed != texts[i]:
            texts[i] = fixed
            changed += 1
    return (pa.array(texts, pa.string()), changed) if changed else (values, 0)


def _fix_escape(match: re.Match[str]) -> str:
    token = match.group()
    return token if token == "\\\\" or len(token) == 12 else "\\ufffd"


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
