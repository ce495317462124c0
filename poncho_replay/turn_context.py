"""The LLM context the harness sends at a turn's start, under a release's reads.

A model request belongs to a *turn*: the harness reads the conversation
(``get()``, under its release's policy), compacts if needed, appends the
turn's user input and calls the model. So "the request at seq s" is the
request of the turn s belongs to (its ``turnId``, else the latest user turn
started at or before s), at that turn's start:

- a policy that reads the transcript from the log (0.58): the LLM context
  the log rebuilds (SPEC §3) from the entries up to the turn's start
  (its user messages and any compaction logged right after them), then the
  turn's user messages;
- a policy that reads the blob (``"blob"``, 0.59.x, current): the blob's
  ``_harnessMessages`` as stored today, cut just after the turn's user
  message. Where the turn sits in the blob only the log can say (the turn's
  logged harness messages, or its user message's text); the result says
  which (``dated_by``), and a turn the blob no longer holds (compacted away)
  raises :class:`ContextUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from poncho_replay._js import truthy
from poncho_replay.errors import ReplayError
from poncho_replay.models import JsonDict, message_text
from poncho_replay.policy import Policy, resolve_policy
from poncho_replay.rebuild import EntryLike, build_llm_context, sorted_entries

__all__ = ["ContextUnavailable", "Turn", "TurnContext", "turn_context", "turns"]


class ContextUnavailable(ReplayError):
    """The source a policy reads no longer holds the turn's context (e.g. the blob compacted it away)."""


@dataclass(frozen=True)
class Turn:
    """A user turn as the log records it: its id, its user_message entries, whether hidden (a callback)."""

    turn_id: Any
    seq: int
    user_entries: list[JsonDict] = field(repr=False)
    hidden: bool


@dataclass(frozen=True)
class TurnContext:
    """The harness messages sent at a turn's start, and where they came from."""

    conversation_id: Any
    seq: int | None
    turn: Turn | None
    policy: str
    reads: str
    context: list[JsonDict]
    reply: list[JsonDict]
    dated_by: str | None
    notes: list[str]


def turns(entries: Iterable[EntryLike], *, hidden: bool = False) -> list[Turn]:
    """The log's user turns in seq order (callback turns, all-hidden, only with ``hidden=True``)."""
    grouped: dict[Any, list[JsonDict]] = {}
    for entry in sorted_entries(entries):
        if entry.get("type") == "user_message":
            grouped.setdefault(entry.get("turnId"), []).append(entry)
    found = [
        Turn(tid, group[0]["seq"], group, all(truthy(e.get("hidden")) for e in group)) for tid, group in grouped.items()
    ]
    return sorted((t for t in found if hidden or not t.hidden), key=lambda t: t.seq)


def turn_of(entries: list[JsonDict], seq: int) -> Turn | None:
    """The turn a seq belongs to: its entry's ``turnId``, else the latest turn started at or before it."""
    every = turns(entries, hidden=True)
    by_id = {t.turn_id: t for t in every}
    at = next((e for e in entries if e["seq"] == seq), None)
    if at is not None and at.get("turnId") in by_id and by_id[at.get("turnId")].seq <= seq:
        return by_id[at["turnId"]]
    started = [t for t in every if t.seq <= seq]
    return started[-1] if started else None


def _start_seq(entries: list[JsonDict], turn: Turn) -> int:
    """The last seq of the turn's opening run: its user messages and compactions, before any output."""
    last = turn.seq
    for entry in entries:
        if entry["seq"] <= turn.seq:
            continue
        if entry.get("type") == "compaction" or (
            entry.get("type") == "user_message" and entry.get("turnId") == turn.turn_id
        ):
            last = entry["seq"]
        else:
            break
    return last


def _log_reply(entries: list[JsonDict], turn: Turn) -> list[JsonDict]:
    """The turn's logged output: its harness messages after the user input (fallback: its bubble)."""
    own = [e.get("message") for e in entries if e.get("type") == "harness_message" and e.get("turnId") == turn.turn_id]
    while own and isinstance(own[0], Mapping) and own[0].get("role") == "user":
        own = own[1:]
    if own:
        return own
    return [e.get("message") for e in entries if e.get("type") == "assistant_message" and e.get("turnId") == turn.turn_id]


