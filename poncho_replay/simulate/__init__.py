"""A faithful simulator of the harness's writes, 0.56 to 0.61.x, with seeded faults.

See :mod:`poncho_replay.simulate.harness` for the write sites,
:mod:`~poncho_replay.simulate.releases` for what each release writes and reads,
:mod:`~poncho_replay.simulate.faults` for the faults,
:mod:`~poncho_replay.simulate.scenarios` for the scripted scenarios,
:mod:`~poncho_replay.simulate.random_fleet` for the random :func:`fleet` (on a
sequential or a dated timeline), :mod:`~poncho_replay.simulate.truth` for the
ground truth of the audit's causes, and :mod:`~poncho_replay.simulate.writers`
for the harness-shaped SQLite and PostgreSQL writers.
"""

from poncho_replay.simulate.backend import Backend, DictBackend, StoreBackend
from poncho_replay.simulate.clock import Clock
from poncho_replay.simulate.data import Fleet
from poncho_replay.simulate.faults import FATES, SITES, FaultPlan, Faults
from poncho_replay.simulate.harness import Event, Simulator, Turn
from poncho_replay.simulate.random_fleet import fleet
from poncho_replay.simulate.releases import HarnessRelease, harness_release
from poncho_replay.simulate.scenarios import SCENARIO_CLASSES, run_scenarios
from poncho_replay.simulate.truth import Truth

__all__ = [
    "FATES",
    "SCENARIO_CLASSES",
    "SITES",
    "Backend",
    "Clock",
    "DictBackend",
    "Event",
    "FaultPlan",
    "Faults",
    "Fleet",
    "HarnessRelease",
    "Simulator",
    "StoreBackend",
    "Truth",
    "Turn",
    "fleet",
    "harness_release",
    "run_scenarios",
]
