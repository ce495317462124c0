"""The harness's rebuild rules (SPEC §3), in pure Python, quirks included.

This module is the Python half of the kit's single source of truth: the SQL
in ``poncho_replay/sql/`` is held equal to it by property-based tests.

Every function accepts entries as models or plain harness dicts, in any
order (they are sorted by seq first, stably), and returns harness JSON
(dicts), so its output compares exactly with a blob. Plain dicts are not
validated: a malformed entry fails the way the harness's JavaScript fails
(for example a missing ``message`` on an ``assistant_message``), which is
what makes the read cutover's *partial rebuild* quirk reproducible.

Quirks reproduced (named in the README):
- an ``assistant_message`` whose content is a part list is displayed with
  content ``""``;
- amendments to unknown ids, and amendments without ``appendText``, add nothing;
- ``callback_started.consumedSeqs`` count wherever that entry sits in the log;
- the latest compaction (greatest seq) alone defines the LLM context, and
  its ``firstKeptSeq`` may point before it, after it or past every message;
- the read cutover assigns its three fields one at a time, so an error in a
  later one leaves the earlier ones rebuilt (a partial rebuild).
"""

from __future__ import annotations

import copy as _copy
import logging
import operator
import os
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from poncho_replay._js import to_number, to_string, truthy
from poncho_replay.models import (
    Conversation,
    DisplaySnapshot,
    HarnessModel,
    JsonDict,
    entry_to_dict,
)
from poncho_replay.policy import POLICIES, QUEUE_TYPES, Policy, ReadPolicy, resolve_policy

__all__ = [
    "FULL_TRANSCRIPT_TAIL",
    "MAX_SAFE_INTEGER",
    "POLICIES",
    "Policy",
    "RebuildState",
    "build_display_snapshot",
    "build_llm_context",
    "latest_compaction",
    "pending_subagent_results",
    "read_cutover_enabled",
    "rebuild_conversation",
    "served_entries",
    "sorted_entries",
    "state_at",
]

FULL_TRANSCRIPT_TAIL = 100_000
"""The tail the read cutover asks for: large enough to mean "everything"."""

MAX_SAFE_INTEGER = 2**53 - 1
"""JavaScript's Number.MAX_SAFE_INTEGER: the tail the parity check and replay use."""

log = logging.getLogger("poncho_replay.entries-read")

EntryLike = Mapping[str, Any] | HarnessModel


def sorted_entries(entries: Iterable[EntryLike]) -> list[JsonDict]:
    """Entries as harness dicts, stably sorted by seq (the order readEntries gives).

    Every rebuild function calls this on its input, so a read cutover sorts
    the log five times: a list comprehension, no ``isinstance`` against the
    model class for a plain dict (an ABC check, slow) and a C key keep that
    cheap (the list is already in order, so the sort itself is one pass).
    """
    ordered = [e if type(e) is dict else entry_to_dict(e) for e in entries]
    ordered.sort(key=_SEQ)
    return ordered


_SEQ = operator.itemgetter("seq")


def latest_compaction(entries: Iterable[EntryLike]) -> JsonDict | None:
    """The compaction entry with the greatest seq (the first of equals), or None."""
    latest: JsonDict | None = None
    for e in sorted_entries(entries):
        if e.get("type") == "compaction" and (latest is None or e["seq"] > latest["seq"]):
            latest = e
    return latest


def build_llm_context(entries: Iterable[EntryLike]) -> list[JsonDict]:
    """The model-visible context (``buildLlmContext``).

    With a compaction: the latest one's summary, then every harness message
    with seq >= its ``firstKeptSeq`` (before or after the compaction entry).
    Without: every harness message, in seq order.
    """
    ordered = sorted_entries(entries)
    compaction = latest_compaction(ordered)
    harness = [e for e in ordered if e.get("type") == "harness_message"]
    if compaction is None:
        return [e.get("message") for e in harness]
    if "firstKeptSeq" not in compaction:
        return [compaction.get("summaryMessage")]  # seq >= undefined is false in JavaScript
    first_kept = to_number(compaction["firstKeptSeq"])  # null -> 0, NaN keeps nothing
    kept = [e.get("message") for e in harness if e["seq"] >= first_kept]
    return [compaction.get("summaryMessage"), *kept]


