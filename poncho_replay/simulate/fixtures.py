"""Build the committed fixture databases: one scenario class each, through a real store.

Run ``python -m poncho_replay.simulate.fixtures fixtures/`` to rebuild them.
The scripts go through :class:`~poncho_replay.store.MemoryStore` (with the
simulator's seeded clock for its timestamps), exactly as the harness drives
its store; the result is written in the harness's SQLite layout. Each
fixture's ``expected.json`` is written by hand from SPEC §3/§5, never by
this module.

Rebuilding gives the same rows every time (DESIGN, "Fixtures"): entry and
message ids and every timestamp come from the simulator's seeded clock, the
store's conversation ids from a generator seeded by the scenario class (its
own stream, so the simulator's draws are unchanged), and the
``_migrations.applied_at`` column, which SQLite would stamp with today's
date, is set to :data:`APPLIED_AT`. ``tests/test_fixtures.py`` rebuilds each
fixture and compares its rows with the committed one.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from poncho_replay.simulate.backend import StoreBackend
from poncho_replay.simulate.data import Fleet
from poncho_replay.simulate.harness import Simulator
from poncho_replay.simulate.scenarios import SCENARIO_CLASSES
from poncho_replay.store.memory import MemoryStore

FIXTURE_DB = "harness.db"
AGENT_ID = "poncho-sim-agent"
APPLIED_AT = "2026-03-04 00:00:00"
"""The fixed ``_migrations.applied_at`` of every fixture (the simulator's epoch, SIM_EPOCH_MS)."""


def conversation_ids(scenario_class: str, seed: int) -> Callable[[], str]:
    """Seeded UUIDv4-shaped conversation ids, a stream of their own per scenario class and seed."""
    rng = random.Random(f"fixture-conversations:{scenario_class}:{seed}")
    return lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))


def build_fixture(scenario_class: str, out_dir: Path, *, seed: int = 0) -> dict[str, str]:
    """Run one scenario class through a MemoryStore and write ``out_dir/harness.db``.

    Returns ``{title: conversation_id}``.
    """
    sim = Simulator(seed=seed)
    store = MemoryStore(
        AGENT_ID, read_cutover=False, clock=sim.clock.tick, ids=conversation_ids(scenario_class, seed)
    )
    sim.backend = StoreBackend(store)
    titles = SCENARIO_CLASSES[scenario_class](sim)
    sim.flush()
    out_dir.mkdir(parents=True, exist_ok=True)
    db = out_dir / FIXTURE_DB
    db.unlink(missing_ok=True)
    Fleet.from_store(store, titles.values(), AGENT_ID).to_sqlite(db)
    with closing(sqlite3.connect(db)) as con:
        con.execute("UPDATE _migrations SET applied_at = ?", (APPLIED_AT,))
        con.commit()
    return titles


def main(argv: list[str]) -> None:
    """Rebuild every fixture under the given directory (default ``fixtures``)."""
    root = Path(argv[0] if argv else "fixtures")
    for name in SCENARIO_CLASSES:
        build_fixture(name, root / name)
        print(f"{root / name / FIXTURE_DB}: {(root / name / FIXTURE_DB).stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
