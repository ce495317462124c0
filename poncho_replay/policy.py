"""Read policies named by harness release: what ``get()`` takes from the entry log.

A deployment's database is read the way the release it ran reads it (SPEC §7).
Users name that release (``"0.58.0"``, ``"0.59.2"``, ``"0.61.2"``,
``"current"``, ``"blob"``); every layer (Python rebuild, fleet SQL, audit,
stores, CLI) works from the :class:`ReadPolicy` it resolves to, so the
mapping from release to behaviour lives here once.

Behaviours (``ReadPolicy.reads``):

- ``"full"`` (0.58.x): ``_harnessMessages``, ``messages`` and
  ``pendingSubagentResults`` rebuilt from all entries when the log is non-empty.
- ``"pending_all"`` (0.59.0-0.59.2): only ``pendingSubagentResults``, from all
  entries: any entry at all makes the log authoritative (``[]`` when nothing
  is pending).
- ``"pending_queue"`` (0.59.3 and later): only ``pendingSubagentResults``,
  from ``subagent_result`` and ``callback_started`` entries; none of those
  means the blob's value stands.
- ``"blob"`` (up to 0.57.x): nothing from the log.

Example:
    >>> resolve_policy("0.59.3").reads
    'pending_queue'
    >>> resolve_policy("0.58").release
    '0.58.0'
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Literal

from poncho_replay.errors import ReplayError

__all__ = [
    "NEWEST_RELEASE",
    "POLICIES",
    "Policy",
    "PolicyError",
    "ReadPolicy",
    "Reads",
    "resolve_policy",
]

Reads = Literal["full", "pending_all", "pending_queue", "blob"]
Policy = str
"""A policy as users write it: a harness version, ``"current"`` or ``"blob"``."""

NEWEST_RELEASE = "0.61.2"
"""The newest harness release modelled; ``"current"`` means this one."""

POLICIES: tuple[str, ...] = ("0.58", "0.59.0", "current", "blob")
"""One policy per behaviour (full cutover, pending from all entries, pending
from the queue, no cutover): what tests and overviews iterate over."""

QUEUE_TYPES: tuple[str, ...] = ("subagent_result", "callback_started")
"""The entry types 0.59.3+ reads (``readEntries(id, {types: QUEUE_TYPES})``)."""

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
_HINT = "use a release such as '0.58.0', '0.59.0', '0.59.3', '0.61.2', 'current' or 'blob'"


class PolicyError(ReplayError, ValueError):
    """A policy string that names no harness release the kit can model."""


@dataclass(frozen=True)
class ReadPolicy:
    """A resolved policy: what was asked, the release it stands for, and what reads take from the log."""

    asked: str
    release: str
    reads: Reads

    @property
    def reads_transcript(self) -> bool:
        """Whether ``_harnessMessages`` and ``messages`` come from the log (0.58.x)."""
        return self.reads == "full"

    @property
    def failure_warning(self) -> str:
        """The harness's read-failure warning, with ``{id}`` and ``{error}`` to fill (SPEC §3, §7)."""
        if self.reads == "full":
            return "[entries-read] {id} rebuild failed, using blob: {error}"
        return "[entries-read] {id} pendingSubagentResults rebuild failed, using blob: {error}"

    def describe(self) -> str:
        """One line for reports: the string asked for and the behaviour it maps to."""
        what = {
            "full": "transcript, LLM context and pending results from all entries",
            "pending_all": "pending results only, from all entries",
            "pending_queue": "pending results only, from subagent_result/callback_started entries",
            "blob": "nothing from the log (blob)",
        }[self.reads]
        release = self.release if self.release == self.asked else f"{self.release}, asked as {self.asked!r}"
        return f"policy {release}: {what}"

    def __str__(self) -> str:
        return self.asked


def resolve_policy(policy: str | ReadPolicy) -> ReadPolicy:
    """The behaviour of the release a policy string names.

    Raises:
        PolicyError: for strings that name no release (``"0.58.1"`` never
            shipped, ``"0.59"`` is ambiguous, pre-release tags, junk).
    """
    if isinstance(policy, ReadPolicy):
        return policy
    if not isinstance(policy, str):
        raise PolicyError(f"policy must be a string, not {type(policy).__name__}; {_HINT}")
    asked = policy
    name = policy.strip().lower()
    if name == "blob":
        return ReadPolicy(asked, "blob", "blob")
    if name == "current":
        return ReadPolicy(asked, NEWEST_RELEASE, "pending_queue")
    match = _VERSION.fullmatch(name)
    if match is None:
        if re.match(r"v?\d+\.\d+\.\d+[-+]", name):
            raise PolicyError(f"pre-release policy {asked!r} is not modelled; {_HINT}")
        raise PolicyError(f"unknown policy {asked!r}; {_HINT}")
    major, minor = int(match[1]), int(match[2])
    patch = int(match[3]) if match[3] is not None else None
    if (major, minor) == (0, 58) and patch == 1:
        raise PolicyError(
            "policy '0.58.1' never shipped: the pending-results-only read shipped as '0.59.0'"
        )
    if (major, minor) == (0, 59) and patch is None:
        raise PolicyError(
            "policy '0.59' is ambiguous: 0.59.0-0.59.2 read pending results from all entries, "
            "0.59.3+ from the queue; ask for '0.59.0' or '0.59.3'"
        )
    version = (major, minor, patch or 0)
    release = f"{major}.{minor}.{patch or 0}"
    if version < (0, 58, 0):
        return ReadPolicy(asked, release, "blob")
    if version < (0, 59, 0):
        return ReadPolicy(asked, release, "full")
    if version < (0, 59, 3):
        return ReadPolicy(asked, release, "pending_all")
    newest = tuple(int(p) for p in NEWEST_RELEASE.split("."))
    if version > newest and (major, minor) != newest[:2]:
        warnings.warn(
            f"policy {asked!r} is newer than the newest release modelled ({NEWEST_RELEASE}); "
            "served as 'current'",
            stacklevel=2,
        )
    return ReadPolicy(asked, release, "pending_queue")