def _blob_history(blob: Mapping[str, Any]) -> tuple[list[JsonDict], str | None]:
    history = blob.get("_harnessMessages")
    if isinstance(history, list):
        return history, None
    # A conversation with no _harnessMessages runs its next turn on its display messages.
    return list(blob.get("messages") or []), "the blob has no _harnessMessages: its display messages stand in"


def _blob_index(history: list[JsonDict], entries: list[JsonDict], turn: Turn, after: int) -> tuple[int | None, str | None]:
    """Where the turn's (last) user message sits in the blob's history, dated from the log."""
    logged = [
        e.get("message")
        for e in entries
        if e.get("type") == "harness_message" and e.get("turnId") == turn.turn_id and (e.get("message") or {}).get("role") == "user"
    ]
    candidates = [(m, "the turn's logged harness message") for m in logged[:1]]
    candidates += [(e.get("message"), "the turn's user_message entry") for e in turn.user_entries[-1:]]
    for message, how in candidates:
        for i in range(after + 1, len(history)):
            if history[i] == message:
                return i, f"{how}, found in the blob's history at index {i}"
    text = message_text(turn.user_entries[-1].get("message") or {})
    for i in range(after + 1, len(history)):
        if isinstance(history[i], Mapping) and history[i].get("role") == "user" and message_text(history[i]) == text:
            return i, f"the text of the turn's user message, found in the blob's history at index {i}"
    return None, None


def turn_context(
    blob: Mapping[str, Any],
    entries: Iterable[EntryLike],
    seq: int,
    policy: Policy = "0.58",
) -> TurnContext:
    """The context sent at the start of the turn ``seq`` belongs to, under ``policy``.

    Raises:
        ContextUnavailable: no user turn starts at or before ``seq``, or the
            blob a blob-reading policy serves no longer holds that turn.
    """
    read = resolve_policy(policy)
    ordered = sorted_entries(entries)
    cid = blob.get("conversationId")
    turn = turn_of(ordered, seq)
    if turn is None:
        raise ContextUnavailable(f"conversation {cid}: no user turn starts at or before seq {seq}")
    if read.reads_transcript and ordered:
        start = _start_seq(ordered, turn)
        context = build_llm_context([e for e in ordered if e["seq"] <= start])
        context = [*context, *(e.get("message") for e in turn.user_entries if e["seq"] <= start)]
        return TurnContext(cid, seq, turn, read.asked, "log", context, _log_reply(ordered, turn), None, [])
    history, note = _blob_history(blob)
    after = -1
    for earlier in turns(ordered, hidden=True):  # date turns in order, each after the previous one
        index, how = _blob_index(history, ordered, earlier, after)
        if earlier.turn_id == turn.turn_id:
            if index is None:
                raise ContextUnavailable(
                    f"conversation {cid}: the blob no longer holds turn {turn.turn_id!r} (seq {turn.seq}): "
                    "compacted away or never written; the log's rebuild (policy '0.58') still has it"
                )
            reply = _blob_reply(history, index)
            notes = [note] if note else []
            return TurnContext(cid, seq, turn, read.asked, "blob", history[: index + 1], reply, how, notes)
        after = index if index is not None else after
    raise ContextUnavailable(f"conversation {cid}: turn of seq {seq} not found")  # unreachable: turn_of found it


def _blob_reply(history: list[JsonDict], index: int) -> list[JsonDict]:
    """The messages after the turn's input, up to the next user message: the model's output."""
    reply = []
    for message in history[index + 1 :]:
        if isinstance(message, Mapping) and message.get("role") == "user":
            break
        reply.append(message)
    return reply


def blob_turns(blob: Mapping[str, Any]) -> list[tuple[int, list[JsonDict], list[JsonDict]]]:
    """A blob-only conversation's turns: (index, context up to each user message, reply).

    Used when the log has no user turns (history before the dual-write, or
    written by 0.59.3+): the blob's user messages are the turn starts
    (compaction summaries and injected subagent results excluded).
    """
    history, _ = _blob_history(blob)
    out = []
    for i, message in enumerate(history):
        meta = message.get("metadata") if isinstance(message, Mapping) else None
        meta = meta if isinstance(meta, Mapping) else {}
        if (
            isinstance(message, Mapping)
            and message.get("role") == "user"
            and not meta.get("isCompactionSummary")
            and not meta.get("_subagentCallback")
        ):
            out.append((i, history[: i + 1], _blob_reply(history, i)))
    return out
