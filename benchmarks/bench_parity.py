"""Benchmark: ``Workspace.parity()`` (set-based SQL) against a per-conversation Python loop.

Issue 6's yardstick. A simulated fleet (``simulate.fleet(20_000, seed=1)``,
about 940k entries, with a few percent of every dual-write fault) is put in
a DuckDB file once through the loaders' own staging path and cached; then
each side runs in its own child process, so each peak RSS is its own:

* ``sql``: ``ws.parity()`` on a workspace holding the fleet (in memory by
  default, or a DuckDB file with ``--file``, spilling to ``--temp-dir``);
* ``bulk`` loop: read every blob and log from the same tables in bulk (Arrow
  batches, grouped by conversation), then per conversation
  ``rebuild.rebuild_conversation`` + ``dualwrite.parity_check`` +
  ``audit.align`` on the three fields;
* ``store`` loop: what a notebook user writes with the library's own API:
  per conversation ``DuckDBStore(...).get_with_archive(id)`` and
  ``.read_entries(id)`` (one query each), then the same three calls. It is
  slow, so above ``--store-sample`` conversations it runs on a seeded random
  sample and its time is scaled to the fleet (the table says so).

Every side reports how many conversations diverge and how many the harness's
own check flags, so they can be seen to agree (a sampled store loop reports
its sample's counts). Usage:

    .venv/bin/python benchmarks/bench_parity.py [--conversations 20000] [--seed 1]
        [--cache DIR] [--file] [--memory-limit 8GB] [--loop bulk --loop store]
        [--store-sample 50000] [--skip-python] [--scale 11]

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
    con = duckdb.connect(str(tmp))
    con.execute("SET enable_progress_bar = false")
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


def fleet_cache(folder: Path, n: int, seed: int, scale: int) -> Path:
    """The cached fleet file: one simulated chunk, or ``scale`` chunks side by side.

    A large fleet is simulated chunk by chunk (the simulator holds its whole
    fleet in Python), each chunk cached on its own, then the chunks are copied
    into one file, each as its own source (``sim-<seed>``), as several loaded
    databases would be.
    """
    chunks = []
    for chunk_seed in range(seed, seed + scale):
        path = folder / f"fleet-{n}-seed{chunk_seed}.duckdb"
        if not path.exists():  # in a child: a peak RSS is inherited across fork and exec
            cmd = [sys.executable, str(HERE), "--child", "build", "--child-cache", str(path)]
            cmd += ["--conversations", str(n), "--seed", str(chunk_seed)]
            subprocess.run(cmd, check=True)
        chunks.append(path)
    if scale == 1:
        return chunks[0]
    path = folder / f"fleet-{n}x{scale}-seed{seed}.duckdb"
    if path.exists():
        return path
    import duckdb

    from poncho_replay.sources.ingest import ensure_schema

    tmp = path.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    ensure_schema(con)
    t0 = time.perf_counter()
    for chunk_seed, chunk in zip(range(seed, seed + scale), chunks, strict=True):
        con.execute("ATTACH ? AS chunk (READ_ONLY)", [str(chunk)])
        for table in ("conversations", "conversation_entries"):
            con.execute(
                f"INSERT INTO {table} SELECT * REPLACE (? AS source) FROM chunk.{table}",
                [f"sim-{chunk_seed}"],
            )
        con.execute("DETACH chunk")
        print(f"combined chunk {chunk_seed} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    con.execute("CHECKPOINT")
    con.close()
    tmp.rename(path)
    return path


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

    path = ":memory:"
    if on_file:
        path = Path(temp_dir) / "parity-workspace.duckdb"
        shutil.copyfile(cache, path)
    ws = poncho_replay.open(path, memory_limit=memory_limit, temp_directory=temp_dir)
    if not on_file:
        ws.con.execute("ATTACH ? AS cache (READ_ONLY)", [str(cache)])
        for table in ("conversations", "conversation_entries"):
            ws.con.execute(f"INSERT INTO {table} SELECT * FROM cache.{table}")
        ws.con.execute("DETACH cache")
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


def run_bulk(cache: Path) -> dict[str, Any]:
    """The per-conversation loop over the same tables, read in bulk."""
    import duckdb

    con = duckdb.connect(str(cache), read_only=True)
    t0 = time.perf_counter()
    n = diverged = flagged = 0
    for cid, blob, entries in _conversations(con):
        d, f = _audit_one(cid, blob, entries)
        n, diverged, flagged = n + 1, diverged + d, flagged + f
    return {
        "seconds": time.perf_counter() - t0,
        "peak_rss_mib": peak_rss_mib(),
        "conversations": n,
        "diverged": diverged,
        "harness_flagged": flagged,
    }


def run_store(cache: Path, sample: int, seed: int, temp_dir: str) -> dict[str, Any]:
    """The per-conversation loop through ``DuckDBStore`` (one store per source and agent).

    The store opens on a copy of the cache: it installs its schema (a write)
    on the connection it is given.
    """
    import random

    import duckdb

    from poncho_replay.store import DuckDBStore

    work = Path(temp_dir) / "store-loop.duckdb"
    Path(temp_dir).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cache, work)
    con = duckdb.connect(str(work))
    keys = con.execute(
        "SELECT source, agent_id, id FROM conversations ORDER BY source, id"
    ).fetchall()
    picked = keys if len(keys) <= sample else random.Random(seed).sample(keys, sample)
    stores: dict[tuple[str, str], Any] = {}
    t0 = time.perf_counter()
    n = diverged = flagged = 0
    for source, agent_id, cid in picked:
        store = stores.get((source, agent_id))
        if store is None:
            store = stores[(source, agent_id)] = DuckDBStore(
                connection=con, source=source, agent_id=agent_id, read_cutover=False
            )
        conversation = store.get_with_archive(cid)
        entries = store.read_entries(cid)
        d, f = _audit_one(cid, conversation.to_dict(), entries)
        n, diverged, flagged = n + 1, diverged + d, flagged + f
    seconds = time.perf_counter() - t0
    con.close()
    work.unlink()
    return {
        "seconds": seconds * len(keys) / max(n, 1),
        "measured_seconds": seconds,
        "peak_rss_mib": peak_rss_mib(),
        "conversations": n,
        "of": len(keys),
        "diverged": diverged,
        "harness_flagged": flagged,
    }


def _audit_one(cid: str, blob: dict[str, Any], entries: list[Any]) -> tuple[bool, bool]:
    """Rebuild (policy 0.58), the harness's check and the three alignments: (diverged, flagged)."""
    from poncho_replay.audit import align
    from poncho_replay.dualwrite import parity_check
    from poncho_replay.rebuild import rebuild_conversation

    served = rebuild_conversation(blob, entries, policy="0.58", cutover=True)
    hm, msgs = blob.get("_harnessMessages"), blob.get("messages")
    check = parity_check(
        entries,
        hm if isinstance(hm, list) else None,
        msgs if isinstance(msgs, list) else None,
        conversation_id=cid,
    )
    counts = [align(_list(served.get(key)), _list(blob.get(key))) for _, key in FIELDS]
    return any(a.first_position is not None for a in counts), not check.log_line.endswith(" OK")


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
    if args.child == "build":
        return build(cache, args.conversations, args.seed)
    if args.child == "sql":
        out = run_sql(cache, args.file, args.memory_limit, args.temp_dir)
    elif args.child == "bulk":
        out = run_bulk(cache)
    else:
        out = run_store(cache, args.store_sample, args.seed, args.temp_dir)
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
        "--loop",
        action="append",
        choices=("bulk", "store"),
        help="Python baselines to time (repeatable; default: both)",
    )
    parser.add_argument(
        "--store-sample",
        type=int,
        default=50_000,
        help="above this many conversations the store loop runs on a seeded sample, scaled",
    )
    parser.add_argument(
        "--skip-python", action="store_true", help="only time parity() (10M-entry runs)"
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        help="a fleet of this many simulated chunks of --conversations each (seeds seed, seed+1, ...), "
        "one source per chunk: --scale 11 gives about 10M entries",
    )
    parser.add_argument("--child", choices=("build", "sql", "bulk", "store"), help=argparse.SUPPRESS)
    parser.add_argument("--child-cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    args.cache.mkdir(parents=True, exist_ok=True)
    cache = fleet_cache(args.cache, args.conversations, args.seed, args.scale)
    temp_dir = args.temp_dir or str(args.cache / "spill")
    results = {}
    loops = () if args.skip_python else tuple(args.loop or ("bulk", "store"))
    for side in ("sql", *loops):
        cmd = [
            sys.executable,
            str(HERE),
            "--child",
            side,
            "--child-cache",
            str(cache),
            "--temp-dir",
            temp_dir,
            "--store-sample",
            str(args.store_sample),
            "--seed",
            str(args.seed),
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
        f"\nfleet: {args.conversations * args.scale:,} conversations, {entries:,} entries, "
        f"seed {args.seed}{f' (x{args.scale} chunks)' if args.scale > 1 else ''}; "
        f"workspace {'file' if args.file else 'in memory'}"
        + (f", memory_limit {args.memory_limit}" if args.memory_limit else "")
        + "\n"
    )
    print("| side | seconds | peak RSS (MiB) | conversations | diverged | harness flagged |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    names = {
        "sql": "`ws.parity()` (SQL)",
        "bulk": "Python loop, bulk reads",
        "store": "Python loop, `DuckDBStore` per conversation",
    }
    for side, r in results.items():
        name = names[side]
        if "of" in r and r["conversations"] < r["of"]:
            name += (
                f" (sample of {r['conversations']:,}: {r['measured_seconds']:.1f} s, "
                f"scaled x{r['of'] / r['conversations']:.1f})"
            )
        print(
            f"| {name} | {r['seconds']:.1f} | {r['peak_rss_mib']:,.0f} | {r['conversations']:,} "
            f"| {r['diverged']:,} | {r['harness_flagged']:,} |"
        )
    sql = results["sql"]["seconds"]
    ratios = [f"{names[s]}: {results[s]['seconds'] / sql:.1f}x" for s in loops]
    print(
        f"\nparity() is faster than {'; '.join(ratios) or '(no loop run)'} "
        f"(SQL RSS before parity(): {results['sql']['rss_before_mib']:,.0f} MiB)"
    )


if __name__ == "__main__":
    main()
