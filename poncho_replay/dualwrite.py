"""The harness's dual-write helpers (SPEC §5): entry builders, the finalize
diff, and the parity check with its exact log line.

The builders return *new entries without an id*, as the harness's do;
:func:`stamp_ids` adds the ids the way ``appendEntriesSafe`` does
(``{id: randomUUID(), ...entry}``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from poncho_replay._js import collapse_ws, json_quote, utf16_slice
from poncho_replay.models import HarnessModel, JsonDict, message_text
from poncho_replay.rebuild import (
    MAX_SAFE_INTEGER,
    EntryLike,
    build_display_snapshot,
    build_llm_context,
    sorted_entries,
)

__all__ = [
    "ParityResult",
    "assistant_amendment_entry",
    "assistant_message_entry",
    "callback_started_entry",
    "compaction_entry",
    "guess_first_kept_seq",
    "harness_message_entries",
    "new_harness_messages_this_turn",
    "parity_check",
    "project_text",
    "stamp_ids",
    "subagent_result_entry",
    "user_message_entry",
]

MessageLike = JsonDict | HarnessModel
PARITY_TAIL = 5
"""How many trailing messages the harness's parity check compares."""
QUOTE_LIMIT = 120
"""UTF-16 code units kept of each JSON-quoted projection in a mismatch line."""


def _msg(message: MessageLike) -> JsonDict:
    return message.to_dict() if isinstance(message, HarnessModel) else message


# --- entry builders (userMessageEntry, ... in entries-dual-write.ts) ----------


def user_message_entry(message: MessageLike, turn_id: str, *, hidden: bool = False) -> JsonDict:
    """A ``user_message``; ``hidden`` is written only when true."""
    entry: JsonDict = {"type": "user_message", "message": _msg(message), "turnId": turn_id}
    if hidden:
        entry["hidden"] = True
    return entry


def assistant_message_entry(message: MessageLike, turn_id: str, run_id: str) -> JsonDict:
    """The final assistant bubble of a turn."""
    return {"type": "assistant_message", "message": _msg(message), "turnId": turn_id, "runId": run_id}


def harness_message_entries(messages: Iterable[MessageLike], turn_id: str) -> list[JsonDict]:
    """One ``harness_message`` per model-visible message."""
    return [{"type": "harness_message", "message": _msg(m), "turnId": turn_id} for m in messages]


def compaction_entry(
    summary_message: MessageLike,
    first_kept_seq: int,
    *,
    tokens_before: float | None = None,
    tokens_after: float | None = None,
) -> JsonDict:
    """A compaction overlay; token counts are written only when given."""
    entry: JsonDict = {"type": "compaction", "summaryMessage": _msg(summary_message), "firstKeptSeq": first_kept_seq}
    if tokens_before is not None:
        entry["tokensBefore"] = tokens_before
    if tokens_after is not None:
        entry["tokensAfter"] = tokens_after
    return entry


def subagent_result_entry(result: JsonDict | HarnessModel) -> JsonDict:
    """A subagent's result delivered to the parent's log."""
    return {"type": "subagent_result", "result": _msg(result)}


def callback_started_entry(consumed_seqs: Sequence[int]) -> JsonDict:
    """Marks the ``subagent_result`` seqs a callback turn consumed."""
    return {"type": "callback_started", "consumedSeqs": list(consumed_seqs)}


def assistant_amendment_entry(target_entry_id: str, append_text: str) -> JsonDict:
    """Text merged into an earlier bubble; an empty ``append_text`` is not written."""
    entry: JsonDict = {"type": "assistant_amendment", "targetEntryId": target_entry_id}
    if append_text:
        entry["appendText"] = append_text
    return entry


