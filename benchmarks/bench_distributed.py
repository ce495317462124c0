"""Benchmark: a sharded export audited shard by shard in one process, and on Dask (``--dask local:W``).

Issue 16's yardstick. One simulated fleet (cached, as ``bench_parity.py``
makes it) is loaded into a DuckDB file workspace and written as a sharded
Parquet export, then, in one run, each side in its own child process with
the peak RSS of its whole process tree sampled (Dask's worker processes
included):

* ``serial``: ``poncho-replay audit EXPORT --json`` (the shards one after
  another, straight from their files: the memory of one shard);
* ``dask``: ``poncho-replay audit EXPORT --json --dask local:W`` (a
  LocalCluster of W worker processes, one task per shard).

Both answers are compared conversation by conversation. Usage::

    .venv/bin/python benchmarks/bench_distributed.py [--conversations 20000] [--scale 11]
        [--shards N] [--workers 2] [--cache DIR] [--fleet FILE] [--memory-limit 8GB]

Asserts nothing: timing lives here, not in tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_parity import cli_command, fleet_counts, fleet_file, measure

from poncho_replay.shards import default_shards


def _row(name: str, m: dict[str, Any]) -> str:
    return f"| {name} | {m['wall']:.1f} s | {m['cpu']:.1f} s | {m['peak_rss_mib'] / 1024:.2f} GiB |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", default="lost=0.02,reorder=0.1,writeback")
    parser.add_argument("--scale", type=int, default=1, help="chunks of --conversations (11 gives ~10M entries)")
    parser.add_argument("--fleet", type=Path, help="an existing harness SQLite file instead of simulating")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "poncho-bench")
    parser.add_argument("--shards", type=int, help="default: one per 250,000 entries")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="8GB", help="for the load into the file workspace")
    args = parser.parse_args()

    args.cache.mkdir(parents=True, exist_ok=True)
    fleet = args.fleet or fleet_file(args.cache, args.conversations, args.seed, args.faults, args.scale)
    conversations, entries = fleet_counts(fleet)
    shards = args.shards or default_shards(entries)
    work = args.cache / f"{fleet.stem}-{shards}"
    work.mkdir(exist_ok=True)
    export = work / "sharded"
    cli = cli_command()
    if not export.is_dir():
        db = work / "work.duckdb"
        db.unlink(missing_ok=True)
        load = measure([*cli, "load", str(fleet), "--db", str(db), "--memory-limit", args.memory_limit, "--quiet"],
                       work / "load.out")  # fmt: skip
        exported = measure([*cli, "export", "--db", str(db), "--format", "parquet", "--shards", str(shards),
                            str(export), "--quiet"], work / "export.out")  # fmt: skip
        db.unlink(missing_ok=True)
        print(_row("load into a file workspace (setup)", load))
        print(_row(f"write the sharded export, {shards} shards (setup)", exported))
    serial = measure([*cli, "audit", str(export), "--json", "--quiet"], work / "serial.json")
    dask = measure([*cli, "audit", str(export), "--json", "--quiet", "--dask", f"local:{args.workers}"],
                   work / "dask.json")  # fmt: skip
    a = json.loads((work / "serial.json").read_text())
    b = json.loads((work / "dask.json").read_text())
    same = [c["conversation_id"] for c in a["conversations"]] == [c["conversation_id"] for c in b["conversations"]]
    same = same and [c["verdict"] for c in a["conversations"]] == [c["verdict"] for c in b["conversations"]]
    print(f"\nfleet: {conversations:,} conversations, {entries:,} entries, {shards} shards\n")
    print("| side | wall | CPU | peak RSS (process tree) |")
    print("| --- | ---: | ---: | ---: |")
    print(_row("audit shard by shard, one process", serial))
    print(_row(f"audit on Dask, local:{args.workers}", dask))
    print(f"\nsame answers: {same} ({a['diverged']:,} diverged in both)")


if __name__ == "__main__":
    main()
