"""Benchmark: load rows/s and peak memory for a harness SQLite file and the same data in PostgreSQL.

Usage: python benchmarks/bench_load.py [--entries 1000000] [--per-conversation 100] [--no-postgres]

Builds a harness-layout SQLite file (and a PostgreSQL schema) with synthetic
entries of about 1 KB, then loads each into a fresh in-memory Workspace in a
child process, printing wall time, rows/s and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from poncho_replay.harness_layout import (
    conversation_row,
    create_postgres,
    create_sqlite,
    entry_row,
)

PG = "postgresql://postgres@127.0.0.1:5432/test"
TEXT = "lorem ipsum dolor sit amet " * 30


def rows(n_entries: int, per_conv: int):
    """(conversation rows, entry row generator) in harness shape."""
    n_conv = max(1, n_entries // per_conv)
    convs = [
        conversation_row({"conversationId": f"c{i}", "title": f"t{i}", "messages": [], "ownerId": "o", "tenantId": None,
                          "createdAt": 1772631001558, "updatedAt": 1772631001558}, agent_id="bench")
        for i in range(n_conv)
    ]  # fmt: skip

    def entries():
        for k in range(n_entries):
            cid, seq = f"c{k // per_conv}", k % per_conv + 1
            e = {
                "id": f"e{k}",
                "seq": seq,
                "createdAt": 1772631001558 + k,
                "type": "harness_message",
                "message": {"role": "user" if seq % 2 else "assistant", "content": TEXT},
                "turnId": f"t{seq // 2}",
            }
            yield entry_row(cid, e, agent_id="o")

    return convs, entries


def build_sqlite(path: Path, n: int, per_conv: int) -> None:
    import sqlite3

    create_sqlite(path)
    convs, entries = rows(n, per_conv)
    with sqlite3.connect(path) as con:
        for r in convs:
            con.execute(
                f"INSERT INTO conversations ({', '.join(r)}) VALUES ({', '.join('?' * len(r))})",
                list(r.values()),
            )
        con.executemany(
            "INSERT INTO conversation_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (tuple(r.values()) for r in entries()),
        )


def build_postgres(schema: str, n: int, per_conv: int) -> None:
    import psycopg

    with psycopg.connect(PG) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.commit()
        create_postgres(conn, schema)
        convs, entries = rows(n, per_conv)
        with conn.cursor() as cur:
            cur.execute(f'SET search_path TO "{schema}"')
            with cur.copy(
                "COPY conversations (id, agent_id, tenant_id, owner_id, title, data, message_count, created_at, updated_at) FROM STDIN"
            ) as cp:
                for r in convs:
                    cp.write_row(
                        [
                            r[k]
                            for k in (
                                "id",
                                "agent_id",
                                "tenant_id",
                                "owner_id",
                                "title",
                                "data",
                                "message_count",
                                "created_at",
                                "updated_at",
                            )
                        ]
                    )
            with cur.copy(
                "COPY conversation_entries (seq, id, agent_id, tenant_id, conversation_id, type, payload, created_at) FROM STDIN"
            ) as cp:
                for r in entries():
                    cp.write_row(list(r.values()))
        conn.commit()


def child(source: str) -> None:
    import poncho_replay

    ws = poncho_replay.open()
    t = time.perf_counter()
    summary = ws.load(source, progress=False)
    dt = time.perf_counter() - t
    n = sum(summary.read.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rows": n,
                "seconds": round(dt, 2),
                "rows_per_s": round(n / dt),
                "peak_rss_mib": round(peak),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--per-conversation", type=int, default=100)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        return child(args.child)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t = time.perf_counter()
        build_sqlite(db, args.entries, args.per_conversation)
        print(
            f"built SQLite file: {args.entries:,} entries, {db.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - t:.1f}s"
        )
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(db)],
            capture_output=True,
            text=True,
            check=True,
        )
        print("sqlite  ", out.stdout.strip())
    if not args.no_postgres:
        schema = "pr_bench_load"
        t = time.perf_counter()
        build_postgres(schema, args.entries, args.per_conversation)
        print(f"built PostgreSQL schema in {time.perf_counter() - t:.1f}s")
        url = f"{PG}?options=-csearch_path%3D{schema}"
        out = subprocess.run(
            [sys.executable, __file__, "--child", url], capture_output=True, text=True, check=True
        )
        print("postgres", out.stdout.strip())
        import psycopg

        with psycopg.connect(PG) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
