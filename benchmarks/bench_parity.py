"""Benchmark: ``Workspace.parity()`` (set-based SQL) against a per-conversation Python loop.

Issue 6's yardstick. A simulated fleet (``simulate.fleet(20_000, seed=1)``,
about 940k entries, with a few percent of every dual-write fault) is put in
a DuckDB file once through the loaders' own staging path and cached; then
each side runs in its own child process, so each peak RSS is its own:

* ``sql``: ``ws.parity()`` on a workspace holding the fleet (in memory by
  default, or a DuckDB file with ``--file``, spilling to ``--temp-dir``);
* ``python``: read every blob and log from the same tables in bulk (Arrow
  batches, grouped by conversation), then per conversation
  ``rebuild.rebuild_conversation`` + ``dualwrite.parity_check`` +
  ``audit.align`` on the three fields.

Both report how many conversations diverge and how many the harness's own
check flags, so the two sides can be seen to agree. Usage:

    .venv/bin/python benchmarks/bench_parity.py [--conversations 20000] [--seed 1]
        [--cache DIR] [--file] [--memory-limit 8GB] [--skip-python]

Prints a markdown table; asserts nothing (timing lives here, not in tests).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
FIELDS = (
    ("llm", "_harnessMessages"),
    ("display", "messages"),
    ("pending", "pendingSubagentResults"),
)
BATCH = 20_000


def faults(seed: int) -> Any:
    """A few percent of each append fault; compactions overtaken now and then."""
    from poncho_replay.simulate import Faults

    return Faults(lost=0.02, fail=0.02, duplicate=0.02, reorder=0.05, seed=seed)


def build(path: Path, n: int, seed: int) -> None:
    """Simulate the fleet and stage it into a DuckDB file exactly as ``Workspace.load`` would."""
    import duckdb
    import pyarrow as pa

    from poncho_replay.harness_layout import conversation_row, entry_row
    from poncho_replay.simulate import fleet
    from poncho_replay.sources.ingest import Stager

    t0 = time.perf_counter()
    f = fleet(n, seed=seed, faults=faults(seed))
    print(
        f"simulated {len(f.conversations):,} conversations, {f.entry_count:,} entries "
        f"in {time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )
    tmp = path.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp), config={"enable_progress_bar": False})
    stager = Stager(con)
    rows = [conversation_row(c, agent_id=f.agent_id) for c in f.conversations]
    stager.add("conversations", _text_table(pa, rows))
    batch: list[dict[str, Any]] = []
    for cid, agent, tenant, entry in f.entry_rows():
        batch.append(entry_row(cid, entry, agent_id=agent, tenant_id=tenant))
        if len(batch) == BATCH:
            stager.add("conversation_entries", _text_table(pa, batch))
            batch = []
    stager.add("conversation_entries", _text_table(pa, batch))
    summary = stager.finish("sim", "simulated")
    con.execute("CHECKPOINT")
    con.close()
    tmp.rename(path)
    print(
        f"cached {summary.loaded} in {path} ({path.stat().st_size / 2**20:,.0f} MiB)",
        file=sys.stderr,
    )


def _text_table(pa: Any, rows: list[dict[str, Any]]) -> Any:
    """Rows as an Arrow table of text columns (what every reader hands the stager)."""
    if not rows:
        return pa.table({})
    return pa.table(
        {
            k: pa.array([None if r[k] is None else str(r[k]) for r in rows], pa.string())
            for k in rows[0]
        }
    )


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_sql(cache: Path, on_file: bool, memory_limit: str | None, temp_dir: str) -> dict[str, Any]:
    """``ws.parity()`` on a workspace holding the cached fleet."""
    import duckdb

    import poncho_replay

    if on_file:
        work = Path(temp_dir) / "parity-workspace.duckdb"
        shutil.copyfile(cache, work)
        ws = poncho_replay.open(work)
    else:
        ws = poncho_replay.open()
        ws.con.execute("ATTACH ? AS cache (READ_ONLY)", [str(cache)])
        for table in ("conversations", "conversation_entries"):
            ws.con.execute(f"INSERT INTO {table} SELECT * FROM cache.{table}")
        ws.con.execute("DETACH cache")
    if memory_limit:
        ws.con.execute("SET memory_limit = ?", [memory_limit])
    ws.con.execute("SET temp_directory = ?", [temp_dir])
    rss_before = peak_rss_mib()
    t0 = time.perf_counter()
    report = ws.parity()
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "peak_rss_mib": peak_rss_mib(),
        "rss_before_mib": rss_before,
        "conversations": len(report),
        "diverged": int((report["verdict"] == "diverged").sum()),
        "harness_flagged": int((report["harness_verdict"] != "OK").sum()),
        "duckdb": duckdb.__version__,
    }


def run_python(cache: Path) -> dict[str, Any]:
    """The per-conversation loop over the same tables."""
    import duckdb

    from poncho_replay.audit import align
    from poncho_replay.dualwrite import parity_check
    from poncho_replay.rebuild import rebuild_conversation

    con = duckdb.connect(str(cache), read_only=True)
    t0 = time.perf_counter()
    n = diverged = flagged = 0
    for cid, blob, entries in _conversations(con):
        served = rebuild_conversation(blob, entries, policy="0.58", cutover=True)
        hm, msgs = blob.get("_harnessMessages"), blob.get("messages")
        check = parity_check(
            entries,
            hm if isinstance(hm, list) else None,
            msgs if isinstance(msgs, list) else None,
            conversation_id=cid,
        )
        counts = [align(_list(served.get(key)), _list(blob.get(key))) for _, key in FIELDS]
        n += 1
        diverged += any(a.first_position is not None for a in counts)
        flagged += not check.log_line.endswith(" OK")
    return {
        "seconds": time.perf_counter() - t0,
        "peak_rss_mib": peak_rss_mib(),
        "conversations": n,
        "diverged": diverged,
        "harness_flagged": flagged,
    }


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


_BLOBS = """
SELECT source, id, data, harness_messages, continuation_messages FROM conversations ORDER BY source, id
"""
_ENTRIES = """
SELECT source, conversation_id, id, seq, epoch_ms(created_at) AS created_ms, payload
FROM conversation_entries ORDER BY source, conversation_id, seq, dup
"""


def _rows(con: Any, query: str) -> Iterator[dict[str, Any]]:
    """Rows of ``query`` as dicts, fetched as Arrow batches (never the whole table at once)."""
    for batch in con.cursor().execute(query).to_arrow_reader(BATCH):
        yield from batch.to_pylist()


def _conversations(con: Any) -> Iterator[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """``(id, blob, entries)`` per conversation: two ordered streams merged by (source, id)."""
    entries = _rows(con, _ENTRIES)
    pending = next(entries, None)
    for row in _rows(con, _BLOBS):
        blob = json.loads(row["data"])
        for key, col in (
            ("_harnessMessages", "harness_messages"),
            ("_continuationMessages", "continuation_messages"),
        ):
            if row[col] is not None:
                blob[key] = json.loads(row[col])
        key = (row["source"], row["id"])
        log: list[dict[str, Any]] = []
        while pending is not None and (pending["source"], pending["conversation_id"]) <= key:
            if (pending["source"], pending["conversation_id"]) == key:
                entry = json.loads(pending["payload"])
                entry.update(id=pending["id"], seq=pending["seq"], createdAt=pending["created_ms"])
                log.append(entry)
            pending = next(entries, None)
        yield row["id"], blob, log


def child(args: argparse.Namespace) -> None:
    cache = Path(args.child_cache)
    if args.child == "sql":
        out = run_sql(cache, args.file, args.memory_limit, args.temp_dir)
    else:
        out = run_python(cache)
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "poncho-bench")
    parser.add_argument(
        "--file", action="store_true", help="run parity() on a DuckDB file workspace"
    )
    parser.add_argument("--memory-limit", help="DuckDB memory_limit for the SQL side, e.g. 8GB")
    parser.add_argument("--temp-dir", help="where DuckDB spills (default: the cache folder)")
    parser.add_argument(
        "--skip-python", action="store_true", help="only time parity() (10M-entry runs)"
    )
    parser.add_argument("--child", choices=("sql", "python"), help=argparse.SUPPRESS)
    parser.add_argument("--child-cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    args.cache.mkdir(parents=True, exist_ok=True)
    cache = args.cache / f"fleet-{args.conversations}-seed{args.seed}.duckdb"
    if not cache.exists():
        build(cache, args.conversations, args.seed)
    temp_dir = args.temp_dir or str(args.cache / "spill")
    results = {}
    for side in ("sql",) if args.skip_python else ("sql", "python"):
        cmd = [
            sys.executable,
            str(HERE),
            "--child",
            side,
            "--child-cache",
            str(cache),
            "--temp-dir",
            temp_dir,
        ]
        cmd += ["--file"] if args.file else []
        cmd += ["--memory-limit", args.memory_limit] if args.memory_limit else []
        out = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{side} side failed:\n{out.stderr[-3000:]}")
        results[side] = json.loads(out.stdout.strip().splitlines()[-1])
    import duckdb

    entries = (
        duckdb.connect(str(cache), read_only=True)
        .execute("SELECT count(*) FROM conversation_entries")
        .fetchall()[0][0]
    )
    print(
        f"\nfleet: {args.conversations:,} conversations, {entries:,} entries, seed {args.seed}; "
        f"workspace {'file' if args.file else 'in memory'}"
        + (f", memory_limit {args.memory_limit}" if args.memory_limit else "")
        + "\n"
    )
    print("| side | seconds | peak RSS (MiB) | conversations | diverged | harness flagged |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    names = {"sql": "`ws.parity()` (SQL)", "python": "Python loop"}
    for side, r in results.items():
        print(
            f"| {names[side]} | {r['seconds']:.1f} | {r['peak_rss_mib']:,.0f} | {r['conversations']:,} "
            f"| {r['diverged']:,} | {r['harness_flagged']:,} |"
        )
    if "python" in results:
        print(
            f"\nspeed-up: {results['python']['seconds'] / results['sql']['seconds']:.1f}x "
            f"(SQL RSS before parity(): {results['sql']['rss_before_mib']:,.0f} MiB)"
        )


if __name__ == "__main__":
    main()
