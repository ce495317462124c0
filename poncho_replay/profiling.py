"""Where the time and memory go: phase timings for ``load`` and ``parity`` (``profile=True``, ``--profile``).

Library code marks its phases with :func:`phase`; nothing is measured
unless a :func:`profiling` block is active, so the marks cost nothing
otherwise. Each phase prints one line to stderr when it ends: its wall
time, the CPU time of every thread of the process (DuckDB's included: more
than the wall time when it ran in parallel, and the steadier figure on a
shared machine), the process's resident memory then, and the process's
peak so far (the kernel's high-water mark, which a phase can only raise).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["PhaseTiming", "phase", "profiling"]


@dataclass(frozen=True)
class PhaseTiming:
    """One finished phase: name, wall and CPU seconds, resident and peak memory (bytes)."""

    name: str
    seconds: float
    cpu_seconds: float
    rss: int
    peak_rss: int

    def __str__(self) -> str:
        return (
            f"[profile] {self.name:<32} {self.seconds:8.2f} s   cpu {self.cpu_seconds:8.2f} s"
            f"   rss {self.rss / 2**20:8.0f} MiB   peak {self.peak_rss / 2**20:8.0f} MiB"
        )


@dataclass
class _Session:
    stream: TextIO
    timings: list[PhaseTiming] = field(default_factory=list)
    depth: int = 0


_active: ContextVar[_Session | None] = ContextVar("poncho_replay_profile", default=None)


def _rss() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()
    except OSError:  # not Linux: the peak is the best we have
        return _peak()


def _peak() -> int:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib if sys.platform == "darwin" else kib * 1024


@contextmanager
def profiling(enabled: bool = True, stream: TextIO | None = None) -> Iterator[list[PhaseTiming]]:
    """Print each :func:`phase` inside the block to ``stream`` (stderr); yields the list of timings."""
    if not enabled or _active.get() is not None:
        yield [] if _active.get() is None else _active.get().timings  # type: ignore[union-attr]
        return
    session = _Session(stream or sys.stderr)
    token = _active.set(session)
    try:
        yield session.timings
    finally:
        _active.reset(token)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Mark a phase of work; measured and printed only inside :func:`profiling`."""
    session = _active.get()
    if session is None:
        yield
        return
    start, cpu = time.perf_counter(), time.process_time()
    session.depth += 1
    try:
        yield
    finally:
        session.depth -= 1
        rss = _rss()
        timing = PhaseTiming(
            "  " * session.depth + name, time.perf_counter() - start, time.process_time() - cpu, rss, max(rss, _peak())
        )
        session.timings.append(timing)
        print(timing, file=session.stream, flush=True)
