"""Store throughput: append entries/s (batches of 1 and 100) and read_entries latency.

Run: ``.venv/bin/python benchmarks/bench_store.py [--entries 2000] [--repeats 3]``.

One run measures, side by side: ``MemoryStore``, ``DuckDBStore`` in memory,
``DuckDBStore`` on a file, and the harness's own SQLite pattern written here
with ``sqlite3`` (a WAL file at the default ``synchronous``, so durability
is the same as a DuckDB commit; per append one transaction: ``SELECT
max(seq)+1``, then the INSERTs, then COMMIT; payloads ``JSON.stringify``-ed,
i.e. ``json.dumps``, and nothing validated, as the harness does), and the
DuckDB floor: the same rows appended to the store's own table (the
workbench schema, its two UNIQUE indexes) through DuckDB's Appender, one
flush (one autocommit statement, durable like the store's) per append,
with seqs from a counter and nothing validated or guarded: no DuckDBStore
append can cost less than that, so a target above the floor is out of
reach of any change to the store alone. Every
repeat opens fresh stores in a fresh folder and measures all of them in
turn, so the ratio DuckDBStore(file) / SQLite pattern of one repeat is
measured under the same machine load. Each figure printed is the median
over the repeats; the ratio is the median of the per-repeat ratios. The
same rates per second of process CPU time (every thread's) follow: on a
busy machine the wall clock mostly measures waiting. No assertion: the
numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pydantic_core

from poncho_replay.sources.ingest import ENTRY_COLUMNS
from poncho_replay.sql import run_script
from poncho_replay.store import DuckDBStore, MemoryStore

BATCH_SIZES = (1, 100)
FILE_STORE = "DuckDBStore(file)"
SQLITE = "SQLite pattern (WAL)"
FLOOR = "DuckDB floor (file)"


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


class SqlitePattern:
    """The harness's SQLite ``appendEntries`` (migration 8's table), for comparison.

    A WAL database at SQLite's default ``synchronous``; each append is one
    transaction: ``SELECT COALESCE(MAX(seq), 0)`` then one INSERT per entry.
    """

    def __init__(self, path: Path) -> None:
        self.con = sqlite3.connect(path, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.executescript(
            """
            CREATE TABLE conversation_entries (
                seq INTEGER NOT NULL, id TEXT NOT NULL UNIQUE, agent_id TEXT NOT NULL,
                tenant_id TEXT NOT NULL DEFAULT '__default__', conversation_id TEXT NOT NULL,
                type TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT,
                UNIQUE (conversation_id, seq));
            CREATE INDEX idx_entries_conversation ON conversation_entries (conversation_id, seq);
            """
        )

    def append_entries(
        self,
        conversation_id: str,
        agent_id: str,
        tenant_id: str | None,
        entries: list[dict[str, Any]],
    ) -> None:
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self.con.execute("BEGIN")
        try:
            (last,) = self.con.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM conversation_entries WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
            self.con.executemany(
                "INSERT INTO conversation_entries"
                " (seq, id, agent_id, tenant_id, conversation_id, type, payload, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        last + 1 + i,
                        e["id"],
                        agent_id,
                        tenant_id or "__default__",
                        conversation_id,
                        e["type"],
                        json.dumps(e),
                        created,
                    )
                    for i, e in enumerate(entries)
                ],
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def read_entries(self, conversation_id: str) -> list[dict[str, Any]]:
        rows = self.con.execute(
            "SELECT seq, payload, created_at FROM conversation_entries WHERE conversation_id = ? ORDER BY seq",
            (conversation_id,),
        ).fetchall()
        return _entries(rows)

    def close(self) -> None:
        self.con.close()


class DuckDBFloor:
    """The least a durable append to the store's table costs in DuckDB: no validation,
    no seq lookup or guard, one Appender flush (one autocommit statement) per append."""

    COLUMNS = ("source", *ENTRY_COLUMNS)

    def __init__(self, path: Path) -> None:
        self.con = duckdb.connect(str(path))
        run_script(self.con, "schema.sql")
        self.appender = self.con.appender("conversation_entries", columns=list(self.COLUMNS))
        self.seqs: dict[str, int] = {}

    def append_entries(
        self,
        conversation_id: str,
        agent_id: str,
        tenant_id: str | None,
        entries: list[dict[str, Any]],
    ) -> None:
        first = self.seqs.get(conversation_id, 0) + 1
        self.seqs[conversation_id] = first + len(entries) - 1
        created = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        self.appender.append_rows(
            (
                "store",
                first + i,
                e["id"],
                agent_id,
                tenant_id or "__default__",
                conversation_id,
                e["type"],
                pydantic_core.to_json(e).decode(),
                created,
            )
            for i, e in enumerate(entries)
        )
        self.appender.flush()

    def read_entries(self, conversation_id: str) -> list[dict[str, Any]]:
        rows = self.con.execute(
            "SELECT seq, payload, epoch_ms(created_at) FROM conversation_entries"
            " WHERE conversation_id = ? ORDER BY seq",
            [conversation_id],
        ).fetchall()
        return _entries(rows)

    def close(self) -> None:
        self.con.close()


def _entries(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """``(seq, payload, created)`` rows as the store's entries."""
    return [{**json.loads(payload), "seq": seq, "createdAt": created} for seq, payload, created in rows]


