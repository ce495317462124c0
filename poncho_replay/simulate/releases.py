"""What each harness release writes and reads, as the simulator needs it (SPEC §5, §7).

A :class:`HarnessRelease` answers the simulator's questions about one
release: does it dual-write the transcript (0.57.0 up to 0.59.2), is the log
only a subagent-result queue (0.59.3 on), how does ``rename`` write, and
what does its ``get()`` take from the log (the :class:`ReadPolicy` of
:mod:`poncho_replay.policy`, the one owner of the release -> read mapping).

The 0.59.3+ callback prompt lives here too, beside the 0.58 one in
:mod:`~poncho_replay.simulate.harness`, because its text is release-specific.

Example:
    >>> r = harness_release("0.61.2")
    >>> (r.dual_write, r.queue_only, r.rename)
    (False, True, 'title_column_and_blob')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from poncho_replay._js import _JS_TRIM, to_string
from poncho_replay.models import JsonDict
from poncho_replay.policy import ReadPolicy, resolve_policy

RenameWrite = Literal["get_update", "title_column", "title_column_and_blob"]
"""How ``store.rename`` writes: get -> update (up to 0.59.0), the ``title``
column alone (0.59.1-0.59.2), the column and the blob's title in one UPDATE
(0.59.3 on)."""

DUAL_WRITE_FROM = (0, 57, 0)
QUEUE_ONLY_FROM = (0, 59, 3)
TITLE_COLUMN_RENAME_FROM = (0, 59, 1)

TASK_OUTCOMES = {"completed": "succeeded", "error": "failed", "stopped": "failed"}
"""The ``taskOutcome`` a simulated 0.59.3+ subagent reports for its status
(the simulator's choice; upstream parses the subagent's own verdict)."""


@dataclass(frozen=True)
class HarnessRelease:
    """One harness release's write and read behaviour.

    Attributes:
        read: what its ``get()`` takes from the entry log.
        version: ``(major, minor, patch)``.
    """

    read: ReadPolicy
    version: tuple[int, int, int]

    @property
    def name(self) -> str:
        """The release as ``X.Y.Z``."""
        return self.read.release

    @property
    def dual_write(self) -> bool:
        """Whether turns, compactions and callbacks append transcript entries (0.57.0-0.59.2)."""
        return DUAL_WRITE_FROM <= self.version < QUEUE_ONLY_FROM

    @property
    def queue_only(self) -> bool:
        """Whether the log is only the subagent-result queue (0.59.3 on, SPEC §7)."""
        return self.version >= QUEUE_ONLY_FROM

    @property
    def rename(self) -> RenameWrite:
        """How ``rename`` writes in this release."""
        if self.version < TITLE_COLUMN_RENAME_FROM:
            return "get_update"
        return "title_column_and_blob" if self.queue_only else "title_column"

    def reads_log(self, writeback: bool) -> bool:
        """Whether a ``get()`` of this release takes anything from the log.

        0.58.x's full cutover is the simulator's ``writeback`` switch (off by
        default, so a plain 0.58 simulation keeps the blob it wrote); from
        0.59.0 on, the pending-results read is always on, as it was in the field.
        """
        if self.read.reads == "full":
            return writeback
        return self.read.reads != "blob"


def harness_release(release: str | HarnessRelease) -> HarnessRelease:
    """The release a string names: any harness version :func:`resolve_policy` accepts, or ``"current"``.

    Raises:
        poncho_replay.policy.PolicyError: for strings that name no release.
        ValueError: for ``"blob"``, a read policy rather than a release.
    """
    if isinstance(release, HarnessRelease):
        return release
    read = resolve_policy(release)
    if read.release == "blob":
        raise ValueError(
            "'blob' is a read policy, not a harness release: simulate e.g. '0.56.0' for a harness "
            "before the entry log"
        )
    major, minor, patch = (int(p) for p in read.release.split("."))
    return HarnessRelease(read, (major, minor, patch))


def queue_injected_message(pr: JsonDict) -> JsonDict:
    """The ``[Subagent Result]`` prompt a 0.59.3+ callback turn pushes for one result (SPEC §7).

    An empty (after JavaScript's ``trim``) response becomes upstream's pointer
    to ``read_subagent``; a missing ``taskOutcome`` prints ``undefined`` and
    is absent from the metadata, as ``JSON.stringify`` drops ``undefined``.
    """
    res = pr.get("result")
    if res:
        response = _JS_TRIM.sub("", res.get("response") or "")
        line = response or (
            f"(subagent produced no final summary after {_template(res.get('steps') or 0)} step(s); "
            "its work may be incomplete. Call read_subagent with subagent_id "
            f"\"{_template(pr.get('subagentId'))}\" and mode \"assistant\" to retrieve what it did.)"
        )
        body = (
            f"Status: {_template(res.get('status'))}\nResponse: {line}\n"
            f"Steps: {_template(res.get('steps'))}, Duration: {_template(res.get('duration'))}ms"
        )
    elif pr.get("error"):
        body = f"Error: {_template(pr['error'].get('message'))}"
    else:
        body = "(no result)"
    outcome = pr.get("taskOutcome")
    meta: JsonDict = {"_subagentCallback": True, "subagentId": pr.get("subagentId"), "task": pr.get("task")}
    if outcome is not None:
        meta["taskOutcome"] = outcome
    meta["timestamp"] = pr.get("timestamp")
    return {
        "role": "user",
        "content": (
            f"[Subagent Result] Subagent \"{_template(pr.get('task'))}\" ({_template(pr.get('subagentId'))}) "
            f"{_template(outcome)}:\n\n{body}"
        ),
        "metadata": meta,
    }


def _template(value: Any) -> str:
    """``${value}`` in a JavaScript template literal (a missing value prints ``undefined``)."""
    return "undefined" if value is None else to_string(value)
