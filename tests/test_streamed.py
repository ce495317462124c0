"""The audit read shard by shard from the file equals load-then-parity, rows and counts (poncho_replay.streamed)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

import poncho_replay
from poncho_replay.cli import cli
from poncho_replay.shards import shard_of
from poncho_replay.simulate import Faults, Fleet, fleet
from poncho_replay.store import DuckDBStore
from poncho_replay.streamed import ShardSpool, parity_streamed, spool_source
from tests.pg_server import TEST_URL, connect
from tests.test_audit_fixtures import CLASSES, _db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _whole(db: Path, policy: str, name: str | None = None) -> tuple[pd.DataFrame, dict]:
    ws = poncho_replay.open()
    summary = ws.load(db, name=name, progress=False)
    report = pd.DataFrame(ws.parity(policy, shards=1)).sort_values(["source", "conversation_id"], ignore_index=True)
    return report, summary.to_dict()


def _assert_streamed_equals_whole(db: Path, policy: str, shard_counts: list[int], jobs: int = 1) -> pd.DataFrame:
    whole, counts = _whole(db, policy)
    for shards in shard_counts:
        report, summary = parity_streamed(db, policy, shards=shards, jobs=jobs)
        pd.testing.assert_frame_equal(pd.DataFrame(report).reset_index(drop=True), whole)
        assert summary.to_dict() == counts, shards
    return whole


@pytest.mark.parametrize("cls", CLASSES)
def test_streamed_audit_equals_load_then_parity_on_every_fixture(cls: str) -> None:
    assert len(_assert_streamed_equals_whole(_db(cls), "0.58", [2])) > 0


@pytest.fixture(scope="module")
def random_data() -> Fleet:
    """An upgraded fleet with faults and threads."""
    return fleet(60, seed=8, faults=Faults(lost=0.05, reorder=0.1, duplicate=0.02, writeback=True, seed=8),
                 harness="0.58.0", upgrade_to="0.61.2")  # fmt: skip


@pytest.fixture(scope="module")
def random_fleet(random_data: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random fleet as a harness SQLite file."""
    db = tmp_path_factory.mktemp("streamed") / "fleet.db"
    random_data.to_sqlite(db)
    return db


@pytest.fixture()
def random_postgres(random_data: Fleet) -> Iterator[str]:
    """The random fleet in a throwaway PostgreSQL schema, JSONB as string scalars (production); its URL."""
    conn = connect()
    name = f"pr_stream_{uuid.uuid4().hex[:10]}"
    try:
        random_data.to_postgres(conn, name)
        conn.commit()
        yield f"{TEST_URL}?options=-csearch_path%3D{name}"
    finally:
        conn.rollback()
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.commit()
        conn.close()


def test_streamed_audit_equals_load_then_parity_on_a_random_fleet(random_fleet: Path) -> None:
    diverged = 0
    for policy, shard_counts, jobs in (("0.58", [7], 1), ("current", [3], 2)):  # 2: in worker processes
        whole = _assert_streamed_equals_whole(random_fleet, policy, shard_counts, jobs)
        diverged += int((whole["verdict"] == "diverged").sum())
    assert diverged > 0


HOSTILE = "hostile"
"""The source name of the hostile copy: shards hash it, so a name that does not depend on the temp path."""


def _hostile_copy(tmp_path: Path, shards: int) -> Path:
    """A fixture with bad rows of every kind the reader flags, and one entry id in two shards."""
    db = tmp_path / "hostile.db"
    shutil.copy(_db("threads"), db)
    con = sqlite3.connect(db)
    # the harness's UNIQUE(id) would forbid the cross-shard duplicate: a table without it
    con.executescript(
        "CREATE TABLE e2 AS SELECT * FROM conversation_entries; DROP TABLE conversation_entries;"
        "ALTER TABLE e2 RENAME TO conversation_entries;"
    )
    ids = [r[0] for r in con.execute("SELECT id FROM conversations ORDER BY id")]
    by_shard: dict[int, str] = {}
    for cid in ids:
        by_shard.setdefault(shard_of(HOSTILE, cid, None, shards), cid)
    (a, b) = list(by_shard.values())[:2]
    row = con.execute("SELECT * FROM conversation_entries WHERE conversation_id = ? ORDER BY seq LIMIT 1", [a]).fetchone()
    cols = [d[1] for d in con.execute("PRAGMA table_info(conversation_entries)")]
    put = f"INSERT INTO conversation_entries ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    record = dict(zip(cols, row, strict=True))
    con.execute(put, list({**record, "conversation_id": b, "seq": 999}.values()))  # the same id in b's shard
    con.execute(put, list({**record, "id": "bad-json", "seq": 1000, "payload": "{not json"}.values()))
    con.execute(put, list({**record, "id": "blob", "seq": 1001, "payload": b"\x00\xff"}.values()))
    con.execute(put, list({**record, "id": "orphan", "conversation_id": "no-such-conversation", "seq": 1}.values()))
    con.commit()
    con.close()
    return db


def test_streamed_audit_counts_what_load_counts_on_hostile_rows(tmp_path: Path) -> None:
    db = _hostile_copy(tmp_path, 3)
    whole, counts = _whole(db, "0.58", HOSTILE)
    assert counts["quarantined"] and counts["anomalies"].get("duplicate_id") == 1  # the copy holds what it should
    assert counts["anomalies"].get("orphan_entries") == 1
    report, summary = parity_streamed(db, shards=3, name=HOSTILE)
    pd.testing.assert_frame_equal(pd.DataFrame(report).reset_index(drop=True), whole)
    assert summary.to_dict() == counts


