"""Fuzzed harness sources: whatever a database or export holds, nothing crashes and no row is lost.

Each example starts from a small simulated fleet (``simulate.fleet``) written
as the harness writes it (SQLite file, PostgreSQL schema) or exported by the
kit (JSONL, Parquet folder), then applies a few drawn corruptions: random
bytes and BLOBs, NULLs, wrong JSON types at the top level and inside the
documents, extreme sizes and nesting depths, huge and fractional numbers,
duplicated rows (same id, same seq), dropped columns, garbage lines. The
schema is loosened first (constraints dropped), as a damaged dump or a
restore by another tool can leave it.

Then, for every example:

- ``load`` never raises, and every row is accounted for:
  ``loaded + quarantined == read`` per table, and the tables hold the
  loaded rows;
- ``load(strict=True)`` raises ``BadEntryError`` naming a quarantined
  reason exactly when something was quarantined;
- ``parity()``, ``report()``, and each conversation's view and replay
  (``_repr_html_``) finish; ``ws.conversation()`` shows a blob whose shape
  is not the harness's as a card saying why, and no HTML view falls back to
  "view failed".

``test_cli_on_fuzzed_sources`` runs every CLI command on fuzzed sources:
exit status 0, or 2 (the documented user error) with one ``error:`` line,
never a traceback or an "unexpected" error.

Bounded for the 2-core machine: a few examples per kind (the whole file in
well under a minute); ``HYPOTHESIS_PROFILE=thorough`` runs ten times more.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import poncho_replay
from poncho_replay.cli import cli
from poncho_replay.errors import BadEntryError
from poncho_replay.simulate import fleet
from tests.pg_server import TEST_URL, connect

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
EXAMPLES = 100 if THOROUGH else 8
CLI_EXAMPLES = 30 if THOROUGH else 3
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # scratch and pg_schema are factories: each example makes (and the fixture drops) its own.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

CONVERSATION_COLUMNS = (
    "id", "agent_id", "tenant_id", "owner_id", "title", "data", "message_count", "created_at", "updated_at",
    "tool_result_archive", "harness_messages", "continuation_messages", "parent_conversation_id",
    "has_pending_approvals", "channel_meta", "parent_message_id",
)  # fmt: skip
ENTRY_COLUMNS = ("seq", "id", "agent_id", "tenant_id", "conversation_id", "type", "payload", "created_at")
TABLES = {"conversations": CONVERSATION_COLUMNS, "conversation_entries": ENTRY_COLUMNS}
JSON_COLUMNS = {
    "conversations": ("data", "tool_result_archive", "harness_messages", "continuation_messages", "channel_meta"),
    "conversation_entries": ("payload",),
}
EXPORT_FILES = {"conversations": "conversations", "conversation_entries": "entries"}

# --- what a corruption puts in a cell -------------------------------------------------------

DEEP_ARRAY = "[" * 3000 + "]" * 3000  # deeper than json.loads and DuckDB's JSON go
DEEP_OBJECT = '{"a":' * 1500 + "1" + "}" * 1500
EXTREME_TEXT = [
    "x" * 300_000, DEEP_ARRAY, DEEP_OBJECT, "9" * 40, "99999999999999999", "-9223372036854775809",
    "1e400", "3.5", "-1", "0", "2026-13-45T99:99:99Z", "999999999999999", "\ud83d".encode("utf-16", "surrogatepass").decode("utf-16", "replace"),
]  # fmt: skip
WRONG_JSON = ["[]", "{}", "5", "5.5", '"text"', "null", "true", '{"type": 5}', '[{"role": 1}]', '"{\\"a\\":1}"']
JSON_VALUES = st.one_of(
    st.sampled_from([None, 5, -1, 2**70, 1.5, 1e308, True, "", "x", [], {}, [1, "x", None], {"role": "bot"}]),
    st.sampled_from(["x" * 200_000, "\ud83d lone", "\x00nul"]),
    st.just("DEEP"),  # replaced by a nested list deeper than json.loads goes
    st.text(max_size=10),
)
CELL_VALUES = st.one_of(
    st.binary(max_size=24),  # random bytes: a BLOB in SQLite, invalid UTF-8 in text
    st.text(max_size=24).filter(lambda s: "\x00" not in s),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=12),  # NULs, controls
    st.sampled_from(EXTREME_TEXT + WRONG_JSON),
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)


@st.composite
def corruptions(draw: st.DrawFn, *, drop: bool = True) -> list[tuple]:
    """1-4 operations, each on a row picked by position modulo the table's size.

    ``("cell", table, row, column, value)``: a value in a column.
    ``("json", table, row, column, key, value)``: a key inside a JSON column (``"message"`` keys
    reach into the entry's message).
    ``("dup", table, row, keep)``: a copy of a row, same id (``keep='id'``) or same seq and
    conversation with a new id (``keep='seq'``).
    ``("drop", table, column)``: a column gone from the table.
    """
    ops: list[tuple] = []
    for _ in range(draw(st.integers(1, 4))):
        table = draw(st.sampled_from(list(TABLES)))
        row = draw(st.integers(0, 10_000))
        kind = draw(st.sampled_from(["cell", "cell", "json", "json", "dup"] + (["drop"] if drop else [])))
        if kind == "cell":
            ops.append(("cell", table, row, draw(st.sampled_from(TABLES[table])), draw(CELL_VALUES)))
        elif kind == "json":
            column = draw(st.sampled_from(JSON_COLUMNS[table]))
            keys = ["messages", "title", "createdAt", "conversationId", "compactedHistory",
                    "pendingSubagentResults", "message.content", "message.role", "message.metadata"]  # fmt: skip
            if table == "conversation_entries":
                keys = ["type", "message", "message.content", "message.role", "message.metadata", "turnId",
                        "firstKeptSeq", "consumedSeqs", "result", "targetEntryId", "id"]  # fmt: skip
            ops.append(("json", table, row, column, draw(st.sampled_from(keys)), draw(JSON_VALUES)))
        elif kind == "dup":
            ops.append(("dup", table, row, draw(st.sampled_from(["id", "seq"]))))
        else:
            ops.append(("drop", table, draw(st.sampled_from(TABLES[table]))))
    return ops


def _json_value(value: Any) -> Any:
    if value == "DEEP":
        nested: Any = []
        for _ in range(1500):
            nested = [nested]
        return nested
    return value


def _set_json(text: Any, key: str, value: Any) -> Any:
    """``text`` (JSON) with ``key`` (``a`` or ``a.b``) set to ``value``; non-JSON text is returned as is."""
    try:
        doc = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return text
    if not isinstance(doc, dict):
        return text
    target = doc
    head, _, tail = key.partition(".")
    if tail:
        if not isinstance(doc.get(head), dict):
            return text
        target, head = doc[head], tail
    target[head] = _json_value(value)
    return json.dumps(target if target is doc else doc)


_CLEAN = tempfile.TemporaryDirectory(prefix="pr-fuzz-clean-")
"""Clean sources per seed, written once per session and copied per example (writing is the slow part)."""


@functools.cache
def _clean(kind: str, seed: int) -> Path:
    """The seed's fleet as a harness SQLite file (``sqlite``) or an export folder (``jsonl``/``parquet``)."""
    db = Path(_CLEAN.name) / f"fleet-{seed}.db"
    if kind == "sqlite":
        fleet(3, seed=seed).to_sqlite(db)
        return db
    ws = poncho_replay.open()
    ws.load(_clean("sqlite", seed))
    out = ws.export(Path(_CLEAN.name) / f"export-{seed}-{kind}", format=kind)  # type: ignore[arg-type]
    ws.con.close()
    return out


def _new_id(row_id: Any) -> str:
    return f"{row_id}-copy-{uuid.uuid4().hex[:6]}"


# --- SQLite -----------------------------------------------------------------------------------


def sqlite_source(folder: Path, seed: int, ops: list[tuple]) -> Path:
    """The fleet as a harness SQLite file, loosened and corrupted by ``ops``."""
    path = folder / "fuzz.db"
    shutil.copyfile(_clean("sqlite", seed), path)
    con = sqlite3.connect(path)
    for table in TABLES:  # CREATE TABLE AS keeps column affinities, drops every constraint
        con.execute(f"CREATE TABLE loose AS SELECT * FROM {table}")
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE loose RENAME TO {table}")
    for op in ops:
        table, row = op[1], op[2] if op[0] != "drop" else 0
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        rowids = [r[0] for r in con.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
        if not rowids and op[0] != "drop":
            continue
        rowid = rowids[row % len(rowids)] if rowids else None
        if op[0] == "cell" and op[3] in cols:
            value = op[4] if not isinstance(op[4], int) or abs(op[4]) < 2**63 else str(op[4])
            con.execute(f"UPDATE {table} SET {op[3]} = ? WHERE rowid = ?", (value, rowid))
        elif op[0] == "json" and op[3] in cols:
            (text,) = con.execute(f"SELECT {op[3]} FROM {table} WHERE rowid = ?", (rowid,)).fetchone()
            con.execute(f"UPDATE {table} SET {op[3]} = ? WHERE rowid = ?", (_set_json(text, op[4], op[5]), rowid))
        elif op[0] == "dup":
            con.execute(f"INSERT INTO {table} SELECT * FROM {table} WHERE rowid = ?", (rowid,))
            if op[3] == "seq" and "id" in cols:
                (old,) = con.execute(f"SELECT id FROM {table} WHERE rowid = ?", (rowid,)).fetchone()
                con.execute(f"UPDATE {table} SET id = ? WHERE rowid = last_insert_rowid()", (_new_id(old),))
        elif op[0] == "drop" and op[2] in cols and len(cols) > 1:
            con.execute(f"ALTER TABLE {table} DROP COLUMN {op[2]}")
    con.commit()
    con.close()
    return path


# --- exports (JSONL and Parquet) --------------------------------------------------------------


def _export(folder: Path, seed: int, fmt: str) -> Path:
    return Path(shutil.copytree(_clean(fmt, seed), folder / f"export-{fmt}"))


def _apply_to_rows(rows: list[dict[str, Any]], table: str, ops: list[tuple]) -> list[dict[str, Any]]:
    """The ops on one export table, as dicts (a dropped column is removed from every row)."""
    for op in ops:
        if op[1] != table or not rows:
            continue
        if op[0] == "drop":
            for r in rows:
                r.pop(op[2], None)
            continue
        row = rows[op[2] % len(rows)]
        if op[0] == "cell":
            row[op[3]] = op[4]
        elif op[0] == "json":
            text = row.get(op[3])
            if not isinstance(text, str):
                text = json.dumps(text) if text is not None else None
            row[op[3]] = _set_json(text, op[4], op[5])
        elif op[0] == "dup":
            copy = dict(row)
            if op[3] == "seq":
                copy["id"] = _new_id(row.get("id"))
            rows.append(copy)
    return rows


def jsonl_source(folder: Path, seed: int, ops: list[tuple], garbage: list[bytes]) -> Path:
    """A JSONL export with ``ops`` applied line by line, plus raw garbage lines and a cut line."""
    out = _export(folder, seed, "jsonl")
    for table, stem in EXPORT_FILES.items():
        file = out / f"{stem}.jsonl"
        rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]
        lines: list[bytes] = []
        for row in _apply_to_rows(rows, table, ops):
            raw: dict[str, bytes] = {}
            for key, value in list(row.items()):
                if isinstance(value, bytes):  # raw bytes go into the line itself, unescaped
                    raw[key] = value
                    row[key] = f"@@{key}@@"
            line = json.dumps(row, allow_nan=True).encode("utf-8", "surrogatepass")
            for key, value in raw.items():
                line = line.replace(f"@@{key}@@".encode(), value)
            lines.append(line)
        if table == "conversation_entries" and lines:
            lines.insert(len(lines) // 2, lines[len(lines) // 2][: len(lines[len(lines) // 2]) // 2])
        lines[len(lines) // 3 : len(lines) // 3] = garbage
        file.write_bytes(b"\n".join(lines) + b"\n")
    return out


def _arrow_column(values: list[Any]) -> pa.Array:
    """A Parquet column for fuzzed values: typed when they agree, else bytes or text."""
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int} and all(abs(v) < 2**63 for v in values if v is not None):
        return pa.array(values, pa.int64())
    if kinds <= {int, float}:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if bytes in kinds:
        return pa.array(
            [None if v is None else v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogatepass") for v in values],
            pa.binary(),
        )
    if kinds <= {str}:
        return pa.array([None if v is None else v.encode("utf-8", "replace").decode() for v in values], pa.string())
    return pa.array([None if v is None else json.dumps(v, default=str) for v in values], pa.string())


def parquet_source(folder: Path, seed: int, ops: list[tuple]) -> Path:
    """A Parquet export with ``ops`` applied; columns retyped to hold what the ops put in."""
    out = _export(folder, seed, "parquet")
    for table, stem in EXPORT_FILES.items():
        file = out / f"{stem}.parquet"
        original = pq.read_table(file)
        rows = _apply_to_rows(original.to_pylist(), table, ops)
        names = [n for n in original.schema.names if any(n in r for r in rows)]
        columns = {n: [r.get(n) for r in rows] for n in names}
        typed = {}
        for name, values in columns.items():
            field = original.schema.field(name)
            try:  # keep the export's own type where the values still fit it
                typed[name] = pa.array(values, field.type)
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                typed[name] = _arrow_column(values)
        pq.write_table(pa.table(typed), file)
    return out


# --- PostgreSQL -------------------------------------------------------------------------------



@pytest.fixture(scope="module")
def pg() -> Iterator[Any]:
    """One connection to the real server for the module (CI=true: its absence is a failure)."""
    conn = connect()
    yield conn
    conn.close()


def _pg_text(value: Any) -> Any:
    """A cell value PostgreSQL text can hold (no NUL, UTF-8): other bytes become their escapes."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("\x00", "\\u0000").encode("utf-8", "replace").decode()


def postgres_source(conn: Any, schema: str, seed: int, ops: list[tuple], jsonb: str) -> str:
    """The fleet in ``schema`` as postgres.js writes it, loosened (plain columns as text) and corrupted."""
    from psycopg.types.json import Jsonb

    fleet(3, seed=seed).to_postgres(conn, schema, jsonb=jsonb)  # type: ignore[arg-type]
    conn.execute(f'SET search_path TO "{schema}"')
    for table, columns in TABLES.items():
        conn.execute(f"CREATE TABLE loose AS SELECT * FROM {table}")
        conn.execute(f"DROP TABLE {table}")
        conn.execute(f"ALTER TABLE loose RENAME TO {table}")
        for column in columns:
            if column not in JSON_COLUMNS[table]:
                conn.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text")
        conn.execute(f"ALTER TABLE {table} ADD COLUMN _pos serial")
    for op in ops:
        table = op[1]
        cols = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        ).fetchall()]  # fmt: skip
        positions = [r[0] for r in conn.execute(f"SELECT _pos FROM {table} ORDER BY _pos").fetchall()]
        if op[0] == "drop":
            if op[2] in cols:
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {op[2]}")
            continue
        if not positions:
            continue
        pos = positions[op[2] % len(positions)]
        if op[0] == "cell" and op[3] in cols:
            text = _pg_text(op[4])
            # A JSONB column gets the text as a string scalar: what the harness binds.
            value = Jsonb(text) if op[3] in JSON_COLUMNS[table] and text is not None else text
            conn.execute(f"UPDATE {table} SET {op[3]} = %s WHERE _pos = %s", (value, pos))
        elif op[0] == "json" and op[3] in cols:
            (current,) = conn.execute(
                f"SELECT CASE WHEN jsonb_typeof({op[3]}) = 'string' THEN {op[3]} #>> '{{}}' ELSE {op[3]}::text END "
                f"FROM {table} WHERE _pos = %s",
                (pos,),
            ).fetchone()
            text = _pg_text(_set_json(current, op[4], op[5]))
            conn.execute(f"UPDATE {table} SET {op[3]} = %s WHERE _pos = %s", (Jsonb(text), pos))
        elif op[0] == "dup":
            others = [c for c in cols if c != "_pos"]
            conn.execute(
                f"INSERT INTO {table} ({', '.join(others)}) SELECT {', '.join(others)} FROM {table} WHERE _pos = %s",
                (pos,),
            )
            if op[3] == "seq" and "id" in cols:
                conn.execute(
                    f"UPDATE {table} SET id = id || %s WHERE _pos = (SELECT max(_pos) FROM {table})",
                    (f"-copy-{uuid.uuid4().hex[:6]}",),
                )
    for table in TABLES:
        conn.execute(f"ALTER TABLE {table} DROP COLUMN _pos")
    conn.commit()
    return f"{TEST_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture()
def pg_schema(pg: Any) -> Iterator[Callable[[], str]]:
    """Throwaway schema names; every one made is dropped at the end."""
    made: list[str] = []

    def make() -> str:
        made.append(f"pr_fuzz_{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    pg.rollback()
    for name in made:
        pg.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    pg.commit()


# --- the checks -------------------------------------------------------------------------------


def check_library(source: str | Path, folder: Path) -> None:
    """Load, account for every row, strict, parity, report, views and replays: nothing raises."""
    ws = poncho_replay.open()
    summary = ws.load(source, name="fuzz", progress=False)
    quarantined = dict(ws.con.execute('SELECT "table", count(*) FROM quarantine GROUP BY 1').fetchall())
    for table in TABLES:
        assert summary.loaded.get(table, 0) + quarantined.get(table, 0) == summary.read.get(table, 0), (
            table, summary.to_dict(), quarantined,
        )  # fmt: skip
        assert ws.con.execute(f"SELECT count(*) FROM {table}").fetchone() == (summary.loaded.get(table, 0),)
    assert sum(summary.quarantined.values()) == sum(quarantined.values())

    strict = poncho_replay.open()
    try:
        strict.load(source, name="fuzz", strict=True, progress=False)
    except BadEntryError as exc:
        assert summary.quarantined, f"strict refused a source with nothing quarantined: {exc}"
        assert str(exc.reason).split(" ")[0] in summary.quarantined, (str(exc), summary.quarantined)
        assert strict.con.execute("SELECT count(*) FROM conversations").fetchone() == (0,)
    else:
        assert not summary.quarantined, summary.quarantined
    strict.con.close()

    report = ws.parity()
    assert len(report) == summary.loaded.get("conversations", 0)
    written = ws.report(folder / "r.html", parity=report)
    assert Path(written).stat().st_size > 0
    for (cid,) in ws.con.execute("SELECT id FROM conversations ORDER BY id LIMIT 3").fetchall():
        view = ws.conversation(cid)  # a blob not in the harness's shape gives a card, never an error
        html = view._repr_html_()
        assert "view failed" not in html, html[:500]
        if view.problem is None:
            replay = view.replay(widget=False)
            assert "view failed" not in replay._repr_html_()
    ws.con.close()


def check_cli(source: str | Path, folder: Path) -> None:
    """Every command on the fuzzed source: exit 0, or 2 with one error line; never a traceback."""
    runner = CliRunner()
    db = folder / "w.duckdb"

    def run(*args: str, ok: tuple[int, ...] = (0, 2)) -> Any:
        result = runner.invoke(cli, [*args, "--quiet"], catch_exceptions=True)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exc_info)
        assert result.exit_code in ok, (args, result.exit_code, result.output, result.stderr)
        assert "Traceback" not in result.output and "unexpected" not in result.stderr, (args, result.stderr)
        if result.exit_code == 2:
            assert result.stderr.startswith("error: "), (args, result.stderr)
        return result

    run("load", str(source), "--db", str(db), ok=(0,))
    run("load", str(source), "--db", str(folder / "strict.duckdb"), "--strict")
    run("audit", "--db", str(db), ok=(0,))
    run("audit", "--db", str(db), "--json", ok=(0,))
    ws = poncho_replay.open(db)
    ids = [r[0] for r in ws.con.execute("SELECT id FROM conversations ORDER BY id LIMIT 2").fetchall()]
    ws.con.close()
    for cid in ids:
        run("show", cid, "--db", str(db))
        run("show", cid, "--at", "3", "--db", str(db))
        run("compaction", cid, "--png", str(folder / "c.svg"), "--db", str(db))
    run("export", str(folder / "out"), "--db", str(db), ok=(0,))


@pytest.fixture()
def scratch() -> Iterator[Callable[[], Path]]:
    """Fresh folders per hypothesis example (a function-scoped tmp_path would be shared)."""
    made: list[str] = []

    def make() -> Path:
        made.append(tempfile.mkdtemp(prefix="pr-fuzz-"))
        return Path(made[-1])

    yield make
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


SEEDS = st.integers(0, 5)  # a few fleets; the variety is in the corruptions
GARBAGE = st.lists(
    st.one_of(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ")), st.sampled_from(
        [b"[1,2,3]", b'"a string"', b"null", b"{", b"\xff\xfe", b'{"id": null}', b"{}", DEEP_ARRAY.encode()]
    )),
    max_size=3,
)  # fmt: skip


@FUZZ
@given(seed=SEEDS, ops=corruptions())
def test_fuzzed_sqlite(scratch: Callable[[], Path], seed: int, ops: list[tuple]) -> None:
    folder = scratch()
    check_library(sqlite_source(folder, seed, ops), folder)


@FUZZ
@given(seed=SEEDS, ops=corruptions(), garbage=GARBAGE)
def test_fuzzed_jsonl(scratch: Callable[[], Path], seed: int, ops: list[tuple], garbage: list[bytes]) -> None:
    folder = scratch()
    check_library(jsonl_source(folder, seed, ops, garbage), folder)


@FUZZ
@given(seed=SEEDS, ops=corruptions())
def test_fuzzed_parquet(scratch: Callable[[], Path], seed: int, ops: list[tuple]) -> None:
    folder = scratch()
    check_library(parquet_source(folder, seed, ops), folder)


@pytest.mark.postgres
@FUZZ
@given(seed=SEEDS, ops=corruptions(), jsonb=st.sampled_from(["string", "mixed"]))
def test_fuzzed_postgres(
    pg: Any, pg_schema: Callable[[], str], scratch: Callable[[], Path], seed: int, ops: list[tuple], jsonb: str
) -> None:
    url = postgres_source(pg, pg_schema(), seed, ops, jsonb)
    check_library(url, scratch())


@settings(FUZZ, max_examples=CLI_EXAMPLES)
@given(seed=SEEDS, ops=corruptions(), kind=st.sampled_from(["sqlite", "jsonl", "parquet"]), garbage=GARBAGE)
def test_cli_on_fuzzed_sources(
    scratch: Callable[[], Path], seed: int, ops: list[tuple], kind: str, garbage: list[bytes]
) -> None:
    folder = scratch()
    source = {
        "sqlite": lambda: sqlite_source(folder, seed, ops),
        "jsonl": lambda: jsonl_source(folder, seed, ops, garbage),
        "parquet": lambda: parquet_source(folder, seed, ops),
    }[kind]()
    check_cli(source, folder)