def build_display_snapshot(entries: Iterable[EntryLike], tail_n: int) -> DisplaySnapshot:
    """The user-visible transcript tail (``buildDisplaySnapshot``).

    Visible user messages and assistant messages (content: the string
    content or ``""``, then the ``appendText`` of every amendment targeting
    the entry's id, in seq order). ``tail_n`` <= 0 returns no messages but
    still counts them all.
    """
    ordered = sorted_entries(entries)
    amendments: dict[Any, list[JsonDict]] = {}
    for e in ordered:
        if e.get("type") == "assistant_amendment":
            amendments.setdefault(e.get("targetEntryId"), []).append(e)

    built: list[tuple[int, JsonDict]] = []
    for e in ordered:
        kind = e.get("type")
        if kind == "user_message":
            if truthy(e.get("hidden")):
                continue
            built.append((e["seq"], e.get("message")))
        elif kind == "assistant_message":
            message = e.get("message")
            if message is None:
                missing = "null" if "message" in e else "undefined"
                raise TypeError(f"Cannot read properties of {missing} (reading 'content')")
            content = message.get("content")
            text = content if isinstance(content, str) else ""
            for a in sorted(amendments.get(e.get("id"), []), key=lambda a: a["seq"]):
                if truthy(a.get("appendText")):
                    text += to_string(a["appendText"])  # JavaScript's += coerces
            built.append((e["seq"], {**message, "content": text}))

    total = len(built)
    tail = built if tail_n >= total else built[total - tail_n :] if tail_n > 0 else []
    return DisplaySnapshot.model_construct(
        messages=[m for _, m in tail],
        total_messages=total,
        head_seq=tail[0][0] if tail else None,
        _fields_set={"messages", "total_messages", "head_seq"},
    )


def pending_subagent_results(entries: Iterable[EntryLike]) -> list[JsonDict]:
    """Results not consumed by any ``callback_started`` (``getPendingSubagentResults``).

    A seq listed in any callback's ``consumedSeqs`` is consumed, whether the
    callback entry comes before or after the result.
    """
    ordered = sorted_entries(entries)
    consumed: set[Any] = set()
    for e in ordered:
        if e.get("type") == "callback_started":
            seqs = e.get("consumedSeqs")
            if not isinstance(seqs, (list, str)):
                raise TypeError("e.consumedSeqs is not iterable")
            # Only numbers can equal a seq in a JavaScript Set (true !== 1, "3" !== 3).
            consumed.update(s for s in seqs if isinstance(s, (int, float)) and not isinstance(s, bool))
    return [e.get("result") for e in ordered if e.get("type") == "subagent_result" and e["seq"] not in consumed]


def read_cutover_enabled(setting: bool | None = None) -> bool:
    """Whether the read cutover applies: an explicit setting, else the environment.

    The harness's kill-switch is exactly ``PONCHO_READ_ENTRIES == "0"``.
    """
    if setting is not None:
        return setting
    return os.environ.get("PONCHO_READ_ENTRIES") != "0"


C = TypeVar("C", Conversation, dict)


def rebuild_conversation(
    conversation: C,
    entries: Iterable[EntryLike],
    *,
    policy: Policy | ReadPolicy = "0.58",
    cutover: bool | None = None,
    copy: bool = True,
) -> C:
    """The read cutover of a harness release, without mutating input (SPEC §3, §7).

    Args:
        conversation: the conversation as built from its stored row (model or dict).
        entries: its entry log.
        policy: the release whose reads to reproduce (see
            :func:`poncho_replay.policy.resolve_policy`): ``"0.58"`` rebuilds
            ``_harnessMessages``, ``messages`` and ``pendingSubagentResults``;
            ``"0.59.0"``-``"0.59.2"`` only the pending results, from all
            entries; ``"0.59.3"`` and later (``"current"``) only the pending
            results, from the queue entries; ``"blob"`` nothing.
        cutover: force the cutover on or off; ``None`` follows
            ``PONCHO_READ_ENTRIES`` like the harness.
        copy: ``True`` (the default): the result shares nothing with the
            input or the entries, so the caller may mutate it freely.
            ``False``, for a dict input only: a new top-level dict whose
            values are the input's and the entries' own objects (the
            rebuilt lists are new, their messages are not). For a caller
            that only replaces top-level keys and never mutates a nested
            value, such as the simulator's ``DictBackend``, this skips the
            copy that is most of a rebuild's cost.

    Returns:
        A new object of the input's kind. With no entries (no queue entries
        under 0.59.3+), the kill-switch, or ``policy="blob"``, it equals the
        input. On an error, the release's warning (``[entries-read] <id>
        rebuild failed, using blob: <error>``, since 0.59.0 ``[entries-read]
        <id> pendingSubagentResults rebuild failed, using blob: <error>``) is
        logged and the fields assigned before the error stay rebuilt, as in
        the harness.
    """
    read = resolve_policy(policy)
    as_model = isinstance(conversation, HarnessModel)
    data: JsonDict = dict(conversation.to_dict() if as_model else conversation)
    rebuilt: tuple[str, ...] = ()
    if read.reads != "blob" and read_cutover_enabled(cutover):
        rebuilt = _apply_cutover(data, entries, read)
    if copy or as_model:
        # Each rebuilt field is copied on its own and the rest of the blob in
        # one go, as the deep copies of the input and of each field did
        # before; the blob's replaced values are never copied at all.
        kept = _copy_json({k: v for k, v in data.items() if k not in rebuilt})
        data = {k: kept[k] if k in kept else _copy_json(v) for k, v in data.items()}
    if not as_model:
        return data
    try:
        return Conversation.model_validate(data)
    except ValueError as exc:  # a rebuilt field that is not a valid Message
        log.warning(read.failure_warning.format(id=data.get("conversationId"), error=exc))
        return conversation.model_copy(deep=True)


