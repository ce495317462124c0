"""Benchmark: the CLI audit of a simulated fleet's SQLite file, a plain Python loop, and the load floor.

Issue 13's yardstick, settled in DESIGN.md ("Benchmarks"). One simulated
fleet is written once, through the CLI, and cached::

    poncho-replay simulate --conversations N --seed S --faults F --out fleet.sqlite

Then, in one run, on that same file, each side in its own child process
(``--repeat`` times, interleaved; every figure is the median), with the peak
RSS of the child's whole process tree sampled with psutil:

* ``audit``: ``poncho-replay audit fleet.sqlite --json`` end to end (load
  into an in-memory workspace, ``parity()``, JSON on stdout): wall time;
* ``kit``: the same two library calls timed apart in one process,
  ``poncho_replay.open().load(file)`` then ``ws.parity()``;
* ``loop``: the plain Python loop a careful engineer would write:
  ``sqlite3`` rows, ``json.loads``, grouped by conversation, then per
  conversation the three rebuilds under policy 0.58 (LLM context, display
  snapshot, pending results: SPEC §3, quirks included) and the harness's
  own parity check (SPEC §5), in plain dicts. It counts the diverged
  conversations and the harness verdicts. Anything outside the common
  shapes (a non-integer ``firstKeptSeq``, a message that is not an object,
  ...) is handed to the kit's pure functions (``rebuild.rebuild_conversation``,
  ``dualwrite.parity_check``) for that conversation, so the loop is exact and
  never slower than they are; ``--verify`` checks it against them on every
  conversation;
* ``load``: ``poncho_replay.open().load(file)`` alone, for working on the
  loader (``--side load --side floor``) without paying for ``parity()``;
* ``floor``: what any load must at least do: ADBC ``fetch_arrow_table`` of
  both tables, then one DuckDB ``CREATE TABLE ... AS SELECT ...,
  payload::JSON ...`` per table (JSON columns cast to JSON, timestamps parsed).

The kit, load and floor sides also time their own CPU (the process's, every
DuckDB thread included) around the load and the floor, so the load / floor
ratio is given in CPU too: on a shared machine it is the steadier figure.

It prints a markdown table, the ratios (audit / loop, load / floor, both
from the same run), and whether the loop's verdicts agree with the audit's
``verdict`` and ``harness_verdict`` (per conversation, and counted). Usage::

    .venv/bin/python benchmarks/bench_parity.py [--conversations 20000] [--seed 1]
        [--faults lost=0.02,reorder=0.1,writeback] [--repeat 3] [--cache DIR]
        [--fleet FILE] [--side audit --side loop ...] [--skip-python]
        [--file] [--memory-limit 8GB] [--scale 11] [--verify]

``--file`` audits into a DuckDB file workspace (``audit FILE --db``),
``--memory-limit`` is passed to the CLI and the kit, ``--scale K`` simulates K
chunks of ``--conversations`` (seeds seed..seed+K-1) into one SQLite file,
``--skip-python`` leaves the loop out (very large fleets). Asserts nothing:
timing lives here, not in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
SIDES = ("audit", "kit", "load", "loop", "floor")
DEFAULT_SIDES = ("audit", "kit", "loop", "floor")
"""``load`` only on request: ``kit`` already times the same load."""
DEFAULT_FAULTS = "lost=0.02,reorder=0.1,writeback"
SAMPLE_SECONDS = 0.1
FIELDS = ("_harnessMessages", "messages", "pendingSubagentResults")


# --- the fleet ----------------------------------------------------------------------------


def cli_command() -> list[str]:
    """``poncho-replay`` as installed beside this interpreter (else the module)."""
    script = Path(sys.executable).parent / "poncho-replay"
    return [str(script)] if script.exists() else [sys.executable, "-m", "poncho_replay.cli"]


def fleet_file(folder: Path, n: int, seed: int, faults: str, scale: int) -> Path:
    """The cached simulated fleet (simulated through the CLI on first use)."""
    tag = faults.replace("=", "").replace(",", "-").replace(".", "") or "nofaults"
    chunks = []
    for chunk_seed in range(seed, seed + scale):
        path = folder / f"fleet-{n}-seed{chunk_seed}-{tag}.sqlite"
        if not path.exists():
            partial = path.with_suffix(".partial.sqlite")
            partial.unlink(missing_ok=True)
            cmd = [*cli_command(), "simulate", "--conversations", str(n), "--seed", str(chunk_seed)]
            cmd += ["--out", str(partial), "--quiet"] + (["--faults", faults] if faults else [])
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            partial.rename(path)
            print(f"simulated {path.name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        chunks.append(path)
    if scale == 1:
        return chunks[0]
    path = folder / f"fleet-{n}x{scale}-seed{seed}-{tag}.sqlite"
    if not path.exists():  # one harness file holding every chunk (ids are seeded apart)
        partial = path.with_suffix(".partial.sqlite")
        partial.unlink(missing_ok=True)
        con = sqlite3.connect(partial)
        with sqlite3.connect(chunks[0]) as first:
            for (ddl,) in first.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"):
                con.execute(ddl)
            for row in first.execute("SELECT * FROM _migrations"):
                con.execute("INSERT INTO _migrations VALUES (?, ?, ?)", row)
        for chunk in chunks:
            con.execute("ATTACH ? AS chunk", [str(chunk)])
            con.execute("INSERT INTO conversations SELECT * FROM chunk.conversations")
            con.execute("INSERT INTO conversation_entries SELECT * FROM chunk.conversation_entries")
            con.commit()
            con.execute("DETACH chunk")
        con.close()
        partial.rename(path)
    return path


def fleet_counts(path: Path) -> tuple[int, int]:
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as con:
        return (
            con.execute("SELECT count(*) FROM conversations").fetchone()[0],
            con.execute("SELECT count(*) FROM conversation_entries").fetchone()[0],
        )


# --- the plain Python loop --------------------------------------------------------------------


class _Odd(Exception):
    """A shape the fast path does not model: the kit's pure functions take this conversation."""


