"""The PostgreSQL reader against the real server (127.0.0.1:5432), in harness layout."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

import poncho_replay
from poncho_replay.errors import SourceError
from poncho_replay.harness_layout import (
    create_postgres,
    create_sqlite,
    write_postgres,
    write_sqlite,
)
from tests.load_data import T0, conversation, log
from tests.pg_server import connect

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.postgres

PASSWORD = "s3cr3t-Pa55w0rd!"


@pytest.fixture()
def schema() -> Iterator[tuple[psycopg.Connection, str]]:
    conn = connect()
    name = f"pr_load_{uuid.uuid4().hex[:10]}"
    try:
        yield conn, name
    finally:
        conn.rollback()
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.commit()
        conn.close()


def url(name: str, password: str | None = PASSWORD) -> str:
    auth = f"postgres:{quote(password, safe='')}" if password else "postgres"
    return f"postgresql://{auth}@127.0.0.1:5432/test?options=-csearch_path%3D{name}"


def fill(conn, name: str, *, version: int = 8, heavy_in_data: bool = False, jsonb: str = "string") -> None:
    create_postgres(conn, name, version=version)
    convs = [conversation("c1"), conversation("c2", owner="owner-b", tenant="acme")]
    write_postgres(conn, name, convs, {"c1": log("c1"), "c2": log("c2")} if version >= 8 else None,
                   heavy_in_data=heavy_in_data, jsonb=jsonb)  # fmt: skip


def table_rows(ws: poncho_replay.Workspace) -> tuple[list, list]:
    """Every harness column of both tables, in a fixed order (PostgreSQL and SQLite read in different orders)."""
    convs = ws.con.execute(
        "SELECT id, agent_id, tenant_id, owner_id, title, data::VARCHAR, message_count, created_at, updated_at, "
        "tool_result_archive::VARCHAR, harness_messages::VARCHAR, continuation_messages::VARCHAR, "
        "parent_conversation_id, has_pending_approvals, channel_meta::VARCHAR, parent_message_id "
        "FROM conversations ORDER BY id"
    ).fetchall()
    entries = ws.con.execute(
        "SELECT seq, id, agent_id, tenant_id, conversation_id, type, payload::VARCHAR, created_at "
        "FROM conversation_entries ORDER BY conversation_id, seq"
    ).fetchall()
    # JSONB reorders keys: compare JSON values, not text.
    norm = lambda v: json.loads(v) if isinstance(v, str) and v[:1] in "{[" else v
    return [tuple(map(norm, r)) for r in convs], [tuple(map(norm, r)) for r in entries]


@pytest.mark.parametrize("jsonb", ["string", "object", "mixed"])
def test_postgres_load_matches_sqlite_load(schema, tmp_path: Path, jsonb: str) -> None:
    """String scalars (the harness), objects (other tools) or both, row by row: the same tables as SQLite."""
    conn, name = schema
    fill(conn, name, jsonb=jsonb)
    shapes = {r[0] for r in conn.execute(
        f'SELECT jsonb_typeof(payload) FROM "{name}".conversation_entries '
        f'UNION SELECT jsonb_typeof(data) FROM "{name}".conversations').fetchall()}  # fmt: skip
    assert shapes == {"string": {"string"}, "object": {"object"}, "mixed": {"string", "object"}}[jsonb]
    db = tmp_path / "same.db"
    create_sqlite(db)
    write_sqlite(db, [conversation("c1"), conversation("c2", owner="owner-b", tenant="acme")],
                 {"c1": log("c1"), "c2": log("c2")})  # fmt: skip
    from_pg, from_file = poncho_replay.open(), poncho_replay.open()
    summary = from_pg.load(url(name))
    from_file.load(db)
    assert summary.kind == "postgres"
    assert summary.loaded == {"conversations": 2, "conversation_entries": 8}
    assert summary.anomalies == {} and summary.quarantined == {}
    assert table_rows(from_pg) == table_rows(from_file)
    assert from_pg.con.execute(
        "SELECT min(epoch_ms(created_at)) FROM conversation_entries"
    ).fetchone() == (T0 + 1000,)


def test_postgres_old_layout_and_agent_filter(schema) -> None:
    conn, name = schema
    fill(conn, name, version=2, heavy_in_data=True)
    ws = poncho_replay.open()
    summary = ws.load(url(name), agent_id="poncho-agent")
    assert summary.loaded == {"conversations": 2, "conversation_entries": 0}
    assert summary.anomalies == {"no_entries": 2}
    hm = ws.con.execute("SELECT harness_messages FROM conversations WHERE id = 'c1'").fetchone()[0]
    assert json.loads(hm) == conversation("c1")["_harnessMessages"]
    assert poncho_replay.open().load(url(name), agent_id="nobody").loaded["conversations"] == 0


def test_postgres_quarantine_wrong_type(schema) -> None:
    conn, name = schema
    fill(conn, name)
    conn.execute(f'SET search_path TO "{name}"')
    # the harness's string scalar, edited as the harness would have written it
    conn.execute(
        "UPDATE conversation_entries SET payload = to_jsonb(((payload #>> '{}')::jsonb - 'turnId')::text) "
        "WHERE id = 'c1-e2'"
    )
    conn.commit()
    ws = poncho_replay.open()
    summary = ws.load(url(name))
    assert summary.quarantined == {"missing_field": 1}
    assert ws.quarantine[["row_key", "conversation_id", "seq"]].values.tolist() == [
        ["c1-e2", "c1", 2]
    ]
    # Read-only: the source row is still there, untouched.
    assert conn.execute("SELECT count(*) FROM conversation_entries").fetchone() == (8,)


def test_password_never_shown(
    schema, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    conn, name = schema
    fill(conn, name)
    caplog.set_level(logging.DEBUG)
    ws = poncho_replay.open()
    summary = ws.load(url(name), progress=True)
    shown = [
        str(summary),
        repr(summary),
        summary._repr_html_(),
        json.dumps(summary.to_dict()),
        repr(ws),
        ws.conversations.to_string(),
        ws.entries.to_string(),
        caplog.text,
    ]
    shown += list(capsys.readouterr())
    assert all(PASSWORD not in s and quote(PASSWORD, safe="") not in s for s in shown)
    assert summary.source.startswith("postgresql://postgres:***@127.0.0.1")
    sources = {
        r[0]
        for r in ws.con.execute(
            "SELECT source FROM conversations UNION SELECT source FROM conversation_entries"
        ).fetchall()
    }
    assert sources == {summary.source}
    bad = url("x").replace("/test?", "/no_such_database_here?")
    with pytest.raises(SourceError) as info:
        poncho_replay.open().load(bad)
    assert PASSWORD not in str(info.value) and "***" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize(
    ("table", "column", "value", "reason"),
    [
        ("conversation_entries", "payload", "to_jsonb('not json'::text)", "invalid_json"),
        ("conversation_entries", "payload", "to_jsonb('[1, 2]'::text)", "wrong_type"),
        ("conversation_entries", "payload", "'[1, 2]'::jsonb", "wrong_type"),
        ("conversations", "data", "to_jsonb('{\"a\": '::text)", "invalid_json"),
        ("conversations", "data", "'[\"x\"]'::jsonb", "wrong_type"),
        ("conversations", "data", "to_jsonb('\"just a string\"'::text)", "wrong_type"),
    ],
)
def test_postgres_bad_json_rows_are_quarantined_with_their_text(
    schema, table: str, column: str, value: str, reason: str
) -> None:
    """A string scalar that is no JSON, JSON that is no object, a JSONB array where an object belongs."""
    conn, name = schema
    fill(conn, name)
    key = "c1-e2" if table == "conversation_entries" else "c1"
    conn.execute(f'UPDATE "{name}".{table} SET {column} = {value} WHERE id = %s', (key,))
    raw_text = conn.execute(
        f"SELECT CASE WHEN jsonb_typeof({column}) = 'string' THEN {column} #>> '{{}}' ELSE {column}::text END "
        f'FROM "{name}".{table} WHERE id = %s',
        (key,),
    ).fetchone()[0]
    conn.commit()
    ws = poncho_replay.open()
    summary = ws.load(url(name))
    assert summary.quarantined == {reason: 1}
    q = ws.quarantine.iloc[0]
    assert (q["table"], q["row_key"], q["reason"], q["detail"]) == (table, key, reason, column)
    assert json.loads(q["raw"])[column] == raw_text
    assert sum(summary.loaded.values()) + 1 == sum(summary.read.values())


def test_cli_simulate_writes_a_fleet_into_postgres(schema, tmp_path: Path) -> None:
    """`simulate --out postgresql://... --schema S` writes what `--out file.sqlite` writes, as string scalars."""
    from click.testing import CliRunner

    from poncho_replay.cli import cli

    conn, name = schema
    base = "postgresql://postgres@127.0.0.1:5432/test"
    args = ["simulate", "--conversations", "6", "--seed", "4", "--harness", "0.58.0", "--upgrade-to", "0.61.2"]
    runner = CliRunner()
    to_pg = runner.invoke(cli, [*args, "--out", base, "--schema", name])
    assert to_pg.exit_code == 0, to_pg.output
    again = runner.invoke(cli, [*args, "--out", base, "--schema", name])
    assert again.exit_code == 2 and "already holds harness tables. Pass --force" in again.output
    to_file = runner.invoke(cli, [*args, "--out", str(tmp_path / "f.sqlite")])
    assert to_file.exit_code == 0, to_file.output
    shapes = {r[0] for r in conn.execute(f'SELECT DISTINCT jsonb_typeof(payload) FROM "{name}".conversation_entries')}
    assert shapes == {"string"}
    from_pg, from_file = poncho_replay.open(), poncho_replay.open()
    from_pg.load(url(name, password=None))
    from_file.load(tmp_path / "f.sqlite")
    assert table_rows(from_pg) == table_rows(from_file)
