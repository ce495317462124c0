"""The harness's ConversationStore semantics, once, over a table-shaped backend.

:class:`RowStore` implements every public method of
:class:`~poncho_replay.store.base.ConversationStore` (SPEC §4) in terms of a
handful of row primitives. :class:`~poncho_replay.store.memory.MemoryStore`
and :class:`~poncho_replay.store.duckdb.DuckDBStore` only say how rows are
kept, so the rules (read cutover, archive keeping, get -> modify -> update
paths, validation before any write) cannot differ between them.
"""

from __future__ import annotations

import abc
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from poncho_replay.models import (
    Conversation,
    ConversationSummary,
    Entry,
    HarnessModel,
    JsonDict,
    PendingSubagentResult,
    StatusSnapshot,
    parse_conversation,
    parse_entry,
)
from poncho_replay.rebuild import Policy, rebuild_conversation
from poncho_replay.store.base import DEFAULT_OWNER, normalize_title
from poncho_replay.store.records import (
    ConversationRow,
    conversation_to_row,
    new_conversation,
    normalize_tenant,
    row_to_conversation,
    row_to_summary,
    stamp,
    validate_batch,
)

Clock = Callable[[], int]
"""Returns "now" in epoch milliseconds (``Date.now()``)."""

ALL_TENANTS: Any = ...
"""The ``tenant_id`` default of ``list``/``list_summaries``: JavaScript's
``undefined``, meaning every tenant. ``None`` means the default tenant only."""


def wall_clock_ms() -> int:
    """``Date.now()``."""
    return time.time_ns() // 1_000_000