def append_rates(store: Any, total: int, batch: int, conversation: str) -> tuple[float, float]:
    """Entries per second appending ``total`` entries in batches of ``batch``: per wall
    second, and per second of this process's CPU (every thread's)."""
    batches = [[entry(conversation, i + k) for k in range(batch)] for i in range(0, total, batch)]
    wall, cpu = time.perf_counter(), time.process_time()
    for b in batches:
        store.append_entries(conversation, "owner", None, b)
    return total / (time.perf_counter() - wall), total / (time.process_time() - cpu)


def read_latency_ms(store: Any, conversation: str, repeats: int = 30) -> float:
    """Median milliseconds of read_entries on one conversation."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        store.read_entries(conversation)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(make: Callable[[], Any], single: int, batched: int) -> dict[str, float]:
    """One store's figures: entries/s at each batch size (per wall and per CPU second),
    and ms to read 1,000 entries."""
    store = make()
    try:
        figures = {}
        for size in BATCH_SIZES:
            total = single if size == 1 else batched
            wall, cpu = append_rates(store, total, size, f"b{size}")
            figures[f"batch={size}"], figures[f"cpu batch={size}"] = wall, cpu
        append_rates(store, 1000, 100, "read-me")
        figures["read"] = read_latency_ms(store, "read-me")
    finally:
        store.close() if hasattr(store, "close") else None
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--entries", type=int, default=2000, help="entries appended one by one per store"
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats; figures are their medians")
    args = parser.parse_args()
    batched = args.entries * 10
    runs: list[dict[str, dict[str, float]]] = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            makers: dict[str, Callable[[], Any]] = {
                "MemoryStore": MemoryStore,
                "DuckDBStore(:memory:)": lambda: DuckDBStore(":memory:"),
                FILE_STORE: lambda: DuckDBStore(Path(tmp) / "bench.duckdb"),
                SQLITE: lambda: SqlitePattern(Path(tmp) / "harness.sqlite"),
                FLOOR: lambda: DuckDBFloor(Path(tmp) / "floor.duckdb"),
            }
            runs.append(
                {name: measure(make, args.entries, batched) for name, make in makers.items()}
            )

    print(
        f"median of {args.repeats} repeats; {args.entries:,} single appends, {batched:,} entries in batches of 100"
    )
    print(
        f"{'store':24} {'batch=1 (entries/s)':>20} {'batch=100 (entries/s)':>22} {'read 1,000 (ms)':>16}"
    )
    for name in runs[0]:
        one, hundred, read = (
            statistics.median(run[name][k] for run in runs)
            for k in ("batch=1", "batch=100", "read")
        )
        print(f"{name:24} {one:20,.0f} {hundred:22,.0f} {read:16.2f}")
    for size in BATCH_SIZES:
        ratios = [run[FILE_STORE][f"batch={size}"] / run[SQLITE][f"batch={size}"] for run in runs]
        shown = ", ".join(f"{r:.2f}" for r in ratios)
        print(
            f"{FILE_STORE} / {SQLITE}, batch={size}: {statistics.median(ratios):.2f} (repeats: {shown})"
        )
    # On a busy machine both writers wait on fsync and the CPU, which flatters the wall
    # ratio; the CPU-time ratio is what an idle machine with a fast disk approaches.
    for size in BATCH_SIZES:
        key = f"cpu batch={size}"
        ratios = [run[FILE_STORE][key] / run[SQLITE][key] for run in runs]
        rates = ", ".join(
            f"{statistics.median(run[name][key] for run in runs):,.0f}" for name in runs[0]
        )
        floor = statistics.median(run[FILE_STORE][key] / run[FLOOR][key] for run in runs)
        print(
            f"per CPU second, batch={size}: {rates} ({', '.join(runs[0])}); "
            f"{FILE_STORE} / {SQLITE}: {statistics.median(ratios):.2f}; "
            f"{FILE_STORE} / {FLOOR}: {floor:.2f}"
        )


if __name__ == "__main__":
    main()
