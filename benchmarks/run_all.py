"""The README's benchmark table: every benchmark script at two sizes, one markdown table.

Runs the existing scripts (each in its own process, so each peak RSS is its
own) and collects what they print:

* ``bench_load.py``: load a harness SQLite file (and PostgreSQL with
  ``--postgres``) into a fresh workspace: seconds, rows/s, peak RSS;
* ``bench_parity.py``: on one simulated fleet with faults (a harness SQLite
  file), the CLI audit end to end, ``ws.load()`` and ``ws.parity()`` timed
  apart, the plain Python loop (rebuilds + the harness's check), the load
  floor (ADBC + DuckDB CREATE TABLE AS), medians of ``--repeat`` runs, and
  whether the loop's harness verdicts agree with the audit's;
* ``bench_fleet_sql.py``: the three fleet rebuilds in SQL against the loop;
* ``bench_store.py``: store append (batches of 1 and 100) and read latency.

Usage (the 1M size takes several minutes on 2 cores; run it once):

    .venv/bin/python benchmarks/run_all.py [--sizes 100000,1000000] [--postgres]
        [--repeat 3] [--cache DIR] [--store-entries 2000]

Prints the table and the machine it ran on; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ENTRIES_PER_CONVERSATION = 50
"""Fleets are sized in conversations: ``bench_fleet_sql`` writes exactly 50 entries each,
``simulate.fleet`` (``bench_parity``) about 47, so the table shows the audit's real entry count."""


