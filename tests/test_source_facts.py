"""Facts of a whole source, read by the causes and computed outside the shards (sql/source_facts.sql).

A 0.58 turn whose ``user_message`` and finalize appends were both lost
leaves the blob's tail exactly as a turn 0.59.3+ wrote (SPEC §5, §7). Only
the database as a whole can tell them apart: a source no write of 0.59.3+
shows was never written by it, so the tail is a lost append. Every audit
path must read that fact of the whole source, whichever shard holds the
write that shows it (DESIGN "Shards").
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import poncho_replay
from poncho_replay import audit, distributed, simulate
from poncho_replay.shards import audit_shard, shard_of, shard_tables
from poncho_replay.simulate import Fleet, Simulator, Turn
from poncho_replay.streamed import parity_streamed
from poncho_replay.workspace import open_for_audit


def _write(tmp_path: Path, *, queue_release_elsewhere: bool) -> tuple[Path, str, str | None, Simulator]:
    """A 0.58 conversation whose last turn lost both appends; with a second one 0.61.2 went on writing."""
    sim = Simulator(seed=3)
    upgraded = None
    if queue_release_elsewhere:  # written first: the lost tail is dated after the source's first 0.59.3+ write
        upgraded = sim.create("owner-b", "Upgraded")
        sim.turn(upgraded, Turn("x", reply="y"))
        sim.upgrade("current", upgraded)
        sim.subagent_result(upgraded, "sub-1", "task", "done")  # queued with a taskOutcome (SPEC §7)
    lost = sim.create("owner-a", "Last turn lost")
    sim.turn(lost, Turn("one", reply="r1"))
    sim.turn(lost, Turn("two", reply="r2"))
    sim.plan.force("user_turn", "lost")
    sim.plan.force("finalize", "lost")
    sim.turn(lost, Turn("three", reply="r3"))
    sim.flush()
    db = tmp_path / "fleet.db"
    Fleet.from_simulator(sim).to_sqlite(db)
    return db, lost, upgraded, sim


def _causes(report: pd.DataFrame, conversation_id: str) -> list[str]:
    (causes,) = report.loc[report["conversation_id"] == conversation_id, "causes"]
    return list(causes)


def test_an_unlogged_tail_in_a_database_0593_never_wrote_is_a_lost_append(tmp_path: Path) -> None:
    db, lost, _, sim = _write(tmp_path, queue_release_elsewhere=False)
    ws = poncho_replay.open()
    ws.load(db, progress=False)
    assert {t.cause for t in sim.truth if t.conversation_id == lost} == {"lost_or_reordered_append"}
    (facts,) = audit.source_facts(ws.con).to_pylist()
    assert facts["queue_writes_seen"] is False and facts["queue_writes_from"] is None  # no 0.59.3+ write
    assert _causes(ws.parity("0.58"), lost) == ["lost_or_reordered_append"]


def _separating_shards(label: str, a: str, b: str) -> int:
    for shards in range(2, 40):
        if shard_of(label, a, None, shards) != shard_of(label, b, None, shards):
            return shards
    raise AssertionError("no shard count separates the two conversations")


def test_a_0593_write_in_another_shard_decides_as_in_the_whole_fleet(tmp_path: Path) -> None:
    """The upgraded conversation's queued result (another shard) makes the tail ambiguous: every path says so."""
    db, lost, upgraded, _ = _write(tmp_path, queue_release_elsewhere=True)
    assert upgraded is not None
    ws = poncho_replay.open()
    ws.load(db, progress=False)
    (label,) = ws.con.execute("SELECT DISTINCT source FROM conversations").fetchone()
    (facts,) = audit.source_facts(ws.con).to_pylist()
    assert facts["source"] == label and facts["queue_writes_seen"] is True
    whole = pd.DataFrame(ws.parity("0.58", shards=1))
    # with a 0.59.3+ write in the database, the tail may be that release's: the audit names it so
    assert _causes(whole, lost) == ["dual_write_ended"]
    shards = _separating_shards(label, lost, upgraded)

    by_shards = pd.DataFrame(ws.parity("0.58", shards=shards))
    pd.testing.assert_frame_equal(by_shards, whole)

    parts = [audit_shard(shard_tables(ws.con, k, shards), "0.58") for k in range(shards)]
    alone = pd.concat([p for p in parts if len(p)], ignore_index=True).sort_values("conversation_id", ignore_index=True)
    pd.testing.assert_frame_equal(alone, whole.sort_values("conversation_id", ignore_index=True))

    streamed, _ = parity_streamed(db, "0.58", shards=shards)
    pd.testing.assert_frame_equal(pd.DataFrame(streamed), whole)

    export = tmp_path / "export"
    ws.export(export, format="parquet", shards=shards)
    plain = poncho_replay.open()
    plain.load(export, progress=False)
    from_export = pd.DataFrame(plain.parity("0.58", shards=1))
    assert _causes(from_export, lost) == ["dual_write_ended"]
    pd.testing.assert_frame_equal(pd.DataFrame(distributed.parity(export, None, "0.58")), from_export)