class RowStore(abc.ABC):
    """Harness store semantics; subclasses supply storage primitives.

    Args:
        agent_id: the agent whose conversations this store sees (``conversations.agent_id``).
        read_cutover: ``True``/``False`` forces the 0.58 read cutover on/off
            for this store; ``None`` follows ``PONCHO_READ_ENTRIES`` like the harness.
        policy: which fields the cutover rebuilds (see :data:`poncho_replay.rebuild.POLICIES`).
        clock: "now" in epoch ms; inject one for reproducible timestamps.
    """

    def __init__(
        self,
        agent_id: str,
        *,
        read_cutover: bool | None = None,
        policy: Policy = "0.58",
        clock: Clock | None = None,
    ) -> None:
        self.agent_id = agent_id
        self.read_cutover = read_cutover
        self.policy = policy
        self.clock: Clock = clock or wall_clock_ms

    # --- primitives a backend provides -------------------------------------------

    @abc.abstractmethod
    def _fetch_row(self, conversation_id: str, *, with_archive: bool) -> ConversationRow | None:
        """This agent's row, or None; the archive column only when asked for."""

    @abc.abstractmethod
    def _insert_row(self, row: ConversationRow) -> None:
        """Insert a new row (``create``)."""

    @abc.abstractmethod
    def _upsert_row(self, row: ConversationRow) -> None:
        """Insert or replace by id, keeping the stored archive when ``row``'s is None."""

    @abc.abstractmethod
    def _delete_row(self, conversation_id: str) -> bool:
        """Delete this agent's row; whether it existed. Entries are kept, as upstream."""

    @abc.abstractmethod
    def _summary_rows(self, owner_id: str | None, tenant_id: Any) -> list[ConversationRow]:
        """Light rows of this agent (no heavy columns), newest ``updated_at`` first, then id."""

    @abc.abstractmethod
    def _thread_rows(self, parent_conversation_id: str) -> list[ConversationRow]:
        """Light rows of threads under a parent, ordered like ``_summary_rows``."""

    @abc.abstractmethod
    def get_status_snapshot(self, conversation_id: str) -> StatusSnapshot | None:
        """Column-only status (``getStatusSnapshot``), or None for an unknown id."""

    @abc.abstractmethod
    def _append_payloads(
        self,
        conversation_id: str,
        agent_id: str,
        tenant_id: str,
        payloads: list[JsonDict],
        now: int,
    ) -> int:
        """Persist a validated batch atomically after the conversation's max seq.

        Returns the first seq assigned. Raises ``BadEntryError`` if an id is
        already stored, ``StoreError`` if the write cannot complete.
        """

    @abc.abstractmethod
    def _entry_dicts(
        self,
        conversation_id: str,
        types: Sequence[str] | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> list[JsonDict]:
        """Stored entries as harness dicts, filtered as ``readEntries`` says."""

    # --- entries -------------------------------------------------------------------

    def append_entries(
        self,
        conversation_id: str,
        agent_id: str,
        tenant_id: str | None,
        entries: Sequence[JsonDict | Any],
    ) -> list[Entry]:
        """Append a batch, all or nothing; returns the stored entries.

        Seqs continue from the conversation's current max (1 for a new log),
        in input order; every entry gets the same ``createdAt`` (now). A null
        ``tenant_id`` is stored as ``"__default__"``. An empty batch is a no-op.

        Raises:
            BadEntryError: an entry is malformed or its id is already used;
                nothing is written.
            StoreError: the batch could not be written (for example, seq
                conflicts outlasted the retries).
        """
        if not entries:
            return []
        payloads = validate_batch(conversation_id, entries)
        now = self.clock()
        first = self._append_payloads(
            conversation_id, agent_id, normalize_tenant(tenant_id), payloads, now
        )
        return stamp(conversation_id, payloads, first, now)

    def read_entries(
        self,
        conversation_id: str,
        types: Sequence[str] | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> list[Entry]:
        """Entries by seq ascending: ``types`` (empty = all), then ``seq > after_seq``, then ``limit``."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        return [
            parse_entry(e, conversation_id=conversation_id)
            for e in self._entry_dicts(conversation_id, types or None, after_seq, limit)
        ]

    # --- conversations ---------------------------------------------------------------

    def get(self, conversation_id: str) -> Conversation | None:
        """The conversation without its tool-result archive, after the read cutover.

        The result is a fresh object: changing it never changes the store.
        """
        return self._read(conversation_id, with_archive=False)

    def get_with_archive(self, conversation_id: str) -> Conversation | None:
        """Like :meth:`get`, with ``_toolResultArchive``."""
        return self._read(conversation_id, with_archive=True)

    def _read(self, conversation_id: str, *, with_archive: bool) -> Conversation | None:
        row = self._fetch_row(conversation_id, with_archive=with_archive)
        if row is None:
            return None
        conversation = parse_conversation(row_to_conversation(row, with_archive=with_archive))
        return rebuild_conversation(
            conversation,
            self._lazy_entries(conversation_id),
            policy=self.policy,
            cutover=self.read_cutover,
        )

    def _lazy_entries(self, conversation_id: str) -> Iterator[JsonDict]:
        """Entries read only when the cutover iterates them.

        The read then happens inside the cutover's error handling, so a
        failing read falls back to the blob as upstream's ``readEntries``
        callback does, and a disabled cutover reads nothing.
        """
        yield from self._entry_dicts(conversation_id)

    def list(self, owner_id: str | None = None, tenant_id: Any = ALL_TENANTS) -> list[Conversation]:
        """Full conversations in summary order, each read through :meth:`get`."""
        found = (self.get(s.conversation_id) for s in self.list_summaries(owner_id, tenant_id))
        return [c for c in found if c is not None]

    def list_summaries(
        self, owner_id: str | None = None, tenant_id: Any = ALL_TENANTS
    ) -> list[ConversationSummary]:
        """Summaries newest ``updatedAt`` first (ties by id).

        ``tenant_id``: omitted = every tenant, None = the default tenant, a
        string = that tenant. An empty ``owner_id`` does not filter (JavaScript falsiness).
        """
        return [row_to_summary(r) for r in self._summary_rows(owner_id or None, tenant_id)]

    def list_threads(self, parent_conversation_id: str) -> list[ConversationSummary]:
        """Thread children (both parent ids set) of a conversation, newest first."""
        return [row_to_summary(r) for r in self._thread_rows(parent_conversation_id)]

    def create(
        self,
        owner_id: str = DEFAULT_OWNER,
        title: str | None = None,
        tenant_id: str | None = None,
        init: JsonDict | None = None,
    ) -> Conversation:
        """A new conversation with a random id; blank titles become ``"New conversation"``.

        ``init`` may carry ``messages`` and the thread/subagent/channel
        fields (``parentConversationId``, ``parentMessageId``, ``threadMeta``,
        ``subagentMeta``, ``channelMeta``).
        """
        now = self.clock()
        conv = new_conversation(
            str(uuid.uuid4()), owner_id, normalize_title(title), tenant_id, init, now
        )
        self._insert_row(conversation_to_row(conv, self.agent_id))
        return parse_conversation(conv)

    def update(self, conversation: Conversation | JsonDict) -> None:
        """Store a conversation (insert or replace), stamping ``updatedAt`` = now.

        As upstream, the stamp (and ``createdAt`` when missing) is written
        onto the object passed in. An object without ``_toolResultArchive``
        keeps the stored archive, so a light :meth:`get` -> :meth:`update`
        never drops it.
        """
        data = conversation.to_dict() if isinstance(conversation, HarnessModel) else conversation
        data["updatedAt"] = self.clock()
        if not data.get("createdAt"):
            data["createdAt"] = data["updatedAt"]
        if isinstance(conversation, Conversation):
            conversation.updated_at = data["updatedAt"]
            conversation.created_at = data["createdAt"]
        self._upsert_row(conversation_to_row(data, self.agent_id))

    def rename(self, conversation_id: str, title: str) -> Conversation | None:
        """get -> set the normalised title -> update; returns the updated object."""
        conv = self.get(conversation_id)
        if conv is None:
            return None
        conv.title = normalize_title(title)
        self.update(conv)
        return conv

    def delete(self, conversation_id: str) -> bool:
        """Delete the conversation row; whether it existed. Its entries stay, as upstream."""
        return self._delete_row(conversation_id)

    def append_subagent_result(
        self, conversation_id: str, result: PendingSubagentResult | JsonDict
    ) -> None:
        """get -> append to ``pendingSubagentResults`` -> update (a no-op for an unknown id).

        Through the 0.58 cutover, ``get`` rebuilds the pending list from the
        log, so this writes the log's view back into the blob, as upstream.
        """
        conv = self.get(conversation_id)
        if conv is None:
            return
        data = conv.to_dict()
        item = result.to_dict() if isinstance(result, HarnessModel) else result
        data["pendingSubagentResults"] = [*(data.get("pendingSubagentResults") or []), item]
        self.update(data)

    def clear_callback_lock(self, conversation_id: str) -> Conversation | None:
        """get -> unset ``runningCallbackSince`` -> update; returns the updated object.

        Unset means the key disappears from the stored blob (JavaScript
        ``undefined``), not ``null``.
        """
        conv = self.get(conversation_id)
        if conv is None:
            return None
        data = conv.to_dict()
        data.pop("runningCallbackSince", None)
        self.update(data)
        return parse_conversation(data)
