"""Requests for one conversation: at a seq, for every turn, and counterfactual pairs.

Glue between :mod:`poncho_replay.turn_context` (which harness messages a
turn sends, under a release's reads) and :mod:`poncho_replay.requests`
(how those become a provider request). Every request carries metadata
saying what the harness did not store: the system prompt (a parameter here)
and where the context came from (``context_source``, ``dated_by``).

Example:
    >>> req = llm_request(blob, entries, 12, format="anthropic", policy="0.58")  # doctest: +SKIP
    >>> req.request["messages"][-1]                                              # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from poncho_replay._js import json_dumps
from poncho_replay.errors import ReplayError
from poncho_replay.policy import Policy
from poncho_replay.rebuild import EntryLike, sorted_entries
from poncho_replay.requests import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_MODEL,
    Format,
    to_anthropic,
    to_model_messages,
    to_openai,
)
from poncho_replay.turn_context import (
    ContextUnavailable,
    TurnContext,
    blob_turns,
    turn_context,
    turns,
)

__all__ = ["LlmRequest", "RequestPair", "build_request", "conversation_requests", "llm_request", "llm_request_pair"]

NO_SYSTEM_PROMPT = "not stored by the harness and none given: the request has no system prompt"


@dataclass(frozen=True)
class LlmRequest:
    """A provider request and what it rests on.

    Attributes:
        format: ``"anthropic"`` or ``"openai"``.
        request: the request dict (the SDK's ``create(**request)`` arguments).
        metadata: conversation, seq, turn, policy, ``context_source`` (log or
            blob), ``dated_by`` (how a blob context was placed in time),
            ``system_prompt`` (given, or its absence stated) and ``notes``
            (messages dropped by SPEC §8, files not in the database).
    """

    format: str
    request: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The request as JSON text (lone surrogates escaped as ``JSON.stringify`` does)."""
        return json_dumps(self.request)


@dataclass(frozen=True)
class RequestPair:
    """The requests two reads give at one turn, and the first message index where they differ (None: same)."""

    a: LlmRequest
    b: LlmRequest
    first_difference: int | None

    @property
    def same(self) -> bool:
        """Whether both reads send the same messages."""
        return self.first_difference is None


def build_request(
    context: Iterable[Mapping[str, Any]], format: Format, system: str | None = None, model: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(request, notes) for stored harness messages in a provider's format."""
    messages = to_model_messages(context)
    if format == "anthropic":
        return to_anthropic(messages, system, model=model or DEFAULT_ANTHROPIC_MODEL), messages.notes
    if format == "openai":
        return to_openai(messages, system, model=model or DEFAULT_OPENAI_MODEL), messages.notes
    raise ReplayError(f"unknown request format {format!r}: use 'anthropic' or 'openai'")


def _metadata(tc: TurnContext, system: str | None, notes: list[str]) -> dict[str, Any]:
    return {
        "conversation_id": tc.conversation_id,
        "seq": tc.seq,
        "turn_id": tc.turn.turn_id if tc.turn else None,
        "turn_seq": tc.turn.seq if tc.turn else None,
        "policy": tc.policy,
        "context_source": tc.reads,
        "dated_by": tc.dated_by,
        "context_messages": len(tc.context),
        "system_prompt": "given" if system is not None else NO_SYSTEM_PROMPT,
        "notes": [*tc.notes, *notes],
    }


def llm_request(
    blob: Mapping[str, Any],
    entries: Iterable[EntryLike],
    seq: int,
    *,
    format: Format = "anthropic",
    policy: Policy = "0.58",
    system: str | None = None,
    model: str | None = None,
) -> LlmRequest:
    """The request the harness sends at the start of the turn ``seq`` belongs to (see :mod:`turn_context`)."""
    tc = turn_context(blob, entries, seq, policy)
    request, notes = build_request(tc.context, format, system, model)
    return LlmRequest(format, request, _metadata(tc, system, notes))


def llm_request_pair(
    blob: Mapping[str, Any],
    entries: Iterable[EntryLike],
    seq: int,
    *,
    a: Policy = "0.58",
    b: Policy = "blob",
    format: Format = "anthropic",
    system: str | None = None,
    model: str | None = None,
) -> RequestPair:
    """What two reads would have sent at one turn: "did the unfaithful rebuild change the request?"."""
    ordered = sorted_entries(entries)
    first = llm_request(blob, ordered, seq, format=format, policy=a, system=system, model=model)
    second = llm_request(blob, ordered, seq, format=format, policy=b, system=system, model=model)
    ma, mb = first.request["messages"], second.request["messages"]
    diff = next((i for i, (x, y) in enumerate(zip(ma, mb)) if x != y), None)
    if diff is None and len(ma) != len(mb):
        diff = min(len(ma), len(mb))
    return RequestPair(first, second, diff)


def conversation_requests(
    blob: Mapping[str, Any],
    entries: Iterable[EntryLike],
    *,
    policy: Policy = "0.58",
    hidden: bool = False,
) -> list[tuple[TurnContext | None, str | None]]:
    """Every user turn's context (``hidden=True`` adds callback turns), or why it is unavailable.

    Returns (context, None) or (None, reason) per turn. A conversation whose
    log has no user turns yields the blob's own turns (seq None,
    ``context_source`` ``"blob"``, ``dated_by`` None: the log cannot date them).
    """
    ordered = sorted_entries(entries)
    out: list[tuple[TurnContext | None, str | None]] = []
    logged = turns(ordered, hidden=hidden)
    for turn in logged:
        try:
            out.append((turn_context(blob, ordered, turn.seq, policy), None))
        except ContextUnavailable as exc:
            out.append((None, str(exc)))
    if not turns(ordered, hidden=True):
        for _index, context, reply in blob_turns(blob):
            note = "the log has no user turns: turn found in the blob alone, not dated"
            out.append((TurnContext(blob.get("conversationId"), None, None, str(policy), "blob", context, reply, None, [note]), None))
    return out
