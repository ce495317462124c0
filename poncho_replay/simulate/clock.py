"""A seeded clock and id source, so a simulated fleet is the same for a seed."""

from __future__ import annotations

import random

SIM_EPOCH_MS = 1_772_582_400_000
"""2026-03-04T00:00:00Z, the day the harness sample database starts."""


_VERSION_MASK = (0xC000 << 48) | (0xF000 << 64)
_VERSION_4 = (0x8000 << 48) | (4 << 76)
"""RFC 4122 variant and version 4 bits, as ``uuid.UUID(int=..., version=4)`` sets them."""


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
        """A random-looking, seed-determined UUIDv4 string: ``str(uuid.UUID(int=bits, version=4))``.

        The version and variant bits are set here, as ``uuid.UUID`` sets them,
        without building a UUID object: a fleet draws one per message and
        entry, and the object was a fifth of the simulation's time.
        """
        bits = self._rng.getrandbits(128) & ~_VERSION_MASK | _VERSION_4
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def hex(self, n: int) -> str:
        """``n`` seed-determined hex digits (tool-call ids)."""
        return f"{self._rng.getrandbits(4 * n):0{n}x}"