def run_script(name: str, *args: str) -> str:
    """A benchmark script's stdout; its failure stops the run with its stderr."""
    cmd = [sys.executable, str(HERE / name), *args]
    print(f"$ {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def _search(pattern: str, text: str, script: str) -> re.Match[str]:
    found = re.search(pattern, text, re.MULTILINE)
    if found is None:
        raise SystemExit(f"{script}: no line matching {pattern!r} in its output:\n{text[-2000:]}")
    return found


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def parse_load(out: str) -> dict[str, dict[str, Any]]:
    """``{"sqlite": {...}, "postgres": {...}}``: each child's JSON line."""
    found = {
        m.group(1): json.loads(m.group(2))
        for m in re.finditer(r"^(sqlite|postgres)\s+(\{.*\})$", out, re.MULTILINE)
    }
    if "sqlite" not in found:
        raise SystemExit(f"bench_load.py: no sqlite result in its output:\n{out[-2000:]}")
    return found


def parse_parity(out: str) -> dict[str, Any]:
    """The fleet's size, and per side of ``bench_parity.py``: wall / work seconds and peak RSS."""
    fleet = _search(r"^fleet: ([\d,]+) conversations, ([\d,]+) entries", out, "bench_parity.py")
    result: dict[str, Any] = {
        "conversations": int(_num(fleet.group(1))),
        "entries": int(_num(fleet.group(2))),
    }
    sides = (
        ("audit", r"`poncho-replay audit FILE --json`"),
        ("kit", r"`ws\.load\(\)` \+ `ws\.parity\(\)`"),
        ("loop", "Python loop"),
        ("floor", "load floor"),
    )
    for key, label in sides:
        row = _search(
            rf"^\| {label} \| ([\d.,]+) \| ([\d.,]*) \| ([\d,]+) \| ([\d.,]+) \|$",
            out,
            "bench_parity.py",
        )
        result[key] = {
            "wall": _num(row.group(1)),
            "seconds": _num(row.group(2)) if row.group(2) else None,
            "peak_rss_mib": _num(row.group(3)),
            "cpu": _num(row.group(4)),
        }
    for key, label in (("load", r"`ws\.load\(\)`"), ("parity", r"`ws\.parity\(\)`")):
        result[key] = _num(
            _search(rf"^\| {label} \| \| ([\d.,]+) \|", out, "bench_parity.py").group(1)
        )
    agree = _search(
        r"^agreement: harness verdict counts (equal|DIFFER); per conversation "
        r"harness verdict ([\d,]+) of ([\d,]+), verdict ([\d,]+) of ([\d,]+)",
        out,
        "bench_parity.py",
    )
    result["agree"] = {
        "counts_equal": agree.group(1) == "equal",
        "harness": int(_num(agree.group(2))),
        "verdict": int(_num(agree.group(4))),
        "of": int(_num(agree.group(3))),
    }
    return result


def parse_fleet_sql(out: str) -> dict[str, Any]:
    """Seconds and peak RSS of the SQL rebuild and of the loop, and their ratio."""
    sql = _search(
        r"^SQL fleet rebuild: ([\d.]+) s, .*peak RSS ([\d,]+) MiB", out, "bench_fleet_sql.py"
    )
    loop = _search(
        r"^Python loop:\s+([\d.]+) s, .*peak RSS ([\d,]+) MiB", out, "bench_fleet_sql.py"
    )
    same = _search(r"row counts equal: (True|False)", out, "bench_fleet_sql.py")
    return {
        "sql_seconds": _num(sql.group(1)),
        "sql_rss": _num(sql.group(2)),
        "loop_seconds": _num(loop.group(1)),
        "loop_rss": _num(loop.group(2)),
        "equal": same.group(1) == "True",
    }


def parse_store(out: str) -> dict[str, tuple[float, float, float]]:
    """Per store: entries/s appending one at a time, entries/s in batches of 100, read ms."""
    rows = re.findall(r"^(\S.*?)\s{2,}([\d,]+)\s+([\d,]+)\s+([\d.]+)$", out, re.MULTILINE)
    if not rows:
        raise SystemExit(f"bench_store.py: no result rows in its output:\n{out[-2000:]}")
    return {name.strip(): (_num(a), _num(b), _num(c)) for name, a, b, c in rows}


def machine() -> str:
    """CPU, cores, memory and versions, for the line under the table."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    ) if Path("/proc/cpuinfo").exists() else platform.processor()  # fmt: skip
    mem = ""
    if Path("/proc/meminfo").exists():
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    import duckdb

    return (
        f"{cpu}, {os.cpu_count()} cores{mem}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, DuckDB {duckdb.__version__}"
    )


def _ratio(slow: float, fast: float) -> str:
    """``slow / fast`` as ``12.3x`` (``-`` when the fast side rounds to zero)."""
    return f"{slow / fast:.1f}x" if fast > 0 else "-"


def _secs(x: float) -> str:
    """Seconds, with two decimals below 10 s (tiny runs stay readable)."""
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def _size_label(n: int) -> str:
    return (
        f"{n // 1_000_000}M"
        if n >= 1_000_000 and n % 1_000_000 == 0
        else f"{n // 1000}k"
        if n >= 1000
        else str(n)
    )


def table(
    sizes: list[int],
    postgres: bool,
    *,
    repeat: int = 3,
    cache: Path | None = None,
    store_entries: int = 2000,
) -> str:
    """Run every script at every size and lay the numbers out."""
    load, parity, fleet_sql = {}, {}, {}
    for n in sizes:
        load[n] = parse_load(
            run_script(
                "bench_load.py", "--entries", str(n), *([] if postgres else ["--no-postgres"])
            )
        )
        conversations = str(max(1, n // ENTRIES_PER_CONVERSATION))
        parity[n] = parse_parity(
            run_script(
                "bench_parity.py",
                "--conversations",
                conversations,
                "--repeat",
                str(repeat),
                *(["--cache", str(cache)] if cache else []),
            )
        )
        fleet_sql[n] = parse_fleet_sql(
            run_script(
                "bench_fleet_sql.py",
                "--conversations",
                conversations,
                "--entries-per",
                str(ENTRIES_PER_CONVERSATION),
            )
        )
    store = parse_store(run_script("bench_store.py", "--entries", str(store_entries)))

    cols = [_size_label(n) for n in sizes]
    lines = [f"| measure | {' | '.join(cols)} |", "| --- |" + " ---: |" * len(sizes)]

    def row(label: str, cell: Callable[[int], str]) -> None:
        lines.append(f"| {label} | {' | '.join(cell(n) for n in sizes)} |")

    def load_cell(kind: str) -> Callable[[int], str]:
        def cell(n: int) -> str:
            r = load[n].get(kind)
            return (
                "-"
                if r is None
                else f"{r['seconds']:.1f} s ({r['rows_per_s']:,} rows/s), {r['peak_rss_mib']:,} MiB"
            )

        return cell

    row("load: harness SQLite file → workspace (time, peak RSS)", load_cell("sqlite"))
    if postgres:
        row("load: PostgreSQL → workspace (time, peak RSS)", load_cell("postgres"))
    row(
        "audit: fleet simulated with faults (conversations, entries)",
        lambda n: f"{parity[n]['conversations']:,}, {parity[n]['entries']:,}",
    )
    row(
        "audit: `poncho-replay audit FILE --json`, end to end (time, CPU, peak RSS)",
        lambda n: (
            f"{_secs(parity[n]['audit']['wall'])} ({_secs(parity[n]['audit']['cpu'])} CPU), "
            f"{parity[n]['audit']['peak_rss_mib']:,.0f} MiB"
        ),
    )
    row(
        "audit: of which `ws.load()` / `ws.parity()` (time)",
        lambda n: f"{_secs(parity[n]['load'])} / {_secs(parity[n]['parity'])}",
    )
    row(
        "audit: plain Python loop, rebuilds + harness check (time, CPU, peak RSS)",
        lambda n: (
            f"{_secs(parity[n]['loop']['wall'])} ({_secs(parity[n]['loop']['cpu'])} CPU), "
            f"{parity[n]['loop']['peak_rss_mib']:,.0f} MiB"
        ),
    )
    row(
        "audit / loop time ratio",
        lambda n: _ratio(parity[n]["audit"]["wall"], parity[n]["loop"]["wall"]),
    )
    row(
        "harness verdicts, loop vs audit (per conversation)",
        lambda n: (
            f"{parity[n]['agree']['harness']:,} of {parity[n]['agree']['of']:,}"
            + ("" if parity[n]["agree"]["counts_equal"] else " (counts DIFFER)")
        ),
    )
    row(
        "load floor: ADBC + CREATE TABLE AS (time, peak RSS)",
        lambda n: (
            f"{_secs(parity[n]['floor']['seconds'])}, {parity[n]['floor']['peak_rss_mib']:,.0f} MiB"
        ),
    )
    row(
        "load / floor time ratio",
        lambda n: _ratio(parity[n]["load"], parity[n]["floor"]["seconds"]),
    )
    row(
        "fleet rebuild: SQL vs Python loop (time)",
        lambda n: f"{fleet_sql[n]['sql_seconds']:.1f} s vs {fleet_sql[n]['loop_seconds']:.1f} s",
    )
    row(
        "fleet rebuild: loop / SQL time ratio (row counts equal)",
        lambda n: (
            f"{_ratio(fleet_sql[n]['loop_seconds'], fleet_sql[n]['sql_seconds'])} "
            f"({'yes' if fleet_sql[n]['equal'] else 'NO'})"
        ),
    )
    lines.append("")
    lines.append(
        "| store | append, batch of 1 (entries/s) | append, batch of 100 (entries/s) | read 1,000 entries (ms) |"
    )
    lines.append("| --- | ---: | ---: | ---: |")
    for name, (one, hundred, read) in store.items():
        lines.append(f"| {name} | {one:,.0f} | {hundred:,.0f} | {read:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="entry counts, comma-separated")
    parser.add_argument(
        "--postgres", action="store_true", help="also load from PostgreSQL at 127.0.0.1:5432"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="bench_parity.py runs per side (medians)"
    )
    parser.add_argument(
        "--cache", type=Path, help="where bench_parity.py caches its simulated fleets"
    )
    parser.add_argument("--store-entries", type=int, default=2000, help="bench_store.py --entries")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(
        table(
            sizes,
            args.postgres,
            repeat=args.repeat,
            cache=args.cache,
            store_entries=args.store_entries,
        )
    )
    print(f"\nMachine: {machine()}.")
    print(
        f"Reproduce: `.venv/bin/python benchmarks/run_all.py --sizes {args.sizes} --repeat {args.repeat}`"
        + (" --postgres" if args.postgres else "")
    )


if __name__ == "__main__":
    main()
