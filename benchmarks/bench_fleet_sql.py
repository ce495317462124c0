"""Benchmark: the fleet rebuild SQL against a per-conversation Python loop.

Generates a synthetic fleet in DuckDB (default 20,000 conversations x 50
entries = 1M entries: turns of user/harness/assistant entries, amendments,
layered compactions, subagent results and callbacks), then times

1. the three SQL rebuilds (llm_context, display_messages,
   pending_subagent_results) materialised for every conversation, and
2. the same three rebuilds with ``poncho_replay.rebuild`` in a Python loop
   over the same rows (fetch + json.loads + per-conversation calls),

and prints wall time, peak RSS and the ratio. Usage:

    .venv/bin/python benchmarks/bench_fleet_sql.py [--conversations 20000] [--entries-per 50]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections import defaultdict

import duckdb

from poncho_replay import fleet
from poncho_replay.rebuild import (
    MAX_SAFE_INTEGER,
    build_display_snapshot,
    build_llm_context,
    pending_subagent_results,
)

# Entry kind by position in a 10-entry cycle; compactions and callbacks come round
# every few cycles (see the CASE below), so logs have layered compactions.
GENERATE = """
CREATE OR REPLACE TABLE conversation_entries AS
WITH base AS (
    SELECT c, s, (s - 1) % 10 AS k, (s - 1) // 10 AS turn
    FROM range(?) r(c), LATERAL (SELECT unnest(range(1, ? + 1)) AS s)
)
SELECT 'store' AS source, s::BIGINT AS seq, format('c{}-e{}', c, s) AS id, 'local-owner' AS agent_id,
       '__default__' AS tenant_id, format('c{}', c) AS conversation_id, kind AS type,
       CASE kind
         WHEN 'user_message' THEN json_object('id', format('c{}-e{}', c, s), 'type', kind, 'turnId', format('t{}', turn),
              'message', json_object('role', 'user', 'content', repeat('question ünï ', 12)))
         WHEN 'harness_message' THEN json_object('id', format('c{}-e{}', c, s), 'type', kind, 'turnId', format('t{}', turn),
              'message', json_object('role', 'assistant', 'content', repeat('context line ', 15),
                                     'metadata', json_object('step', k, 'runId', format('r{}', turn))))
         WHEN 'assistant_message' THEN json_object('id', format('c{}-e{}', c, s), 'type', kind, 'turnId', format('t{}', turn),
              'runId', format('r{}', turn),
              'message', json_object('role', 'assistant', 'content',
                  CASE WHEN turn % 4 = 0 THEN json_array(json_object('type', 'text', 'text', 'parts'))
                       ELSE to_json(repeat('answer 😀 ', 20)) END,
                  'metadata', json_object('id', format('m{}', s), 'timestamp', s)))
         WHEN 'assistant_amendment' THEN json_object('id', format('c{}-e{}', c, s), 'type', kind,
              'targetEntryId', format('c{}-e{}', c, s - 5), 'appendText', ' (continued)')
         WHEN 'compaction' THEN json_object('id', format('c{}-e{}', c, s), 'type', kind,
              'summaryMessage', json_object('role', 'user', 'content', 'summary', 'metadata',
                                            json_object('isCompactionSummary', true)),
              'firstKeptSeq', s - 3, 'tokensBefore', 1000)
         WHEN 'subagent_result' THEN json_object('id', format('c{}-e{}', c, s), 'type', kind,
              'result', json_object('subagentId', format('s{}', turn), 'task', 'look', 'status', 'completed',
                                    'result', 'done', 'timestamp', s))
         ELSE json_object('id', format('c{}-e{}', c, s), 'type', kind, 'consumedSeqs', json_array(s - 1))
       END AS payload,
       NULL::TIMESTAMP AS created_at, 0 AS dup, (c * 1000 + s)::BIGINT AS ordinal
FROM base,
LATERAL (SELECT CASE
    WHEN k IN (0) THEN 'user_message'
    WHEN k IN (1, 2, 3) THEN 'harness_message'
    WHEN k = 4 THEN 'assistant_message'
    WHEN k = 5 THEN 'assistant_amendment'
    WHEN k = 6 AND turn % 2 = 1 THEN 'compaction'
    WHEN k = 7 THEN 'subagent_result'
    WHEN k = 8 AND turn % 3 = 0 THEN 'callback_started'
    ELSE 'harness_message' END AS kind)
"""


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_sql(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Materialise the three fleet rebuilds; return their row counts."""
    counts = {}
    for view in ("llm_context", "display_messages", "pending_subagent_results"):
        con.execute(f"CREATE OR REPLACE TEMP TABLE bench_{view} AS SELECT * FROM {view}")
        counts[view] = con.execute(f"SELECT count(*) FROM bench_{view}").fetchall()[0][0]
    return counts


def run_python(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The per-conversation loop: fetch rows, parse payloads, call rebuild.py."""
    logs: dict[str, list[dict]] = defaultdict(list)
    rows = con.execute(
        "SELECT conversation_id, seq, id, payload FROM conversation_entries ORDER BY conversation_id, ordinal"
    ).fetchall()
    for cid, seq, eid, payload in rows:
        logs[cid].append({**json.loads(payload), "id": eid, "seq": seq})
    counts = {"llm_context": 0, "display_messages": 0, "pending_subagent_results": 0}
    for entries in logs.values():
        counts["llm_context"] += len(build_llm_context(entries))
        counts["display_messages"] += len(
            build_display_snapshot(entries, MAX_SAFE_INTEGER).messages
        )
        counts["pending_subagent_results"] += len(pending_subagent_results(entries))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--entries-per", type=int, default=50)
    parser.add_argument(
        "--skip-python", action="store_true", help="only time the SQL (for 10M-entry runs)"
    )
    args = parser.parse_args()

    con = duckdb.connect()
    fleet.install(con)
    t0 = time.perf_counter()
    con.execute(GENERATE, [args.conversations, args.entries_per])
    n = con.execute("SELECT count(*) FROM conversation_entries").fetchall()[0][0]
    print(
        f"generated {n:,} entries / {args.conversations:,} conversations in {time.perf_counter() - t0:.1f} s"
    )
    fleet.install(con)  # the views bind to the regenerated table

    t0 = time.perf_counter()
    sql_counts = run_sql(con)
    sql_s = time.perf_counter() - t0
    print(
        f"SQL fleet rebuild: {sql_s:.2f} s, rows {sql_counts}, peak RSS {peak_rss_mib():,.0f} MiB"
    )
    if args.skip_python:
        return

    t0 = time.perf_counter()
    py_counts = run_python(con)
    py_s = time.perf_counter() - t0
    print(f"Python loop:       {py_s:.2f} s, rows {py_counts}, peak RSS {peak_rss_mib():,.0f} MiB")
    print(f"speed-up: {py_s / sql_s:.1f}x; row counts equal: {sql_counts == py_counts}")


if __name__ == "__main__":
    main()
