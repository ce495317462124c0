"""How conversations and entries become stored records, and back (SPEC §4).

One place for the harness's column rules, so the in-memory reference and
the DuckDB engine cannot drift apart: which fields leave the ``data`` blob
for their own columns, which values count as present (JavaScript
truthiness, so ``{}`` and ``[]`` are stored), how a summary and a status
snapshot are read from columns alone, and how an entry batch is validated
and stamped with seq and createdAt.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pydantic_core
from pydantic import TypeAdapter

from poncho_replay._js import truthy
from poncho_replay.errors import BadEntryError
from poncho_replay.models import (
    ConversationSummary,
    Entry,
    HarnessModel,
    JsonDict,
    StatusSnapshot,
    parse_entry,
    parse_new_entry,
)
from poncho_replay.store.base import DEFAULT_TENANT

HEAVY_FIELDS = ("_toolResultArchive", "_harnessMessages", "_continuationMessages")
"""Conversation fields the harness keeps out of ``data`` (migration 3 on)."""
INIT_FIELDS = (
    "parentConversationId",
    "parentMessageId",
    "threadMeta",
    "subagentMeta",
    "channelMeta",
)
"""``create(init=...)`` keys copied onto a new conversation when given."""
RUN_STATUSES = ("running", "idle")


def normalize_tenant(tenant_id: str | None) -> str:
    """A null tenant is stored as ``"__default__"``."""
    return DEFAULT_TENANT if tenant_id is None else tenant_id


def shown_tenant(stored: str | None) -> str | None:
    """The stored tenant as readers see it: ``"__default__"`` becomes null."""
    return None if stored == DEFAULT_TENANT else stored


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_STORED_ENTRY: TypeAdapter[Entry] = TypeAdapter(Entry)


def to_json(value: Any) -> str:
    """Compact JSON like ``JSON.stringify``: keys in order, non-ASCII kept as is.

    pydantic-core's encoder is several times faster than ``json`` (it is on
    every append's hot path); like ``JSON.stringify`` with a ``Date``, it
    writes the few Python values JSON has no form for (datetimes, UUIDs,
    ...) as strings. Text it cannot encode as UTF-8, a lone surrogate (SPEC
    §9), goes through ``json``, which keeps it; ``json`` also names what
    neither can write.
    """
    try:
        return pydantic_core.to_json(value).decode()
    except pydantic_core.PydanticSerializationError:
        return _ENCODER.encode(value)


@dataclass
class ConversationRow:
    """One ``conversations`` row with JSON columns decoded and times in epoch ms."""

    id: str
    agent_id: str
    tenant_id: str
    owner_id: str
    title: str
    data: JsonDict
    message_count: int
    created_at: int | None
    updated_at: int
    tool_result_archive: Any = None
    harness_messages: Any = None
    continuation_messages: Any = None
    parent_conversation_id: str | None = None
    has_pending_approvals: int = 0
    channel_meta: Any = None
    parent_message_id: str | None = None


def new_conversation(
    conversation_id: str,
    owner_id: str,
    title: str,
    tenant_id: str | None,
    init: JsonDict | None,
    now: int,
) -> JsonDict:
    """The object ``create`` stores and returns (title already normalised)."""
    init = init or {}
    conv: JsonDict = {
        "conversationId": conversation_id,
        "title": title,
        "messages": copy.deepcopy(init.get("messages") or []),
        "ownerId": owner_id,
        "tenantId": tenant_id,
        "createdAt": now,
        "updatedAt": now,
    }
    conv.update({k: copy.deepcopy(init[k]) for k in INIT_FIELDS if init.get(k) is not None})
    return conv


def conversation_to_row(conv: JsonDict, agent_id: str) -> ConversationRow:
    """The columns ``update`` writes for a conversation object.

    Heavy fields move to their own columns and are null when falsy in
    JavaScript terms; ``message_count`` and ``has_pending_approvals`` are
    derived from the object. The caller applies the archive-keeping rule.
    """
    stripped = {k: v for k, v in conv.items() if k not in HEAVY_FIELDS}
    heavy = {k: copy.deepcopy(conv[k]) if truthy(conv.get(k)) else None for k in HEAVY_FIELDS}
    return ConversationRow(
        id=conv["conversationId"],
        agent_id=agent_id,
        tenant_id=normalize_tenant(conv.get("tenantId")),
        owner_id=conv["ownerId"],
        title=conv["title"],
        data=copy.deepcopy(stripped),
        message_count=len(conv.get("messages") or []),
        created_at=conv["createdAt"],
        updated_at=conv["updatedAt"],
        tool_result_archive=heavy["_toolResultArchive"],
        harness_messages=heavy["_harnessMessages"],
        continuation_messages=heavy["_continuationMessages"],
        parent_conversation_id=conv.get("parentConversationId"),
        has_pending_approvals=1 if conv.get("pendingApprovals") else 0,
        channel_meta=copy.deepcopy(conv["channelMeta"])
        if truthy(conv.get("channelMeta"))
        else None,
        parent_message_id=conv.get("parentMessageId"),
    )


def row_to_conversation(row: ConversationRow, *, with_archive: bool) -> JsonDict:
    """A fresh conversation object from a row: ``data`` plus the heavy columns.

    A column overrides ``data`` only when set, so rows from before migration
    3 (heavy fields still inside ``data``) read the same way they do upstream.
    """
    conv = copy.deepcopy(row.data)
    columns = {
        "_harnessMessages": row.harness_messages,
        "_continuationMessages": row.continuation_messages,
    }
    if with_archive:
        columns["_toolResultArchive"] = row.tool_result_archive
    conv.update({k: copy.deepcopy(v) for k, v in columns.items() if v is not None})
    return conv


def row_to_summary(row: ConversationRow) -> ConversationSummary:
    """A summary from columns only (``rowToSummary``): absent keys stay absent."""
    summary: JsonDict = {"conversationId": row.id, "title": row.title, "updatedAt": row.updated_at}
    if row.created_at is not None:
        summary["createdAt"] = row.created_at
    summary.update(
        ownerId=row.owner_id,
        tenantId=shown_tenant(row.tenant_id),
        messageCount=row.message_count,
        hasPendingApprovals=bool(row.has_pending_approvals),
    )
    if row.parent_conversation_id:
        summary["parentConversationId"] = row.parent_conversation_id
    if truthy(row.channel_meta):
        summary["channelMeta"] = copy.deepcopy(row.channel_meta)
    return ConversationSummary.model_validate(summary)


def row_to_status(row: ConversationRow, run_status: Any, has_continuation: bool) -> StatusSnapshot:
    """``getStatusSnapshot``: columns plus ``runStatus`` extracted from ``data``."""
    return StatusSnapshot.model_validate(
        {
            "conversationId": row.id,
            "updatedAt": row.updated_at,
            "messageCount": row.message_count,
            "hasPendingApprovals": bool(row.has_pending_approvals),
            "hasContinuationMessages": has_continuation,
            "parentConversationId": row.parent_conversation_id,
            "ownerId": row.owner_id,
            "tenantId": shown_tenant(row.tenant_id),
            "runStatus": run_status if run_status in RUN_STATUSES else None,
        }
    )


@dataclass
class EntryBatch:
    """A validated batch to append: what the backend writes and what ``appendEntries`` returns.

    ``payloads`` are the entries exactly as given, as compact JSON text (the
    ``payload`` column; the in-memory store keeps the same text, so both
    stores copy inputs the same way). ``entries`` are the stored entries
    parsed back from that text, so they share nothing with the caller's
    objects; their ``seq`` is a placeholder until :meth:`stamp`.
    """

    ids: list[str]
    types: list[str]
    payloads: list[str]
    entries: list[Entry]

    def stamp(self, first_seq: int) -> list[Entry]:
        """The entries with the consecutive seqs the backend assigned from ``first_seq``."""
        for i, entry in enumerate(self.entries):
            entry.seq = first_seq + i
        return self.entries


def prepare_batch(conversation_id: str, entries: Sequence[JsonDict | Any], now: int) -> EntryBatch:
    """Validate a batch to append, or raise ``BadEntryError`` for the first bad entry.

    Every entry must have the harness shape, be JSON, and ids must differ
    within the batch; checking all of them before any write is what makes a
    bad batch write nothing. One validation per entry, on the hot path
    straight from the JSON text: it checks the entry and builds the stored
    entry returned (``createdAt`` = ``now``, a placeholder seq), sharing
    nothing with the caller's objects.

    The loop inlines the common case (an entry that encodes and validates at
    the first try): the calls around the two pydantic-core steps cost about
    an eighth of this function's time at a batch of 100. Anything else takes
    the slow paths below, so errors read as they always did.
    """
    ids: list[str] = []
    types: list[str] = []
    payloads: list[str] = []
    models: list[Entry] = []
    seen: set[str] = set()
    stamp = f'"seq":0,"createdAt":{to_json(now)}}}'
    encode, validate = pydantic_core.to_json, _STORED_ENTRY.validator.validate_json
    for entry in entries:
        data = entry.to_dict() if isinstance(entry, HarnessModel) else entry
        model: Entry | None = None
        try:
            text = encode(data).decode()
            if text.startswith("{") and text != "{}":
                model = validate(f"{text[:-1]},{stamp}")
        except (TypeError, ValueError):  # includes pydantic's encoding and validation errors
            pass
        if model is None:
            text = _entry_json(conversation_id, data)
            model = _stored_entry_model(conversation_id, data, text, stamp, now)
        entry_id = model.id
        if entry_id in seen:
            raise BadEntryError(
                f"id {entry_id!r} appears twice in one batch",
                field="id",
                conversation_id=conversation_id,
            )
        seen.add(entry_id)
        ids.append(entry_id)
        types.append(model.type)
        payloads.append(text)
        models.append(model)
    return EntryBatch(ids, types, payloads, models)


def _entry_json(conversation_id: str, data: Any) -> str:
    """The payload text of a new entry; a value JSON cannot hold is the caller's error."""
    try:
        text = to_json(data)
    except (TypeError, ValueError) as exc:
        # A shape error names its field first.
        parse_new_entry(data, conversation_id=conversation_id)
        raise BadEntryError(f"not JSON: {exc}", conversation_id=conversation_id) from exc
    if not text.startswith("{"):
        parse_new_entry(data, conversation_id=conversation_id)  # raises: not an object
    return text


