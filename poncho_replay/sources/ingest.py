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

__all__ = ["LoadSummary", "Stager", "decode_utf8", "ensure_schema", "progress_bar", "with_nulls"]

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


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the workbench tables (without the store's keys), the validation macros and the anomalies view."""
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


STAGE_IN_MEMORY_BYTES = 2 << 30
"""Staged rows are kept as Arrow, which DuckDB scans in place, up to this size;
past it they move into DuckDB temp tables, which spill to disk under a
``memory_limit`` (a fleet larger than memory loaded whole into a file workspace)."""

_STAGE_TABLES = {"conversations": "_stage_conversations", "conversation_entries": "_stage_entries"}


@cache
def _stage_schema(table: str) -> pa.Schema:
    """The staged columns of ``table``: the stager's row_id and ordinal, then the source's text."""
    cols = CONVERSATION_COLUMNS if table == "conversations" else ENTRY_COLUMNS
    text = (*cols, PROBLEM, PROBLEM_FIELD, SOURCE_ROW, SOURCE_TEXT)
    return pa.schema([("row_id", pa.int64()), ("ordinal", pa.int64()), *((c, pa.string()) for c in text)])


class Stager:
    """Collects a source's raw rows, then checks and swaps them in.

    The rows wait as Arrow and the checks read them in place: copying them
    into a DuckDB table first cost about 1.3 s per million entries and a
    second copy of every text. Only a source past :data:`STAGE_IN_MEMORY_BYTES`
    is moved into temp tables, in one transaction committed by :meth:`finish`.

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
        self._held: dict[str, list[pa.Table]] = {t: [] for t in _STAGE_TABLES}
        """Staged rows not moved into DuckDB, by table."""
        self._held_bytes = 0
        self._spilled = False
        """Whether the rows moved into temp tables (and their transaction is open)."""
        ensure_schema(con)

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
                values = with_nulls(values, batch.column(col + NULL_SUFFIX))
            if col in json_cols:
                values, fixed = _replace_lone_surrogates(values)
                self.repaired += fixed
            arrays[col] = values
        arrays[PROBLEM] = reason
        arrays[PROBLEM_FIELD] = field
        arrays[SOURCE_ROW] = _text_column(batch, SOURCE_ROW, n)
        arrays[SOURCE_TEXT] = _text_column(batch, SOURCE_TEXT, n)
        self._next[table] += n
        schema = _stage_schema(table)
        staged = pa.Table.from_arrays(
            [arrays[f.name] if f.name in arrays else pa.nulls(n, f.type) for f in schema], schema=schema
        )
        self._held[table].append(staged)
        self._held_bytes += staged.nbytes
        if self._spilled or self._held_bytes > STAGE_IN_MEMORY_BYTES:
            self._spill()
        return n

    def _spill(self) -> None:
        """Move the held rows into DuckDB temp tables (created, with their transaction, on the first call)."""
        if not self._spilled:
            # Every batch goes in one transaction, committed by finish(): an
            # autocommit INSERT per batch costs in proportion to the rows
            # already staged (quadratic over a fleet).
            self.con.execute("BEGIN TRANSACTION")
            self._spilled = True
            for table, name in _STAGE_TABLES.items():
                empty = _stage_schema(table).empty_table()  # noqa: F841  (read by DuckDB's replacement scan)
                self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM empty")
        for table, name in _STAGE_TABLES.items():
            for staged in self._held[table]:  # read by DuckDB's replacement scan
                self.con.execute(f"INSERT INTO {name} SELECT * FROM staged")
            self._held[table] = []
        self._held_bytes = 0

    def _stage_views(self) -> None:
        """Make the held rows the stage the checks read: Arrow in place, or the rest of them spilled."""
        if self._spilled:
            self._spill()
            self.con.execute("COMMIT")
            return
        for table, name in _STAGE_TABLES.items():
            held = self._held[table]
            self.con.register(name, pa.concat_tables(held) if held else _stage_schema(table).empty_table())
            self._held[table] = []

    def _drop_stage(self) -> None:
        for table, name in _STAGE_TABLES.items():
            self._held[table] = []
            self.con.unregister(name)
        self.con.execute(_statements()["drop_stage"])

    def abort(self) -> None:
        """Drop what was staged (a reader failed): the connection is left as it was before."""
        if self._spilled:
            self._spilled = False
            self.con.execute("ROLLBACK")
        self._drop_stage()

    def finish(self, source: str, kind: str, *, strict: bool = False) -> LoadSummary:
        """Check every staged row, then replace ``source``'s rows in one transaction."""
        st = _statements()
        con = self.con
        try:
            self._stage_views()
            with phase("check conversations"):
                con.execute(st["check_conversations"])
            with phase("check entries"):
                con.execute(st["check_entries"])
            if strict:
                # fetchall: the first bad row or none (LIMIT 1), and no open result left behind
                for table, cid, seq, reason, fld, row in con.execute(st["first_problem"]).fetchall():
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
            self._drop_stage()  # the source's text is in the tables now: free the staged copy before counting anomalies
            summary.quarantined = dict(con.execute(st["quarantine_counts"], params).fetchall())
            with phase("count anomalies"):
                summary.anomalies = dict(con.execute(st["anomaly_counts"], params).fetchall())
            if self.repaired:
                summary.repaired["lone_surrogate_to_fffd"] = self.repaired
            return summary
        finally:
            self._drop_stage()


def _text_column(batch: pa.RecordBatch | pa.Table, name: str, n: int) -> pa.Array:
    """A reader's optional text column, or all NULL."""
    if name in batch.schema.names:
        column = batch.column(name)
        return (column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column).cast(pa.string())
    return pa.nulls(n, pa.string())


def with_nulls(values: pa.Array, flags: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``values`` NULL where ``flags`` is true, sharing the text buffers.

    ``if_else`` would copy every string (the payloads: about 1 GB per
    million entries, in fresh pages each batch); the flags' complement is
    already the validity bitmap the text needs.
    """
    if isinstance(flags, pa.ChunkedArray):
        flags = flags.combine_chunks()
    flags = flags.cast(pa.bool_())
    if not pc.any(flags).as_py():
        return values
    valid = pc.invert(flags.fill_null(False))
    if values.offset or valid.offset or values.null_count:
        return pc.if_else(flags, pa.scalar(None, pa.string()), values)
    return pa.Array.from_buffers(pa.string(), len(values), [valid.buffers()[1], *values.buffers()[1:]])


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
