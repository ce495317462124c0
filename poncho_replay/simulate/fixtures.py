"""Build the committed fixture databases: one scenario class each, through a real store.

Run ``python -m poncho_replay.simulate.fixtures fixtures/`` to rebuild them.
The scripts go through :class:`~poncho_replay.store.MemoryStore` (with the
simulator's seeded clock for its timestamps), exactly as the harness drives
its store; the result is written in the harness's SQLite layout. Each
fixture's ``expected.json`` is written by hand from SPEC §3/§5, never by
this module.
"""

from __future__ import annotations

import sys
from pathlib import Path

from poncho_replay.simulate.backend import StoreBackend
from poncho_replay.simulate.data import Fleet
from poncho_replay.simulate.harness import Simulator
from poncho_replay.simulate.scenarios import SCENARIO_CLASSES
from poncho_replay.store.memory import MemoryStore

FIXTURE_DB = "harness.db"
AGENT_ID = "poncho-sim-agent"


def build_fixture(scenario_class: str, out_dir: Path, *, seed: int = 0) -> dict[str, str]:
    """Run one scenario class through a MemoryStore and write ``out_dir/harness.db``.

    Returns ``{title: conversation_id}``.
    """
    sim = Simulator(seed=seed)
    store = MemoryStore(AGENT_ID, read_cutover=False, clock=sim.clock.tick)
    sim.backend = StoreBackend(store)
    titles = SCENARIO_CLASSES[scenario_class](sim)
    sim.flush()
    out_dir.mkdir(parents=True, exist_ok=True)
    db = out_dir / FIXTURE_DB
    db.unlink(missing_ok=True)
    Fleet.from_store(store, titles.values(), AGENT_ID).to_sqlite(db)
    return titles


def main(argv: list[str]) -> None:
    """Rebuild every fixture under the given directory (default ``fixtures``)."""
    root = Path(argv[0] if argv else "fixtures")
    for name in SCENARIO_CLASSES:
        build_fixture(name, root / name)
        print(f"{root / name / FIXTURE_DB}: {(root / name / FIXTURE_DB).stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
