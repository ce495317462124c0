"""The audit by shards equals the whole-fleet audit, row for row (poncho_replay.shards)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poncho_replay
from poncho_replay.shards import SHARD_SQL, audit_shard, default_shards, shard_of, shard_tables
from poncho_replay.simulate import Faults, fleet
from tests.test_audit_fixtures import CLASSES, workspace

SHARD_COUNTS = [1, 2, 7]


def _plain(report: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(report).reset_index(drop=True)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("policy", ["0.58", "current"])
def test_sharded_audit_equals_the_whole_fleet_on_every_fixture(cls: str, policy: str) -> None:
    ws = workspace(cls)
    whole = ws.parity(policy, shards=1)
    for shards in SHARD_COUNTS[1:]:
        pd.testing.assert_frame_equal(_plain(ws.parity(policy, shards=shards)), _plain(whole))


def test_sharded_audit_equals_the_whole_fleet_on_a_random_fleet_with_faults(tmp_path: Path) -> None:
    data = fleet(25, seed=5, faults=Faults(lost=0.05, reorder=0.1, duplicate=0.02, writeback=True, seed=5),
                 harness="0.58.0", upgrade_to="0.61.2")  # fmt: skip
    db = tmp_path / "fleet.db"
    data.to_sqlite(db)
    ws = poncho_replay.open()
    ws.load(db)
    diverged = 0
    for policy in ("0.58", "current"):
        whole = ws.parity(policy, shards=1)
        diverged += int((whole["verdict"] == "diverged").sum())
        for shards in SHARD_COUNTS[1:]:
            pd.testing.assert_frame_equal(_plain(ws.parity(policy, shards=shards)), _plain(whole))
    assert diverged > 0  # the comparisons were not between reports of matches only


@settings(max_examples=50, deadline=None)
@given(
    source=st.text(max_size=8),
    cid=st.text(min_size=1, max_size=12),
    parent=st.none() | st.text(min_size=1, max_size=12),
    shards=st.integers(1, 64),
)
def test_python_and_sql_agree_on_the_shard(source: str, cid: str, parent: str | None, shards: int) -> None:
    con = duckdb.connect()
    got = con.execute(
        f"SELECT {SHARD_SQL} FROM (SELECT $source AS source, $id AS id, $parent AS parent_conversation_id)",
        {"source": source, "id": cid, "parent": parent, "shards": shards},
    ).fetchone()[0]
    assert got == shard_of(source, cid, parent, shards)


def test_a_thread_shares_its_parents_shard() -> None:
    ws = workspace("threads")
    rows = ws.con.execute("SELECT source, id, parent_conversation_id FROM conversations").fetchall()
    children = [r for r in rows if r[2] is not None]
    assert children
    for source, cid, parent in children:
        assert shard_of(source, cid, parent, 7) == shard_of(source, parent, None, 7)


def test_the_shard_unit_is_a_function_of_arrow_tables() -> None:
    """Each shard's tables, audited on their own (a fresh DuckDB each), concatenate to the whole audit."""
    ws = workspace(CLASSES[-1])
    whole = _plain(ws.parity(shards=1))
    parts = [audit_shard(shard_tables(ws.con, k, 3), "0.58") for k in range(3)]
    assert sum(len(p) for p in parts) == len(whole)
    got = pd.concat(parts, ignore_index=True).sort_values(["source", "conversation_id"], ignore_index=True)
    pd.testing.assert_frame_equal(got, whole)


def test_default_shard_count_grows_with_the_fleet() -> None:
    assert default_shards(0) == 1 and default_shards(250_000) == 1
    assert default_shards(1_000_000) == 4 and default_shards(10_000_000) == 40
    assert default_shards(1_000_000, memory_limit_bytes=1 << 30) > 4  # a tight limit: smaller shards


def test_bad_shard_count_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        workspace("chat").parity(shards=0)


def test_the_default_shards_a_large_fleet(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Without shards=, a fleet past SHARD_ENTRIES is audited by shards, with the same rows."""
    import poncho_replay.shards as shards_module

    ws = workspace(CLASSES[-1])
    whole = _plain(ws.parity(shards=1))
    monkeypatch.setattr(shards_module, "SHARD_ENTRIES", 40)
    got = ws.parity(profile=True)
    assert "shard 4/4" in capsys.readouterr().err  # 145 entries, 40 a shard
    pd.testing.assert_frame_equal(_plain(got), whole)