def stamp_ids(entries: Iterable[JsonDict], new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> list[JsonDict]:
    """Give each new entry an id first, as ``appendEntriesSafe`` does (an existing id wins)."""
    return [{"id": new_id(), **e} for e in entries]


# --- best-effort derivations ----------------------------------------------------


def new_harness_messages_this_turn(
    prev: Sequence[MessageLike] | None, next: Sequence[MessageLike] | None
) -> tuple[list[JsonDict], bool]:
    """The messages a turn added to ``_harnessMessages``, by length difference.

    Returns ``(messages, approximate)``. When the array shrank (a compaction
    this turn), there is no clean suffix: the whole new array is returned
    and ``approximate`` is True, as in the harness.
    """
    prev_arr = [_msg(m) for m in prev or []]
    next_arr = [_msg(m) for m in next or []]
    if not next_arr:
        return [], False
    if not prev_arr:
        return next_arr, False
    if len(next_arr) >= len(prev_arr):
        return next_arr[len(prev_arr) :], False
    return next_arr, True


def guess_first_kept_seq(harness_seqs: Sequence[int], compacted_count: int) -> int:
    """The orchestrator's guessed ``firstKeptSeq`` for a compaction.

    ``compacted_count`` is the length of the compacted array
    (``[summary, ...kept]``); ``harness_seqs`` are the seqs of the
    ``harness_message`` entries already in the log. Points at the
    kept-th-from-last one, or one past the last when there are too few.
    """
    kept = max(0, compacted_count - 1)
    if len(harness_seqs) >= kept > 0:
        return harness_seqs[len(harness_seqs) - kept]
    return (harness_seqs[-1] if harness_seqs else 0) + 1


# --- the parity check (verifyEntriesParity) --------------------------------------


class ParityResult(NamedTuple):
    """The harness parity check's findings and the line it would log."""

    mismatches: list[str]
    log_line: str

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.log_line.endswith(" OK")


def project_text(message: MessageLike) -> str:
    """``"<role>:<text, whitespace runs collapsed, trimmed>"`` with JavaScript's ``\\s``."""
    m = _msg(message)
    if m is None:
        raise TypeError("Cannot read properties of undefined (reading 'role')")
    return f"{m.get('role', 'undefined')}:{collapse_ws(message_text(m))}"


def _tail_mismatches(label: str, entries_side: list[JsonDict], blob_side: list[JsonDict]) -> list[str]:
    ep_all = [project_text(m) for m in entries_side]
    bp_all = [project_text(m) for m in blob_side]
    out = []
    for i in range(1, min(len(ep_all), len(bp_all), PARITY_TAIL) + 1):
        ep, bp = ep_all[-i], bp_all[-i]
        if ep != bp:
            out.append(
                f"{label} tail[-{i}] differs: entries={utf16_slice(json_quote(ep), 0, QUOTE_LIMIT)} "
                f"blob={utf16_slice(json_quote(bp), 0, QUOTE_LIMIT)}"
            )
    return out


def parity_check(
    entries: Iterable[EntryLike],
    harness_messages: Sequence[MessageLike] | None = None,
    display_messages: Sequence[MessageLike] | None = None,
    *,
    conversation_id: str = "",
) -> ParityResult:
    """The harness's ``verifyEntriesParity``: mismatch strings and its log line.

    A side is compared only when its blob array is given (an empty list is
    compared: ``[]`` is truthy in JavaScript). Lengths first, then the last
    ``min(5, n, m)`` messages by role:text projection. Like the harness it
    never raises: an error gives ``[entries-parity] <id> checker threw
    (ignored): <error>`` and no mismatches.
    """
    try:
        ordered = sorted_entries(entries)
        mismatches: list[str] = []
        if harness_messages is not None:
            blob = [_msg(m) for m in harness_messages]
            llm = build_llm_context(ordered)
            if len(llm) != len(blob):
                mismatches.append(f"llmContext length {len(llm)} (entries) vs {len(blob)} (blob)")
            mismatches += _tail_mismatches("llmContext", llm, blob)
        if display_messages is not None:
            blob = [_msg(m) for m in display_messages]
            snap = build_display_snapshot(ordered, MAX_SAFE_INTEGER)
            if snap.total_messages != len(blob):
                mismatches.append(f"display length {snap.total_messages} (entries) vs {len(blob)} (blob)")
            mismatches += _tail_mismatches("display", snap.messages, blob)
    except Exception as exc:  # noqa: BLE001 - the harness's checker never raises
        return ParityResult([], f"[entries-parity] {conversation_id} checker threw (ignored): {exc}")
    if mismatches:
        line = f"[entries-parity] {conversation_id} MISMATCH ({len(mismatches)}): {' | '.join(mismatches)}"
    else:
        line = f"[entries-parity] {conversation_id} OK"
    return ParityResult(mismatches, line)


