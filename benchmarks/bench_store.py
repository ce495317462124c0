"""Store throughput: append entries/s (batches of 1 and 100) and read_entries latency.

Run: ``.venv/bin/python benchmarks/bench_store.py [--entries 2000]``. Prints one
line per store and measure; no assertion (numbers depend on the machine).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from poncho_replay.store import DuckDBStore, MemoryStore


def entry(conversation: str, n: int) -> dict[str, Any]:
    """A typical harness_message (about 300 bytes of JSON)."""
    return {
        "id": f"{conversation}-{n}",
        "type": "harness_message",
        "turnId": f"t{n // 10}",
        "message": {
            "role": "user",
            "content": "lorem ipsum " * 20,
            "metadata": {"id": f"m{n}", "timestamp": n},
        },
    }


def append_rate(store: Any, total: int, batch: int, conversation: str) -> float:
    """Entries per second appending ``total`` entries in batches of ``batch``."""
    batches = [[entry(conversation, i + k) for k in range(batch)] for i in range(0, total, batch)]
    start = time.perf_counter()
    for b in batches:
        store.append_entries(conversation, "owner", None, b)
    return total / (time.perf_counter() - start)


def read_latency_ms(store: Any, conversation: str, repeats: int = 30) -> float:
    """Median milliseconds of read_entries on one conversation."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        store.read_entries(conversation)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=2000, help="entries appended per measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        makers: dict[str, Callable[[], Any]] = {
            "MemoryStore": MemoryStore,
            "DuckDBStore(:memory:)": lambda: DuckDBStore(":memory:"),
            "DuckDBStore(file)": lambda: DuckDBStore(Path(tmp) / "bench.duckdb"),
        }
        print(
            f"{'store':24} {'batch=1 (entries/s)':>20} {'batch=100 (entries/s)':>22} {'read 1,000 (ms)':>16}"
        )
        for name, make in makers.items():
            store = make()
            one = append_rate(store, min(args.entries, 2000), 1, "single")
            hundred = append_rate(store, args.entries * 10, 100, "batched")
            append_rate(store, 1000, 100, "read-me")
            read = read_latency_ms(store, "read-me")
            print(f"{name:24} {one:20,.0f} {hundred:22,.0f} {read:16.2f}")
            getattr(store, "close", lambda: None)()


if __name__ == "__main__":
    main()
