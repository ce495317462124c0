"""How fast ``simulate.fleet`` generates a fleet, and how fast it lands in a SQLite file.

Usage: python benchmarks/bench_simulate.py [n_conversations] [--sqlite PATH]
Prints numbers; asserts nothing (timing belongs here, not in tests).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from poncho_replay.simulate import fleet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", nargs="?", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sqlite", type=Path, help="also write the fleet to this harness-layout SQLite file")
    args = parser.parse_args()

    t0 = time.perf_counter()
    f = fleet(args.n, seed=args.seed)
    dt = time.perf_counter() - t0
    print(f"fleet({args.n}, seed={args.seed}): {len(f.conversations)} conversations, "
          f"{f.entry_count} entries in {dt:.1f} s ({f.entry_count / dt:,.0f} entries/s)")
    if args.sqlite:
        args.sqlite.unlink(missing_ok=True)
        t0 = time.perf_counter()
        f.to_sqlite(args.sqlite)
        dt = time.perf_counter() - t0
        print(f"to_sqlite: {dt:.1f} s, {args.sqlite.stat().st_size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
