"""Seeded faults of the harness's fire-and-forget entry appends (SPEC §5, §7).

Every dual-write append, and from 0.59.3 every queue append, is
``void appendEntriesSafe(...)``: nothing waits for it, nothing orders it, a
failure is logged and swallowed. :class:`Faults`
says how often each way of going wrong happens; :class:`FaultPlan` draws the
fate of each append from its own seeded generator (so the same seed gives
the same faults whatever the content) and lets a scripted scenario force the
fate of the next append at a named write site.
"""

from __future__ import annotations

import random
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Literal

Fate = Literal["ok", "lost", "fail", "duplicate", "reorder"]
FATES: tuple[Fate, ...] = ("ok", "lost", "fail", "duplicate", "reorder")

SITES: tuple[str, ...] = (
    "user_turn",
    "compaction",
    "finalize",
    "resume",
    "subagent_result",
    "callback_started",
    "callback_hidden",
    "callback_reply",
)
"""The append sites, named after SPEC §5's bullets (the 0.59.3+ queue appends
are ``subagent_result`` and ``callback_started``)."""


@dataclass(frozen=True)
class Faults:
    """How the best-effort dual-write misbehaves; all off by default.

    Attributes:
        lost: probability an append never runs (process gone before the
            promise ran): nothing written, nothing logged.
        fail: probability the store rejects the append: nothing written, the
            harness logs ``[entries-dual-write] append failed ...``.
        duplicate: probability an append runs twice (``appendEntriesSafe``
            invoked again; each call stamps fresh ids, so both land).
        reorder: probability an append is overtaken: it lands right after
            the next append of the same conversation (for example the
            finalize entries before the compaction entry).
        reorder_sites: the sites ``reorder`` applies to (the compaction's
            read-then-append is the one that races in practice).
        writeback: 0.58.0's read cutover on every ``get`` of a
            get -> modify -> update path (turn start, callback,
            ``append_subagent_result``, ``clear_callback_lock``, ``rename``),
            which writes the log's rebuilt transcript back into the blob.
        seed: seeds the fault draws, independently of the content.
    """

    lost: float = 0.0
    fail: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_sites: tuple[str, ...] = ("compaction",)
    writeback: bool = False
    seed: int = 0


class FaultPlan:
    """Draws each append's fate; forced fates (scripted scenarios) come first."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self._rng = random.Random(self.faults.seed)
        self._forced: dict[str, deque[Fate]] = defaultdict(deque)

    def force(self, site: str, fate: Fate) -> None:
        """Make the next append at ``site`` (any conversation) have ``fate``."""
        if site not in SITES:
            raise ValueError(f"unknown write site {site!r}; choose one of {', '.join(SITES)}")
        if fate not in FATES:
            raise ValueError(f"unknown fate {fate!r}; choose one of {', '.join(FATES)}")
        self._forced[site].append(fate)

    def fate(self, site: str) -> Fate:
        """The fate of the next append at ``site``."""
        if self._forced[site]:
            return self._forced[site].popleft()
        f = self.faults
        if not (f.lost or f.fail or f.duplicate or f.reorder):
            return "ok"
        r = self._rng.random()
        for fate, p in (("lost", f.lost), ("fail", f.fail), ("duplicate", f.duplicate)):
            if r < p:
                return fate  # type: ignore[return-value]
            r -= p
        if site in f.reorder_sites and r < f.reorder:
            return "reorder"
        return "ok"