def _clean(items: list[Any]) -> bool:
    """Every item projects without raising (an object with string or list content)."""
    for m in items:
        if type(m) is not dict:
            return False
        c = m.get("content")
        if type(c) is not str and type(c) is not list:
            return False
    return True


def _rebuild(log: list[dict[str, Any]]) -> tuple[list[Any], list[Any] | None, list[Any] | None]:
    """The three rebuilds of a log sorted by seq: ``(llm, display or None if it threw, pending or None)``.

    Plain-dict twin of ``rebuild.build_llm_context``, ``build_display_snapshot``
    (full tail) and ``pending_subagent_results`` in one pass; raises ``_Odd``
    where JavaScript's coercions would matter.
    """
    harness: list[dict[str, Any]] = []
    shown: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    amendments: dict[Any, list[Any]] = {}
    consumed: set[Any] = set()
    compaction = None
    pending_error = False
    for e in log:
        t = e.get("type")
        if t == "harness_message":
            harness.append(e)
        elif t == "user_message" or t == "assistant_message":
            shown.append(e)
        elif t == "assistant_amendment":
            amendments.setdefault(e.get("targetEntryId"), []).append(e.get("appendText"))
        elif t == "compaction":
            if compaction is None or e["seq"] > compaction["seq"]:
                compaction = e
        elif t == "subagent_result":
            results.append(e)
        elif t == "callback_started":
            seqs = e.get("consumedSeqs")
            if type(seqs) is not list:
                if isinstance(seqs, str):
                    raise _Odd
                pending_error = True  # "e.consumedSeqs is not iterable"
            else:
                for s in seqs:
                    if type(s) is int or type(s) is float:
                        consumed.add(s)

    if compaction is None:
        llm = [e.get("message") for e in harness]
    elif "firstKeptSeq" not in compaction:
        llm = [compaction.get("summaryMessage")]
    else:
        first_kept = compaction["firstKeptSeq"]
        if type(first_kept) is not int:
            raise _Odd
        llm = [compaction.get("summaryMessage")]
        llm += [e.get("message") for e in harness if e["seq"] >= first_kept]

    display: list[Any] | None = []
    for e in shown:
        message = e.get("message")
        if e["type"] == "user_message":
            hidden = e.get("hidden")
            if hidden is None or hidden is False:
                display.append(message)
            elif hidden is not True:
                raise _Odd
            continue
        if message is None:  # the harness throws here: a partial rebuild
            display = None
            break
        if type(message) is not dict:
            raise _Odd
        content = message.get("content")
        text = content if type(content) is str else ""
        for append in amendments.get(e.get("id"), ()):
            if type(append) is str:
                text += append
            elif append is not None and append is not False:
                raise _Odd
        display.append({**message, "content": text})

    pending = None
    if display is not None and not pending_error:
        pending = [e.get("result") for e in results if e["seq"] not in consumed]
    return llm, display, pending


