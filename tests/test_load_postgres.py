"""The PostgreSQL reader against the real server (127.0.0.1:5432), in harness layout."""

from __future__ import annotations

import json
import logging
import os
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

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.postgres

BASE = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "s3cr3t-Pa55w0rd!"


def _server() -> psycopg.Connection | None:
    try:
        return psycopg.connect(BASE, connect_timeout=3)
    except psycopg.OperationalError:
        if os.environ.get("CI") == "true":
            raise
        return None


@pytest.fixture()
def schema() -> Iterator[tuple[psycopg.Connection, str]]:
    conn = _server()
    if conn is None:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 (CI=true makes this a failure)")
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


def fill(conn, name: str, *, version: int = 8, heavy_in_data: bool = False) -> None:
    create_postgres(conn, name, version=version)
    convs = [conversation("c1"), conversation("c2", owner="owner-b", tenant="acme")]
    write_postgres(conn, name, convs, {"c1": log("c1"), "c2": log("c2")} if version >= 8 else None,
                   heavy_in_data=heavy_in_data)  # fmt: skip


def table_rows(ws: poncho_replay.Workspace) -> tuple[list, list]:
    convs = ws.con.execute(
        "SELECT id, agent_id, tenant_id, owner_id, title, data::VARCHAR, message_count, created_at, updated_at, "
        "tool_result_archive, harness_messages, continuation_messages, has_pending_approvals FROM conversations ORDER BY id"
    ).fetchall()
    entries = ws.con.execute(
        "SELECT seq, id, agent_id, tenant_id, conversation_id, type, payload, created_at FROM conversation_entries "
        "ORDER BY conversation_id, seq"
    ).fetchall()
    # JSONB reorders keys: compare JSON values, not text.
    norm = lambda v: json.loads(v) if isinstance(v, str) and v[:1] in "{[" else v
    return [tuple(map(norm, r)) for r in convs], [tuple(map(norm, r)) for r in entries]


def test_postgres_load_matches_sqlite_load(schema, tmp_path: Path) -> None:
    conn, name = schema
    fill(conn, name)
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
    conn.execute("UPDATE conversation_entries SET payload = payload - 'turnId' WHERE id = 'c1-e2'")
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
