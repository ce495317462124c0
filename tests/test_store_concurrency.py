"""Many writers on one conversation, and a writer killed mid-batch.

Every entry must land, seqs must be exactly 1..N, each batch must get
consecutive seqs, and a batch interrupted by SIGKILL must be all or nothing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from poncho_replay.store import DuckDBStore, MemoryStore
from poncho_replay.testing.store_contract import harness

THREADS = 8
APPENDS_PER_THREAD = 250


def _hammer(stores: list[Any], conversation_id: str) -> list[list[str]]:
    """THREADS threads x APPENDS_PER_THREAD appends of 1-3 entries; the id batches written."""
    batches: list[list[str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        store = stores[n % len(stores)]
        rng = random.Random(n)
        start.wait()
        try:
            for i in range(APPENDS_PER_THREAD):
                ids = [f"w{n}-{i}-{k}" for k in range(rng.randint(1, 3))]
                store.append_entries(
                    conversation_id, "owner", None, [harness(x, "user", x) for x in ids]
                )
                with lock:
                    batches.append(ids)
        except BaseException as exc:  # noqa: BLE001 - reported below, on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return batches


def _assert_gap_free(store: Any, conversation_id: str, batches: list[list[str]]) -> None:
    entries = store.read_entries(conversation_id)
    expected = sum(len(b) for b in batches)
    assert len(batches) == THREADS * APPENDS_PER_THREAD
    assert [e.seq for e in entries] == list(range(1, expected + 1))
    seq_of = {e.id: e.seq for e in entries}
    assert len(seq_of) == expected and set(seq_of) == {x for b in batches for x in b}
    for ids in batches:  # a batch is one block of consecutive seqs, in input order
        first = seq_of[ids[0]]
        assert [seq_of[x] for x in ids] == list(range(first, first + len(ids)))


@pytest.mark.slow
def test_threads_sharing_one_duckdb_store(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "c.duckdb", agent_id="a") as store:
        batches = _hammer([store], "hot")
        _assert_gap_free(store, "hot", batches)


@pytest.mark.slow
def test_threads_on_several_stores_over_one_file(tmp_path: Path) -> None:
    stores = [DuckDBStore(tmp_path / "c.duckdb", agent_id="a") for _ in range(4)]
    try:
        batches = _hammer(stores, "hot")
        for store in stores:
            _assert_gap_free(store, "hot", batches)
    finally:
        for store in stores:
            store.close()


def test_threads_sharing_the_memory_store() -> None:
    store = MemoryStore()
    batches = _hammer([store], "hot")
    _assert_gap_free(store, "hot", batches)


CHILD = """
import sys
from poncho_replay.store import DuckDBStore
store = DuckDBStore(sys.argv[1], agent_id="a")
size = int(sys.argv[2])
k = 0
while True:
    store.append_entries("big", "o", None, [
        {"id": f"b{k}-{i}", "type": "harness_message", "turnId": f"t{k}",
         "message": {"role": "user", "content": "x" * 200}} for i in range(size)])
    print(k, flush=True)
    k += 1
"""


@pytest.mark.slow
def test_sigkill_mid_batch_leaves_whole_batches(tmp_path: Path) -> None:
    path = tmp_path / "crash.duckdb"
    size = 5000
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(size)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        committed = [int(child.stdout.readline()) for _ in range(2)]
        time.sleep(random.Random(7).uniform(0.05, 0.3))  # land somewhere inside a later batch
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    with DuckDBStore(path, agent_id="a") as store:  # the file opens (WAL replayed)
        entries = store.read_entries("big")
    per_batch: dict[str, int] = defaultdict(int)
    for e in entries:
        per_batch[e.id.split("-")[0]] += 1
    assert set(per_batch.values()) == {size}  # no batch half-written
    assert {f"b{k}" for k in committed} <= per_batch.keys()  # acknowledged batches survived
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