def test_the_dask_tasks_read_the_whole_exports_facts(tmp_path: Path) -> None:
    dask = pytest.importorskip("distributed")
    db, lost, upgraded, _ = _write(tmp_path, queue_release_elsewhere=True)
    assert upgraded is not None
    ws = poncho_replay.open()
    ws.load(db, progress=False)
    (label,) = ws.con.execute("SELECT DISTINCT source FROM conversations").fetchone()
    export = tmp_path / "export"
    ws.export(export, format="parquet", shards=_separating_shards(label, lost, upgraded))
    with (
        dask.LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None) as cluster,
        dask.Client(cluster) as client,
    ):
        report = distributed.parity(export, client, "0.58")
    assert report.attrs["incomplete"] == {}
    assert _causes(report, lost) == ["dual_write_ended"]


def _facts_by_hand(ws: poncho_replay.Workspace) -> dict[str, object]:
    """The source's facts in Python, from the loaded entries (the SQL's reference)."""
    rows = ws.con.execute("SELECT type, payload::VARCHAR, created_at FROM conversation_entries").fetchall()
    queue = [at for kind, payload, at in rows if kind == "subagent_result" and "taskOutcome" in json.loads(payload)["result"]]
    transcript = [at for kind, _, at in rows if kind not in ("subagent_result", "callback_started")]
    stamps = [(json.loads(payload)["message"].get("metadata") or {}).get("timestamp") for kind, payload, _ in rows
              if kind in ("user_message", "assistant_message")]  # fmt: skip
    dated = [ts for ts in stamps if ts is not None]  # a callback's reply bubble has no metadata
    return {
        "queue_writes_seen": bool(queue),
        "queue_writes_from": min(queue, default=None),
        "dual_write_from": datetime.fromtimestamp(min(dated) / 1000, UTC).replace(tzinfo=None) if dated else None,
        "dual_write_until": max(transcript, default=None),
    }


def _shard_facts(ws: poncho_replay.Workspace, shard: int, shards: int) -> pa.Table:
    """The facts one shard's rows alone show."""
    tables = shard_tables(ws.con, shard, shards)
    con = open_for_audit().con
    try:
        con.register("_e", tables.entries)
        con.execute("INSERT INTO conversation_entries BY NAME SELECT * FROM _e")
        return audit.source_facts(con)
    finally:
        con.close()


@pytest.mark.parametrize("seed", [0, 1])
def test_facts_of_shards_merge_into_the_whole_sources(tmp_path: Path, seed: int) -> None:
    """Each fact is an any, a first or a last: the shards' facts, merged, are the whole source's, whatever the split."""
    data = simulate.fleet(40, seed=seed, harness="0.58.0", upgrade_to="current", timeline="dated")
    db = tmp_path / "fleet.db"
    data.to_sqlite(db)
    ws = poncho_replay.open()
    ws.load(db, progress=False)
    (whole,) = audit.source_facts(ws.con).to_pylist()
    assert {k: v for k, v in whole.items() if k != "source"} == _facts_by_hand(ws)
    assert whole["queue_writes_seen"] and whole["dual_write_from"] < whole["dual_write_until"]
    for shards in (2, 5):
        parts = [_shard_facts(ws, k, shards) for k in range(shards)]
        assert any(p.to_pylist() != [whole] for p in parts)  # no shard alone shows the whole source's facts
        assert audit.merge_source_facts(parts).to_pylist() == [whole]
    assert audit.merge_source_facts([]).num_rows == 0
