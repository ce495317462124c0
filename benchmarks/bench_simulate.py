"""How fast ``simulate.fleet`` generates a fleet, and how fast it lands in a SQLite file.

Usage: python benchmarks/bench_simulate.py [n_conversations] [--seed S]
       [--faults lost=0.02,reorder=0.1,writeback] [--sqlite PATH]

The defaults are the README's 1M-class fleet (``poncho-replay simulate
--conversations 20000 --seed 1 --faults lost=0.02,reorder=0.1,writeback``:
about 926k entries); ``--faults ""`` turns the faults off. Each step prints
wall time and this process's CPU time (user + sys): on a shared machine the
CPU time is the steadier figure. Prints numbers; asserts nothing (timing
belongs here, not in tests).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from poncho_replay.cli import FaultsSpec
from poncho_replay.simulate import Faults, fleet

DEFAULT_FAULTS = "lost=0.02,reorder=0.1,writeback"


@contextmanager
def timed(label: str, entries: list[int]) -> Iterator[None]:
    """Print wall and CPU seconds of the block, and seconds per 1M entries once ``entries`` holds the count."""
    cpu0, wall0 = _cpu(), time.perf_counter()
    yield
    cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    per = (
        f", {wall / entries[0] * 1e6:.1f} s wall / {cpu / entries[0] * 1e6:.1f} s CPU per 1M entries"
        if entries
        else ""
    )
    print(f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU{per}", flush=True)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("n", nargs="?", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--faults",
        default=DEFAULT_FAULTS,
        help=f"as `simulate --faults` (default {DEFAULT_FAULTS})",
    )
    parser.add_argument(
        "--sqlite", type=Path, help="also write the fleet to this harness-layout SQLite file"
    )
    args = parser.parse_args()
    rates = FaultsSpec().convert(args.faults, None, None)

    print(f"load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    count: list[int] = []
    with timed("total", count):
        with timed(f"fleet({args.n}, seed={args.seed}, faults={args.faults or 'none'})", count):
            f = fleet(
                args.n, seed=args.seed, faults=Faults(seed=args.seed, **rates) if rates else None
            )
            count.append(f.entry_count)
        print(f"  {len(f.conversations)} conversations, {f.entry_count:,} entries")
        if args.sqlite:
            args.sqlite.unlink(missing_ok=True)
            with timed("to_sqlite", count):
                f.to_sqlite(args.sqlite)
            print(f"  {args.sqlite.stat().st_size / 2**20:.0f} MiB")
    print(f"load average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