def _tail_mismatches(ours: list[Any], blob: list[Any], project: Any) -> int:
    """Length mismatch + differing role:text projections of the last min(5, n, m) items."""
    n, m = len(ours), len(blob)
    found = int(n != m)
    for i in range(1, min(n, m, 5) + 1):
        a, b = ours[-i], blob[-i]
        if a != b and project(a) != project(b):
            found += 1
    return found


def _audit_fast(blob: dict[str, Any], log: list[dict[str, Any]], project: Any) -> tuple[bool, str]:
    """``(diverged under policy 0.58, harness verdict)`` for one conversation; raises ``_Odd``."""
    hm, msgs = blob.get("_harnessMessages"), blob.get("messages")
    llm, display, pending = _rebuild(log) if log else ([], [], [])
    # The harness's check: the log's rebuild against every blob array it has.
    verdict = "OK"
    mismatches = 0
    if type(hm) is list:
        if not (_clean(llm) and _clean(hm)):
            raise _Odd
        mismatches += _tail_mismatches(llm, hm, project)
    if type(msgs) is list:
        if display is None:
            verdict = "threw"
        else:
            if not (_clean(display) and _clean(msgs)):
                raise _Odd
            mismatches += _tail_mismatches(display, msgs, project)
    if verdict != "threw" and mismatches:
        verdict = "MISMATCH"
    if not log:  # no entries: the blob is served as it is
        return False, verdict
    # The 0.58 read cutover: the three fields one at a time (an error stops it: partial rebuild).
    served = (
        llm,
        msgs if display is None else display,
        blob.get("pendingSubagentResults") if pending is None else pending,
    )
    diverged = any(
        _as_list(mine) != _as_list(blob.get(key)) for mine, key in zip(served, FIELDS, strict=True)
    )
    return diverged, verdict


def _as_list(value: Any) -> list[Any]:
    return value if type(value) is list else []


def audit_kit(cid: str, blob: dict[str, Any], log: list[dict[str, Any]]) -> tuple[bool, str]:
    """The same two answers from the kit's pure functions (the reference, and the fallback)."""
    from poncho_replay.dualwrite import parity_check
    from poncho_replay.rebuild import rebuild_conversation

    served = rebuild_conversation(blob, log, policy="0.58", cutover=True)
    hm, msgs = blob.get("_harnessMessages"), blob.get("messages")
    check = parity_check(
        log,
        hm if isinstance(hm, list) else None,
        msgs if isinstance(msgs, list) else None,
        conversation_id=cid,
    )
    verdict = (
        "threw" if " checker threw " in check.log_line else "MISMATCH" if check.mismatches else "OK"
    )
    diverged = bool(log) and any(_as_list(served.get(k)) != _as_list(blob.get(k)) for k in FIELDS)
    return diverged, verdict


def conversations(path: Path) -> Any:
    """``(id, blob, log)`` per conversation, by id: two ordered ``sqlite3`` streams merged."""
    loads = json.loads
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    blobs = con.execute("SELECT id, data, harness_messages FROM conversations ORDER BY id")
    rows = con.cursor().execute(
        "SELECT conversation_id, seq, id, payload FROM conversation_entries ORDER BY conversation_id, seq"
    )
    groups = groupby(rows, key=itemgetter(0))
    group = next(groups, None)
    for cid, data, harness_messages in blobs:
        blob = loads(data)
        if harness_messages is not None:
            blob["_harnessMessages"] = loads(harness_messages)
        while group is not None and group[0] < cid:  # entries of no conversation: not audited
            group = next(groups, None)
        log = []
        if group is not None and group[0] == cid:
            for _, seq, eid, payload in group[1]:
                entry = loads(payload)
                entry["seq"] = seq
                entry["id"] = eid
                log.append(entry)
            group = next(groups, None)
        yield cid, blob, log
    con.close()


