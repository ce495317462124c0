"""A faithful simulator of the harness 0.57/0.58 dual-write, with seeded faults.

See :mod:`poncho_replay.simulate.harness` for the write sites,
:mod:`~poncho_replay.simulate.faults` for the faults,
:mod:`~poncho_replay.simulate.scenarios` for the scripted scenarios and the
random :func:`fleet`, and :mod:`~poncho_replay.simulate.writers` for the
harness-shaped SQLite and PostgreSQL writers.
"""

from poncho_replay.simulate.backend import Backend, DictBackend, StoreBackend
from poncho_replay.simulate.clock import Clock
from poncho_replay.simulate.data import Fleet
from poncho_replay.simulate.faults import FATES, SITES, FaultPlan, Faults
from poncho_replay.simulate.harness import Event, Simulator, Turn
from poncho_replay.simulate.scenarios import SCENARIO_CLASSES, fleet, run_scenarios

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
    "Simulator",
    "StoreBackend",
    "Turn",
    "fleet",
    "run_scenarios",
]
