"""A seeded clock and id source, so a simulated fleet is the same for a seed."""

from __future__ import annotations

import random
import uuid

SIM_EPOCH_MS = 1_772_582_400_000
"""2026-03-04T00:00:00Z, the day the harness sample database starts."""


class Clock:
    """Monotonic epoch-millisecond time and UUIDv4-shaped ids from one seed."""

    def __init__(self, seed: int, start_ms: int = SIM_EPOCH_MS) -> None:
        self._rng = random.Random(seed)
        self.now = start_ms

    def tick(self, max_step_ms: int = 40) -> int:
        """Advance by 1..max_step_ms and return the new time."""
        self.now += self._rng.randint(1, max_step_ms)
        return self.now

    def uuid(self) -> str:
        """A random-looking, seed-determined UUIDv4 string."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def hex(self, n: int) -> str:
        """``n`` seed-determined hex digits (tool-call ids)."""
        return f"{self._rng.getrandbits(4 * n):0{n}x}"