def run_loop(path: Path, verdicts_out: Path | None, verify: bool) -> dict[str, Any]:
    """The plain loop over the whole file: counts, and each conversation's two answers."""
    from poncho_replay.dualwrite import project_text

    t0 = time.perf_counter()
    answers: dict[str, tuple[bool, str]] = {}
    fallbacks = 0
    for cid, blob, log in conversations(path):
        try:
            answers[cid] = _audit_fast(blob, log, project_text)
        except _Odd:
            fallbacks += 1
            answers[cid] = audit_kit(cid, blob, log)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"seconds": seconds, "fallbacks": fallbacks, **_counts(answers)}
    if verify:  # every conversation through the kit's functions too (not timed)
        t0 = time.perf_counter()
        out["verify_disagree"] = sum(
            audit_kit(cid, blob, log) != answers[cid] for cid, blob, log in conversations(path)
        )
        out["kit_functions_seconds"] = time.perf_counter() - t0
    if verdicts_out is not None:
        verdicts_out.write_text(json.dumps(answers))
    return out


def _counts(answers: dict[str, tuple[bool, str]]) -> dict[str, Any]:
    harness = {"OK": 0, "MISMATCH": 0, "threw": 0}
    for _, verdict in answers.values():
        harness[verdict] += 1
    return {
        "conversations": len(answers),
        "diverged": sum(d for d, _ in answers.values()),
        "harness": harness,
    }


# --- the other sides ----------------------------------------------------------------------


def run_kit(path: Path, memory_limit: str | None, parity: bool = True) -> dict[str, Any]:
    """``open().load(file)`` then (unless ``parity`` is false) ``parity()``, timed apart."""
    import poncho_replay

    ws = poncho_replay.open(memory_limit=memory_limit)
    t0, c0 = time.perf_counter(), time.process_time()
    ws.load(path, progress=False)
    t1, c1 = time.perf_counter(), time.process_time()
    out = {"seconds": t1 - t0, "load_seconds": t1 - t0, "load_cpu_seconds": c1 - c0}
    if parity:
        report = ws.parity()
        t2 = time.perf_counter()
        out.update(seconds=t2 - t0, parity_seconds=t2 - t1, conversations=len(report))
    return out


FLOOR_CONVERSATIONS = """
CREATE TABLE conversations AS SELECT id, agent_id, tenant_id, owner_id, title, data::JSON AS data,
    message_count, created_at::TIMESTAMPTZ AS created_at, updated_at::TIMESTAMPTZ AS updated_at,
    tool_result_archive::JSON AS tool_result_archive, harness_messages::JSON AS harness_messages,
    continuation_messages::JSON AS continuation_messages, parent_conversation_id, has_pending_approvals,
    channel_meta::JSON AS channel_meta, parent_message_id
FROM conv_arrow
"""
FLOOR_ENTRIES = """
CREATE TABLE conversation_entries AS SELECT seq, id, agent_id, tenant_id, conversation_id, type,
    payload::JSON AS payload, created_at::TIMESTAMPTZ AS created_at
FROM entries_arrow
"""


def run_floor(path: Path) -> dict[str, Any]:
    """ADBC ``fetch_arrow_table`` of both tables, then one CREATE TABLE AS per table."""
    import adbc_driver_sqlite.dbapi as adbc
    import duckdb

    t0, c0 = time.perf_counter(), time.process_time()
    with adbc.connect(uri=f"{path.resolve().as_uri()}?mode=ro") as src, src.cursor() as cur:
        cur.execute("SELECT * FROM conversations")
        conv_arrow = cur.fetch_arrow_table()
        cur.execute("SELECT * FROM conversation_entries")
        entries_arrow = cur.fetch_arrow_table()
    t1 = time.perf_counter()
    con = duckdb.connect()
    con.register("conv_arrow", conv_arrow)
    con.register("entries_arrow", entries_arrow)
    con.execute(FLOOR_CONVERSATIONS)
    con.execute(FLOOR_ENTRIES)
    t2, c2 = time.perf_counter(), time.process_time()
    return {
        "seconds": t2 - t0,
        "cpu_seconds": c2 - c0,
        "adbc_seconds": t1 - t0,
        "duckdb_seconds": t2 - t1,
    }


# --- measuring a child ------------------------------------------------------------------------


def measure(cmd: list[str], stdout: Path) -> dict[str, Any]:
    """Run ``cmd`` (stdout to a file): wall seconds, CPU seconds, peak RSS of its whole process tree.

    The tree's RSS is sampled with psutil every ``SAMPLE_SECONDS``; CPU time
    (user + system, the child and the descendants it waited for) comes from
    ``wait4``, and is the steadier figure on a shared machine.
    """
    import psutil

    err = stdout.with_suffix(".stderr")
    with stdout.open("wb") as out, err.open("wb") as errf:
        t0 = time.perf_counter()
        popen = subprocess.Popen(cmd, stdout=out, stderr=errf)
        root = psutil.Process(popen.pid)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                total = 0
                try:
                    tree = [root, *root.children(recursive=True)]
                except psutil.Error:
                    tree = []
                for proc in tree:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
                done.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(popen.pid, 0)
        wall = time.perf_counter() - t0
        popen.returncode = code = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {code}):\n{err.read_text()[-3000:]}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        # the sampled tree, or the kernel's own peak of the child when a spike fell between samples
        "peak_rss_mib": max(peak / 2**20, usage.ru_maxrss / 1024),
    }