def served_entries(entries: Iterable[EntryLike], policy: Policy | ReadPolicy) -> list[JsonDict]:
    """The entries a release's read asks the store for (0.59.3+: the queue types only)."""
    ordered = sorted_entries(entries)
    if resolve_policy(policy).reads == "pending_queue":
        return [e for e in ordered if e.get("type") in QUEUE_TYPES]
    return ordered


def _apply_cutover(data: JsonDict, entries: Iterable[EntryLike], read: ReadPolicy) -> tuple[str, ...]:
    """Assign the rebuilt fields into ``data``, one at a time; the keys assigned, in order.

    The values are the rebuild functions' own lists (sharing the entries'
    messages): :func:`rebuild_conversation` copies them when asked to.
    """
    assigned: list[str] = []
    try:
        ordered = served_entries(entries, read)
        if not ordered:
            return ()  # blob fallback: pre-dual-write conversation, or no queue entries
        if read.reads_transcript:
            data["_harnessMessages"] = build_llm_context(ordered)
            assigned.append("_harnessMessages")
            data["messages"] = build_display_snapshot(ordered, FULL_TRANSCRIPT_TAIL).messages
            assigned.append("messages")
        data["pendingSubagentResults"] = pending_subagent_results(ordered)
        assigned.append("pendingSubagentResults")
    except Exception as exc:  # noqa: BLE001 - the harness's read path never raises
        log.warning(read.failure_warning.format(id=data.get("conversationId"), error=exc))
    return tuple(assigned)


def _copy_json(value: Any) -> Any:
    """A deep copy of harness JSON, about 3x faster than :func:`copy.deepcopy`.

    A pickle round trip copies plain dicts, lists, strings (lone surrogates
    included) and numbers exactly as ``deepcopy`` does, shared references
    within ``value`` included, in C; anything pickle refuses falls back to
    ``deepcopy``.
    """
    try:
        return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001 - whatever pickle refuses, deepcopy copies or reports
        return _copy.deepcopy(value)


@dataclass(frozen=True)
class RebuildState:
    """What the log says at one seq: the three rebuilds and the latest compaction."""

    seq: int
    llm_context: list[JsonDict]
    display: DisplaySnapshot
    pending_subagent_results: list[JsonDict]
    latest_compaction: JsonDict | None
    entries: list[JsonDict] = field(repr=False)

    @property
    def messages(self) -> list[JsonDict]:
        """The display transcript (all of it)."""
        return self.display.messages


def state_at(entries: Iterable[EntryLike], seq: int) -> RebuildState:
    """The rebuilds using only entries with seq <= ``seq`` (replay one step)."""
    upto = [e for e in sorted_entries(entries) if e["seq"] <= seq]
    return RebuildState(
        seq=seq,
        llm_context=build_llm_context(upto),
        display=build_display_snapshot(upto, MAX_SAFE_INTEGER),
        pending_subagent_results=pending_subagent_results(upto),
        latest_compaction=latest_compaction(upto),
        entries=upto,
    )
