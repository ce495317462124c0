"""Benchmark: the default CLI audit at 1M entries and at K times that, from the SQLite file (issue 13, item 3).

``poncho-replay audit FILE --json`` with nothing else: a file bigger than
one shard is read once into shard spools and audited shard by shard
(:mod:`poncho_replay.streamed`), so its memory should not grow with the
fleet. The 1M fleet is ``bench_parity.py``'s (``poncho-replay simulate
--conversations 20000 --seed 1 --faults lost=0.02,reorder=0.1,writeback``,
cached). The large file is K copies of it with fresh ids (every
conversation and entry id, and the blob's ``conversationId``,
``parentConversationId``, entry payload ``id`` and amendment
``targetEntryId`` that name them, get a ``-cK`` suffix), built by SQLite
in a minute: simulating K more seeds costs ~20 minutes each on a loaded
2-core machine. Each copy audits like the original, so the ratio measures
the audit's scaling, not the simulator's variety. Usage::

    .venv/bin/python benchmarks/bench_scale.py [--copies 11] [--cache DIR] [--repeat 1] [--jobs 1]

Prints a markdown table (entries, wall, CPU, peak RSS of the process
tree) and the ratios large / 1M. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_parity import DEFAULT_FAULTS, cli_command, fleet_counts, fleet_file, measure


def copies_file(base: Path, copies: int) -> Path:
    """``copies`` copies of ``base`` in one harness SQLite file, the k-th with ids suffixed ``-ck`` (cached)."""
    path = base.with_name(f"{base.stem}-x{copies}.sqlite")
    if path.exists():
        return path
    partial = path.with_suffix(".partial.sqlite")
    partial.unlink(missing_ok=True)
    con = sqlite3.connect(partial)
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    with sqlite3.connect(f"{base.resolve().as_uri()}?mode=ro", uri=True) as src:
        for (ddl,) in src.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"):
            con.execute(ddl)
        conv_cols = [r[1] for r in src.execute("PRAGMA table_info(conversations)")]
        entry_cols = [r[1] for r in src.execute("PRAGMA table_info(conversation_entries)")]
        others = [r[0] for r in src.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN "
            "('conversations', 'conversation_entries') AND name NOT LIKE 'sqlite_%'"
        )]  # fmt: skip
    con.execute("ATTACH ? AS src", [str(base)])
    for table in others:
        con.execute(f'INSERT INTO "{table}" SELECT * FROM src."{table}"')
    suffix = "'-c' || $k"
    conv = {
        "id": f"id || {suffix}",
        "parent_conversation_id": f"CASE WHEN parent_conversation_id IS NOT NULL THEN parent_conversation_id || {suffix} END",
        # the blob names its own id and its thread parent: both follow the copy
        "data": (
            f"CASE WHEN NOT json_valid(data) THEN data "
            f"WHEN json_extract(data, '$.parentConversationId') IS NOT NULL THEN json_set(data, "
            f"'$.conversationId', id || {suffix}, '$.parentConversationId', json_extract(data, '$.parentConversationId') || {suffix}) "
            f"ELSE json_set(data, '$.conversationId', id || {suffix}) END"
        ),
    }
    entry = {
        "id": f"id || {suffix}",
        "conversation_id": f"conversation_id || {suffix}",
        "payload": (
            f"CASE WHEN json_valid(payload) THEN CASE WHEN json_extract(payload, '$.targetEntryId') IS NOT NULL "
            f"THEN json_set(payload, '$.id', id || {suffix}, '$.targetEntryId', json_extract(payload, '$.targetEntryId') || {suffix}) "
            f"ELSE json_set(payload, '$.id', id || {suffix}) END ELSE payload END"
        ),
    }
    for k in range(copies):
        for table, cols, rules in (("conversations", conv_cols, conv), ("conversation_entries", entry_cols, entry)):
            select = ", ".join(rules.get(c, c) for c in cols)
            con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {select} FROM src.{table}", {"k": k})
        con.commit()
        print(f"copy {k + 1}/{copies} written", file=sys.stderr)
    con.close()
    partial.rename(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conversations", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", default=DEFAULT_FAULTS)
    ap.add_argument("--copies", type=int, default=11)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "poncho-bench")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="passed to `audit --jobs`")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    base = fleet_file(args.cache, args.conversations, args.seed, args.faults, 1)
    big = copies_file(base, args.copies)
    rows = []
    for label, path in (("1x", base), (f"{args.copies}x", big)):
        conversations, entries = fleet_counts(path)
        runs = []
        for _ in range(args.repeat):
            out = args.cache / f"audit-{label}.json"
            cmd = [*cli_command(), "audit", str(path), "--json", "--quiet"] + (["--jobs", str(args.jobs)] if args.jobs > 1 else [])
            runs.append(measure(cmd, out))
            diverged = json.loads(out.read_text())["diverged"]
        best = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
        rows.append((label, conversations, entries, best, diverged))
    print("| fleet | conversations | entries | wall | CPU | peak RSS | diverged |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, conversations, entries, r, diverged in rows:
        print(f"| {label} | {conversations:,} | {entries:,} | {r['wall']:.1f} s | {r['cpu']:.1f} s "
              f"| {r['peak_rss_mib'] / 1024:.2f} GiB | {diverged:,} |")  # fmt: skip
    (_, _, e1, r1, _), (_, _, ek, rk, _) = rows
    print(f"\nentries x{ek / e1:.2f}: wall x{rk['wall'] / r1['wall']:.2f}, CPU x{rk['cpu'] / r1['cpu']:.2f}, "
          f"peak {rk['peak_rss_mib'] / 1024 - r1['peak_rss_mib'] / 1024:+.2f} GiB")  # fmt: skip


if __name__ == "__main__":
    main()