def side_command(side: str, fleet: Path, args: argparse.Namespace, work: Path) -> list[str]:
    if side == "audit":
        cmd = [*cli_command(), "audit", str(fleet), "--json", "--quiet"]
        if args.file:
            db = work / "audit-workspace.duckdb"
            db.unlink(missing_ok=True)
            cmd += ["--db", str(db)]
        return cmd + (["--memory-limit", args.memory_limit] if args.memory_limit else [])
    cmd = [sys.executable, str(HERE), "--child", side, "--fleet", str(fleet)]
    cmd += ["--memory-limit", args.memory_limit] if args.memory_limit else []
    if side == "loop":
        cmd += ["--verdicts-out", str(work / "loop-verdicts.json")]
        cmd += ["--verify"] if args.verify else []
    return cmd


def _audit_answers(path: Path) -> tuple[dict[str, Any], dict[str, tuple[bool, str]]]:
    """The audit's JSON stdout: its counts, and each conversation's (diverged, harness verdict)."""
    report = json.loads(path.read_text())
    answers = {
        r["conversation_id"]: (r["verdict"] == "diverged", r["harness_verdict"])
        for r in report["conversations"]
    }
    return {**_counts(answers), "harness_mismatch": report["harness_mismatch"]}, answers


def child(args: argparse.Namespace) -> None:
    fleet = Path(args.fleet)
    if args.child == "loop":
        out = run_loop(fleet, Path(args.verdicts_out) if args.verdicts_out else None, args.verify)
    elif args.child in ("kit", "load"):
        out = run_kit(fleet, args.memory_limit, parity=args.child == "kit")
    else:
        out = run_floor(fleet)
    print(json.dumps(out))


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--faults", default=DEFAULT_FAULTS, help="the simulator's --faults ('' for none)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; figures are medians")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "poncho-bench")
    parser.add_argument(
        "--fleet", type=Path, help="audit this harness SQLite file instead of simulating one"
    )
    parser.add_argument(
        "--side",
        action="append",
        choices=SIDES,
        help="sides to run (repeatable; default: all but load)",
    )
    parser.add_argument("--skip-python", action="store_true", help="leave the Python loop out")
    parser.add_argument(
        "--file", action="store_true", help="audit into a DuckDB file workspace (--db)"
    )
    parser.add_argument(
        "--memory-limit", help="DuckDB memory_limit for the audit and the kit, e.g. 8GB"
    )
    parser.add_argument(
        "--scale", type=int, default=1,
        help="simulate this many chunks of --conversations (seeds seed, seed+1, ...) into one file",
    )  # fmt: skip
    parser.add_argument(
        "--verify", action="store_true",
        help="also run the kit's pure functions on every conversation and count disagreements with the loop",
    )  # fmt: skip
    parser.add_argument("--child", choices=("kit", "load", "loop", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--verdicts-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    args.cache.mkdir(parents=True, exist_ok=True)
    fleet = args.fleet or fleet_file(
        args.cache, args.conversations, args.seed, args.faults, args.scale
    )
    n_conv, n_entries = fleet_counts(fleet)
    sides = [s for s in (args.side or DEFAULT_SIDES) if not (args.skip_python and s == "loop")]
    work = Path(tempfile.mkdtemp(prefix="bench-parity-", dir=args.cache))
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    for k in range(args.repeat):
        for side in sides:  # interleaved, so a noisy minute spreads over every side
            stdout = work / f"{side}.out"
            m = measure(side_command(side, fleet, args, work), stdout)
            if side != "audit":
                m.update(json.loads(stdout.read_text().strip().splitlines()[-1]))
            runs[side].append(m)
            print(
                f"run {k + 1}/{args.repeat} {side}: {m['wall']:.1f} s wall, {m['cpu']:.1f} s CPU, "
                f"{m['peak_rss_mib']:,.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
    med = {
        s: {
            key: _median([r[key] for r in rs])
            for key in rs[0]
            if isinstance(rs[0][key], (int, float))
        }
        for s, rs in runs.items()
    }

    print(
        f"\nfleet: {n_conv:,} conversations, {n_entries:,} entries ({fleet.name}, "
        f"{fleet.stat().st_size / 2**20:,.0f} MiB; seed {args.seed}, faults {args.faults or 'none'}); "
        f"median of {args.repeat} run(s); workspace {'file' if args.file else 'in memory'}"
        + (f", memory_limit {args.memory_limit}" if args.memory_limit else "")
        + "\n"
    )
    print("| side | wall seconds | work seconds | peak RSS, process tree (MiB) | CPU seconds |")
    print("| --- | ---: | ---: | ---: | ---: |")
    labels = {
        "audit": "`poncho-replay audit FILE --json`",
        "kit": "`ws.load()` + `ws.parity()`",
        "load": "`ws.load()` alone",
        "loop": "Python loop",
        "floor": "load floor",
    }
    for side in sides:
        m = med[side]
        work_s = "" if side == "audit" else f"{m['seconds']:.2f}"
        print(
            f"| {labels[side]} | {m['wall']:.2f} | {work_s} | {m['peak_rss_mib']:,.0f} | {m['cpu']:.1f} |"
        )
    if "kit" in med:
        print(f"| `ws.load()` | | {med['kit']['load_seconds']:.2f} | | |")
        print(f"| `ws.parity()` | | {med['kit']['parity_seconds']:.2f} | | |")
    if "floor" in med:
        print(f"| floor: ADBC fetch_arrow_table | | {med['floor']['adbc_seconds']:.2f} | | |")
        print(f"| floor: DuckDB CREATE TABLE AS | | {med['floor']['duckdb_seconds']:.2f} | | |")

    print()
    if "audit" in med and "loop" in med:
        print(
            f"audit / loop (wall): {med['audit']['wall'] / med['loop']['wall']:.2f}x; "
            f"(CPU): {med['audit']['cpu'] / med['loop']['cpu']:.2f}x"
        )
    loader = next((s for s in ("load", "kit") if s in med), None)
    if loader and "floor" in med:
        load, floor = med[loader], med["floor"]
        print(
            f"load / floor (work): {load['load_seconds'] / floor['seconds']:.2f}x; "
            f"(CPU): {load['load_cpu_seconds'] / floor['cpu_seconds']:.2f}x "
            f"(load {load['load_cpu_seconds']:.2f} s CPU, floor {floor['cpu_seconds']:.2f} s CPU)"
        )
    if "audit" in runs:
        audit_counts, audit_answers = _audit_answers(work / "audit.out")
        h = audit_counts["harness"]
        print(
            f"audit: {audit_counts['conversations']:,} conversations, {audit_counts['diverged']:,} diverged; "
            f"harness_verdict OK {h['OK']:,}, MISMATCH {h['MISMATCH']:,}, threw {h['threw']:,}"
        )
    if "loop" in runs:
        last = runs["loop"][-1]
        h = last["harness"]
        print(
            f"loop:  {last['conversations']:,} conversations, {last['diverged']:,} diverged; "
            f"harness verdict OK {h['OK']:,}, MISMATCH {h['MISMATCH']:,}, threw {h['threw']:,} "
            f"({last['fallbacks']:,} through the kit's functions)"
        )
        if "verify_disagree" in last:
            print(
                f"loop vs the kit's pure functions: {last['verify_disagree']:,} conversations disagree "
                f"(kit functions: {last['kit_functions_seconds']:.2f} s vs loop {last['seconds']:.2f} s)"
            )
    if "audit" in runs and "loop" in runs:
        loop_answers = {
            k: tuple(v) for k, v in json.loads((work / "loop-verdicts.json").read_text()).items()
        }
        same_h = sum(loop_answers.get(c, (None, None))[1] == a[1] for c, a in audit_answers.items())
        same_v = sum(loop_answers.get(c, (None, None))[0] == a[0] for c, a in audit_answers.items())
        counts_equal = audit_counts["harness"] == last["harness"]
        print(
            f"agreement: harness verdict counts {'equal' if counts_equal else 'DIFFER'}; per conversation "
            f"harness verdict {same_h:,} of {len(audit_answers):,}, verdict {same_v:,} of {len(audit_answers):,}"
        )
    for path in work.iterdir():
        path.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