def test_the_spool_keeps_each_thread_with_its_parent(random_fleet: Path, tmp_path: Path) -> None:
    with sqlite3.connect(random_fleet) as con:
        parent_of = {cid: json.loads(data).get("parentConversationId") for cid, data in con.execute("SELECT id, data FROM conversations")}
    spool = spool_source(random_fleet, tmp_path / "spool", shards=5)
    shard: dict[str, int] = {}
    for k in range(spool.shards):
        for table, path in spool.parts(k):
            if table == "conversations":
                with pa.memory_map(str(path)) as src:
                    shard.update(dict.fromkeys(pa.ipc.open_file(src).read_all()["id"].to_pylist(), k))
    assert shard.keys() == parent_of.keys()
    assert len(set(shard.values())) == 5  # spread over the shards, or the test proves nothing
    threads = {cid: parent for cid, parent in parent_of.items() if parent is not None}
    assert threads
    for cid, parent in threads.items():
        assert shard[cid] == shard[parent]


def test_many_small_batches_and_a_change_of_column_type_keep_the_rows_in_order(
    random_fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import poncho_replay.sources.sqlite as sqlite_reader

    monkeypatch.setattr(sqlite_reader, "BATCH_ROWS", 97)  # many batches a shard: spool files written to and reopened
    real = ShardSpool.add

    def retyped(self: ShardSpool, table: str, batch: pa.RecordBatch) -> int:
        # every other entry batch with its text as large_string: a new spool part, the order kept
        if table == "conversation_entries" and self._calls % 2:
            batch = pa.RecordBatch.from_arrays(
                [c.cast(pa.large_string()) if pa.types.is_string(c.type) else c for c in batch.columns],
                names=batch.schema.names,
            )
        self._calls += 1
        return real(self, table, batch)

    monkeypatch.setattr(ShardSpool, "_calls", 0, raising=False)
    monkeypatch.setattr(ShardSpool, "add", retyped)
    _assert_streamed_equals_whole(random_fleet, "0.58", [3])


def test_the_cli_audits_a_big_file_by_shards_with_the_same_answer(tmp_path: Path) -> None:
    db = _db("faults")
    runner = CliRunner()
    streamed = runner.invoke(cli, ["--quiet", "audit", str(db), "--shards", "3", "--json"])
    whole = runner.invoke(cli, ["--quiet", "audit", str(db), "--shards", "1", "--json"])
    assert streamed.exit_code == 0, streamed.output
    assert whole.exit_code == 0, whole.output
    assert json.loads(streamed.stdout) == json.loads(whole.stdout)
    assert len(json.loads(whole.stdout)["conversations"]) > 0


def test_streamed_audit_of_postgres_equals_load_then_parity(random_postgres: str, random_data: Fleet) -> None:
    """The production database is read once, by shards, with the rows and counts of a whole load."""
    _assert_streamed_equals_whole(random_postgres, "0.58", [3])  # type: ignore[arg-type]
    report, summary = parity_streamed(random_postgres, shards=3)
    assert summary.kind == "postgres" and summary.source == random_postgres  # no password in this URL
    assert sorted(report["conversation_id"]) == sorted(c["conversationId"] for c in random_data.conversations)
    runner = CliRunner()
    streamed = runner.invoke(cli, ["--quiet", "audit", random_postgres, "--shards", "3", "--json"])
    assert streamed.exit_code == 0, streamed.output
    assert json.loads(streamed.stdout)["conversations_total"] == len(report)
    rows = {c["conversation_id"]: c["verdict"] for c in json.loads(streamed.stdout)["conversations"]}
    assert rows == dict(zip(report["conversation_id"], report["verdict"], strict=True))


def test_a_workspace_has_no_keys_until_a_store_writes_to_it() -> None:
    """Loads skip the keys; the first DuckDBStore on the database adds exactly the three its writes rest on."""
    ws = poncho_replay.open()
    ws.load(_db("harness-0.58-sample"), progress=False)
    keys = "SELECT table_name, index_name, is_unique FROM duckdb_indexes() ORDER BY ALL"
    constraints = "SELECT count(*) FROM duckdb_constraints() WHERE constraint_type IN ('UNIQUE', 'PRIMARY KEY')"
    assert ws.con.execute(keys).fetchall() == []
    assert ws.con.execute(constraints).fetchone() == (0,)
    copy_first = "INSERT INTO conversation_entries SELECT * FROM conversation_entries ORDER BY ordinal LIMIT 1"
    ws.con.execute("BEGIN")
    ws.con.execute(copy_first)  # nothing stops a second row with the same keys yet
    ws.con.execute("ROLLBACK")
    DuckDBStore(connection=ws.con)
    assert ws.con.execute(keys).fetchall() == [
        ("conversation_entries", "conversation_entries_id_key", True),
        ("conversation_entries", "conversation_entries_seq_key", True),
        ("conversations", "conversations_key", True),
    ]
    with pytest.raises(duckdb.ConstraintException):
        ws.con.execute(copy_first)
