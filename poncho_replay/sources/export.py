"""Portable exports of the workbench tables: a JSONL folder or a Parquet folder.

Format (both kinds): a folder with one file per table,
``conversations.<ext>`` and ``entries.<ext>``, holding the harness columns
(SPEC §4) of one source:

- conversations: ``id, agent_id, tenant_id, owner_id, title, data,
  message_count, created_at, updated_at, tool_result_archive,
  harness_messages, continuation_messages, parent_conversation_id,
  has_pending_approvals, channel_meta, parent_message_id``
- entries: ``seq, id, agent_id, tenant_id, conversation_id, type, payload,
  created_at, ordinal`` (``ordinal``: the row's position in its original
  source, kept so a reload orders duplicates the same way)

JSONL: one JSON object per line; JSON columns (``data``, ``payload``, ...)
are nested JSON values (a JSON *string* holding JSON text is accepted on
load too); timestamps are ISO-8601 UTC text (``2026-03-04T13:30:01.558Z``).
Parquet: the same columns, JSON columns as strings, timestamps as TIMESTAMP.
Loading an export goes through the same checks as any source, so a bad
line is quarantined, never dropped: its ``row_key`` is where it sits in its
file (``line 12`` of a JSONL file, counting blank lines; ``row 12`` of a
Parquet file), and a line that is not a JSON object keeps its original text
as ``raw``. ``strict=True`` names the file and the line.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from poncho_replay.errors import SourceError
from poncho_replay.sources.ingest import (
    CONVERSATION_COLUMNS,
    ENTRY_COLUMNS,
    PROBLEM,
    PROBLEM_FIELD,
    SOURCE_ROW,
    SOURCE_TEXT,
    Stager,
    decode_utf8,
)
from poncho_replay.sql import CONVERSATION_JSON_COLUMNS, ENTRY_JSON_COLUMNS

__all__ = ["detect", "read_export", "write_export"]

BATCH_ROWS = 20_000
FILES = {"conversations": "conversations", "conversation_entries": "entries"}
_JSON_COLUMNS = CONVERSATION_JSON_COLUMNS + ENTRY_JSON_COLUMNS
_TIME_COLUMNS = ("created_at", "updated_at")


def detect(path: Path) -> Literal["jsonl", "parquet"] | None:
    """The export kind of a folder, from its file names."""
    for kind in ("jsonl", "parquet"):
        if any((path / f"{stem}.{kind}").is_file() for stem in FILES.values()):
            return kind  # type: ignore[return-value]
    return None


def write_export(
    con: duckdb.DuckDBPyConnection, path: Path, format: str, *, source: str | None = None
) -> Path:
    """Write one source's conversations and entries to ``path`` (a folder, created if needed)."""
    if format not in ("jsonl", "parquet"):
        raise SourceError(f"unknown export format {format!r} (jsonl or parquet)")
    sources = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT source FROM conversations UNION SELECT DISTINCT source FROM conversation_entries"
        ).fetchall()
    ]
    if source is None:
        if len(sources) > 1:
            raise SourceError(
                f"the workspace holds {len(sources)} sources; pick one with source=: {sorted(sources)}"
            )
        source = sources[0] if sources else ""
    path.mkdir(parents=True, exist_ok=True)
    queries = {
        "conversations": (
            CONVERSATION_COLUMNS,
            "FROM conversations WHERE source = $source ORDER BY id",
        ),
        "conversation_entries": (
            (*ENTRY_COLUMNS, "ordinal"),
            "FROM conversation_entries WHERE source = $source ORDER BY ordinal, conversation_id, seq, dup",
        ),
    }
    for table, (columns, rest) in queries.items():
        target = path / f"{FILES[table]}.{format}"
        if format == "jsonl":
            select = (
                "to_json({"
                + ", ".join(f"'{c}': {_jsonl_value(c)}" for c in columns)
                + "})::VARCHAR AS line"
            )
            reader = con.sql(f"SELECT {select} {rest}", params={"source": source}).to_arrow_reader(
                BATCH_ROWS
            )
            with builtins.open(target, "w", encoding="utf-8", newline="\n") as fh:
                for batch in reader:
                    lines = batch.column(0).to_pylist()
                    if lines:
                        fh.write("\n".join(lines) + "\n")
        else:
            select = ", ".join(f"{c}::VARCHAR AS {c}" if c in _JSON_COLUMNS else c for c in columns)
            reader = con.sql(f"SELECT {select} {rest}", params={"source": source}).to_arrow_reader(
                BATCH_ROWS
            )
            with pq.ParquetWriter(target, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
    return path


def _jsonl_value(column: str) -> str:
    if column in _TIME_COLUMNS:
        return (
            f"CASE WHEN microsecond({column}) % 1000 = 0 THEN strftime({column}, '%Y-%m-%dT%H:%M:%S.%gZ') "
            f"ELSE strftime({column}, '%Y-%m-%dT%H:%M:%S.%fZ') END"
        )
    return column


def read_export(
    path: Path, kind: str, stager: Stager, *, advance: Callable[[int], None] = lambda n: None
) -> None:
    """Stage the rows of a JSONL or Parquet export folder."""
    for table, stem in FILES.items():
        file = path / f"{stem}.{kind}"
        if not file.is_file():
            continue
        stager.files[table] = file.name
        try:
            if kind == "parquet":
                first = 1
                for batch in pq.ParquetFile(file).iter_batches(batch_size=BATCH_ROWS):
                    rows = _row_labels("row", pa.array(range(first, first + batch.num_rows), pa.int64()))
                    first += batch.num_rows
                    advance(stager.add(table, _integer_ordinal(batch).append_column(SOURCE_ROW, rows)))
            else:
                _read_jsonl(file, table, stager, advance)
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(f"cannot read {file}: {exc}") from exc


def _row_labels(word: str, numbers: pa.Array) -> pa.Array:
    """``line 12``-style labels for 1-based row numbers (where a quarantined row sits in its file)."""
    return pc.binary_join_element_wise(pa.scalar(f"{word} "), numbers.cast(pa.string()), "")


def _integer_ordinal(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The ``ordinal`` column as int64, a value that is not an integer as NULL (one bad cell, not a bad file).

    The stager gives a NULL ordinal a negative position, as for a broken JSONL line.
    """
    names = batch.schema.names
    if "ordinal" not in names or pa.types.is_integer(batch.schema.field("ordinal").type):
        return batch
    column = batch.column(names.index("ordinal"))
    try:
        text = column.cast(pa.string())
    except pa.ArrowException:  # nested or binary values: nothing there is an ordinal
        text = pa.nulls(len(column), pa.string())
    ok = pc.match_substring_regex(text, r"^-?[0-9]{1,18}$")
    ordinal = pc.if_else(ok, text, pa.scalar(None, pa.string())).cast(pa.int64())
    return batch.set_column(names.index("ordinal"), "ordinal", ordinal)


def _read_jsonl(file: Path, table: str, stager: Stager, advance: Callable[[int], None]) -> None:
    """Lines in batches; DuckDB splits them into columns, invalid lines keep their raw text.

    Lines are read as bytes: a line that is not UTF-8 is kept with its bad
    bytes escaped (``\\xNN``) and quarantined as ``invalid_utf8``, so one bad
    byte costs one row, never the whole file.
    """
    columns = CONVERSATION_COLUMNS if table == "conversations" else (*ENTRY_COLUMNS, "ordinal")
    carrier = "data" if table == "conversations" else "payload"
    select = ", ".join(_line_column(c, carrier) for c in columns)
    select += (
        f", CASE WHEN bad THEN 'invalid_utf8' END AS {PROBLEM}, CASE WHEN bad THEN '{carrier}' END AS {PROBLEM_FIELD}"
        # A line that is not a JSON object keeps its own text as `raw`; one that is not UTF-8
        # travels escaped in its carrier column (`invalid_utf8` names that column).
        f", line_label AS {SOURCE_ROW}, CASE WHEN NOT bad AND NOT {_IS_OBJECT} THEN line END AS {SOURCE_TEXT}"
    )
    line_no = 0
    with builtins.open(file, "rb") as fh:
        while True:
            raw = [line.rstrip(b"\r\n") for _, line in zip(range(BATCH_ROWS), fh)]
            if not raw:
                break
            kept, numbers = [], []
            for line in raw:
                line_no += 1
                if line.strip():
                    kept.append(line)
                    numbers.append(line_no)
            texts, bad = decode_utf8(pa.array(kept, pa.binary()))
            lines_tbl = pa.table(  # noqa: F841 - read by name in the SQL below (DuckDB replacement scan)
                {
                    "line": texts,
                    "bad": bad if bad is not None else pa.array([False] * len(kept), pa.bool_()),
                    "line_label": _row_labels("line", pa.array(numbers, pa.int64())),
                }
            )
            batch = stager.con.sql(
                f"SELECT {select} FROM (SELECT line, bad, line_label, "
                "CASE WHEN NOT bad AND json_valid(line) THEN line END AS j FROM lines_tbl)"
            ).to_arrow_table()
            advance(stager.add(table, batch))


_IS_OBJECT = "coalesce(json_type(j) = 'OBJECT', false)"
"""SQL: the line (``j``, NULL unless valid JSON) is a JSON object, so its columns can be read."""


def _line_column(column: str, carrier: str) -> str:
    """The SQL for one column of a JSONL line; ``j`` is the line when it is valid JSON, else NULL."""
    ok = _IS_OBJECT
    value = (
        f"CASE WHEN json_type(j, '$.{column}') = 'VARCHAR' THEN json_extract_string(j, '$.{column}') "
        f"WHEN json_type(j, '$.{column}') <> 'NULL' THEN json_extract(j, '$.{column}')::VARCHAR END"
    )
    if column == carrier:
        # A broken line travels in its JSON column, so it is quarantined with its text.
        return f"CASE WHEN NOT {ok} THEN line ELSE {value} END AS {column}"
    if column in _JSON_COLUMNS:
        return f"CASE WHEN {ok} THEN {value} END AS {column}"
    if column == "ordinal":
        return f"CASE WHEN {ok} THEN TRY_CAST(json_extract_string(j, '$.ordinal') AS BIGINT) END AS ordinal"
    return f"CASE WHEN {ok} THEN json_extract_string(j, '$.{column}') END AS {column}"
