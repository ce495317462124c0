"""The shard audit on Dask (a LocalCluster of worker processes) equals the single-machine audit."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import poncho_replay
from poncho_replay import distributed as dist
from poncho_replay.errors import SourceError
from poncho_replay.simulate import Faults, fleet
from tests.test_audit_fixtures import CLASSES, workspace

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _plain(report: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(report).reset_index(drop=True)


def _export(ws: poncho_replay.Workspace, path: Path, shards: int = 3) -> tuple[Path, poncho_replay.Workspace]:
    ws.export(path, format="parquet", shards=shards)
    plain = poncho_replay.open()
    plain.load(path)  # a sharded export still loads as a plain export
    return path, plain


@pytest.mark.parametrize("cls", CLASSES)
def test_distributed_audit_equals_the_single_machine_audit_on_every_fixture(
    client: Any, tmp_path: Path, cls: str
) -> None:
    path, plain = _export(workspace(cls), tmp_path / "export")
    assert len(list(path.glob("shard=*/conversations.parquet"))) == 3
    for policy in ("0.58", "current"):
        got = dist.parity(path, client, policy)
        assert got.attrs["incomplete"] == {}
        pd.testing.assert_frame_equal(_plain(got), _plain(plain.parity(policy, shards=1)))


def test_distributed_audit_on_a_random_fleet_with_faults(client: Any, tmp_path: Path) -> None:
    data = fleet(30, seed=8, faults=Faults(lost=0.05, reorder=0.1, writeback=True, seed=8),
                 harness="0.58.0", upgrade_to="0.61.2")  # fmt: skip
    data.to_sqlite(tmp_path / "fleet.db")
    ws = poncho_replay.open()
    ws.load(tmp_path / "fleet.db")
    path, plain = _export(ws, tmp_path / "export", shards=4)
    diverged = 0
    for policy in ("0.58", "current"):
        want = _plain(plain.parity(policy, shards=1))
        diverged += int((want["verdict"] == "diverged").sum())
        pd.testing.assert_frame_equal(_plain(dist.parity(path, client, policy)), want)
        pd.testing.assert_frame_equal(_plain(plain.parity(policy, client=client)), want)
    assert diverged > 0


class _DiesOnce:
    """A comparison that kills its worker process the first time it runs anywhere (a marker file says so)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self, field: str, item: Any) -> Any:
        if not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(1)  # the worker dies mid-task; Dask reschedules the shard elsewhere
        return item


def test_a_killed_workers_shard_is_retried_to_the_same_result(client: Any, tmp_path: Path) -> None:
    path, plain = _export(workspace("faults"), tmp_path / "export")
    dies = _DiesOnce(tmp_path / "died")
    got = dist.parity(path, client, "0.58", dies)
    assert (tmp_path / "died").exists()  # a worker really died
    assert got.attrs["incomplete"] == {}
    want = plain.parity("0.58", lambda field, item: item, shards=1)
    pd.testing.assert_frame_equal(_plain(got), _plain(want))


def test_a_shard_that_fails_twice_is_named_and_the_rest_returned(client: Any, tmp_path: Path) -> None:
    path, plain = _export(workspace(CLASSES[-1]), tmp_path / "export")
    (path / "shard=1" / "entries.parquet").write_bytes(b"not parquet")
    got = dist.parity(path, client, "0.58")
    assert list(got.attrs["incomplete"]) == ["shard=1"]
    assert "SourceError" in got.attrs["incomplete"]["shard=1"]
    whole = _plain(plain.parity("0.58", shards=1)).set_index("conversation_id")
    rest = _plain(got).set_index("conversation_id")
    assert 0 < len(rest) < len(whole)
    pd.testing.assert_frame_equal(rest, whole.loc[rest.index])


def test_a_plain_export_is_refused_with_the_way_to_shard_it(client: Any, tmp_path: Path) -> None:
    workspace("chat").export(tmp_path / "plain", format="parquet")
    with pytest.raises(SourceError, match="shards=N"):
        dist.parity(tmp_path / "plain", client)


def test_without_a_client_the_shards_run_one_after_another(tmp_path: Path) -> None:
    path, plain = _export(workspace("compaction"), tmp_path / "export", shards=5)
    done: list[tuple[int, int]] = []
    got = dist.parity(path, None, "0.58", on_shard=lambda d, t: done.append((d, t)))
    assert done == [(k, 5) for k in range(1, 6)]
    pd.testing.assert_frame_equal(_plain(got), _plain(plain.parity("0.58", shards=1)))


def test_cli_exports_shards_and_audits_them_here_and_on_dask(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from poncho_replay.cli import cli

    runner = CliRunner()
    out = tmp_path / "sharded"
    made = runner.invoke(cli, ["export", "--format", "parquet", "--shards", "3", str(out)])
    assert made.exit_code == 0, made.output
    assert sorted(p.name for p in out.iterdir()) == ["shard=0", "shard=1", "shard=2"]
    plain = poncho_replay.open()
    plain.load(out)
    want = plain.parity(shards=1)
    for extra in ([], ["--dask", "local:1"]):
        run = runner.invoke(cli, ["audit", str(out), "--json", *extra])
        assert run.exit_code == 0, run.output
        got = json.loads(run.stdout)
        assert got["diverged"] == int((want["verdict"] == "diverged").sum())
        assert [c["conversation_id"] for c in got["conversations"]] == want["conversation_id"].tolist()
    refused = runner.invoke(cli, ["audit", "--dask", "local:1"])
    assert refused.exit_code == 2 and "--dask audits a sharded export folder" in refused.output
    jsonl = runner.invoke(cli, ["export", "--shards", "2", str(tmp_path / "j")])
    assert jsonl.exit_code == 2 and "--shards writes Parquet" in jsonl.output