def _stored_entry_model(conversation_id: str, data: Any, text: str, stamp: str, now: int) -> Entry:
    """The stored entry for ``text`` with ``createdAt`` = ``now`` and seq 0 (set once assigned).

    ``stamp`` is those two keys as JSON members, closing the object.

    Fast path: pydantic parses and validates the text in one step (the stamp
    goes last, so it wins over keys of the same name, as on read-back). It
    fails for bad entries and for text pydantic's parser refuses (a lone
    surrogate, ``NaN``); the slow path then parses with ``json`` and, for a
    bad entry, raises the error as for the new entry the caller gave.
    """
    try:
        return _STORED_ENTRY.validator.validate_json(
            f"{text[:-1]},{stamp}" if text != "{}" else "{" + stamp
        )
    except ValueError:
        pass
    stored = json.loads(text)
    stored.update(seq=0, createdAt=now)
    try:
        return parse_entry(stored, conversation_id=conversation_id)
    except BadEntryError:
        parse_new_entry(data, conversation_id=conversation_id)
        raise


def stored_entry(payload: JsonDict, seq: int, created_at: int) -> JsonDict:
    """An entry as read back: the payload with ``seq`` and ``createdAt`` from the columns."""
    return {**payload, "seq": seq, "createdAt": created_at}


def duplicate_id_error(conversation_id: str, ids: Sequence[str]) -> BadEntryError:
    """The error for a batch reusing ids already stored (ids are unique table-wide)."""
    return BadEntryError(
        f"id already used by a stored entry: {', '.join(sorted(ids))}",
        field="id",
        conversation_id=conversation_id,
    )
