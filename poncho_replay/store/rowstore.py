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
from typing import Any, Literal

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
from poncho_replay.policy import QUEUE_TYPES, Policy, ReadPolicy, resolve_policy
from poncho_replay.rebuild import rebuild_conversation
from poncho_replay.store.base import DEFAULT_OWNER, normalize_title
from poncho_replay.store.records import (
    ConversationRow,
    EntryBatch,
    conversation_to_row,
    new_conversation,
    normalize_tenant,
    prepare_batch,
    row_to_conversation,
    row_to_summary,
)

Clock = Callable[[], int]
"""Returns "now" in epoch milliseconds (``Date.now()``)."""

ALL_TENANTS: Any = ...
"""The ``tenant_id`` default of ``list``/``list_summaries``: JavaScript's
``undefined``, meaning every tenant. ``None`` means the default tenant only."""

RenameWrite = Literal["get_update", "title_column", "title_column_and_blob"]
"""How a release's ``rename`` writes (SPEC §7): get -> update (up to 0.59.0,
and ``"blob"``), the ``title`` column alone (0.59.1-0.59.2), or the column and
the blob's title in one UPDATE (0.59.3 on)."""

TITLE_COLUMN_RENAME_FROM = (0, 59, 1)
TITLE_IN_BLOB_RENAME_FROM = (0, 59, 3)


def rename_write(policy: Policy | ReadPolicy) -> RenameWrite:
    """How ``rename`` writes under the release a policy names.

    ``"blob"`` reads like the releases before the entry log, so it renames
    as they did (get -> update).
    """
    read = resolve_policy(policy)
    if read.release == "blob":
        return "get_update"
    version = tuple(int(part) for part in read.release.split("."))
    if version < TITLE_COLUMN_RENAME_FROM:
        return "get_update"
    return "title_column" if version < TITLE_IN_BLOB_RENAME_FROM else "title_column_and_blob"


def wall_clock_ms() -> int:
    """``Date.now()``."""
    return time.time_ns() // 1_000_000


class RowStore(abc.ABC):
    """Harness store semantics; subclasses supply storage primitives.

    Args:
        agent_id: the agent whose conversations this store sees (``conversations.agent_id``).
        read_cutover: ``True``/``False`` forces the release's log read on/off
            for this store; ``None`` follows ``PONCHO_READ_ENTRIES`` like the harness.
        policy: the harness release this store behaves as: any string
            :func:`~poncho_replay.policy.resolve_policy` accepts (``"0.58"``,
            ``"0.59.0"``, ``"0.59.3"``, ``"current"``, ``"blob"``, ...) or a
            resolved :class:`~poncho_replay.policy.ReadPolicy`. It decides
            what ``get``/``get_with_archive`` take from the log (SPEC §7) and
            how ``rename`` writes (:func:`rename_write`). Settable later;
            a string no release answers to raises ``PolicyError`` at once.
        clock: "now" in epoch ms; inject one for reproducible timestamps.
        ids: new conversation ids (default: random UUIDv4); inject a seeded
            source for reproducible ids, as the committed fixtures do.
    """

    def __init__(
        self,
        agent_id: str,
        *,
        read_cutover: bool | None = None,
        policy: Policy = "0.58",
        clock: Clock | None = None,
        ids: Callable[[], str] | None = None,
    ) -> None:
        self.agent_id = agent_id
        self.read_cutover = read_cutover
        self.policy = policy
        self.clock: Clock = clock or wall_clock_ms
        self.new_id: Callable[[], str] = ids or (lambda: str(uuid.uuid4()))

    @property
    def policy(self) -> Policy | ReadPolicy:
        """The policy as given (a string or a ReadPolicy), so it can be saved and restored."""
        return self._policy

    @policy.setter
    def policy(self, policy: Policy | ReadPolicy) -> None:
        # Refuse an unknown release now, not at the first read.
        self._read_policy = resolve_policy(policy)
        self._policy = policy

    @property
    def read_policy(self) -> ReadPolicy:
        """What :attr:`policy` resolves to: the release and what its reads take from the log."""
        return self._read_policy

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
    def _retitle_row(self, conversation_id: str, title: str, *, in_blob: bool, now: int) -> bool:
        """One write of the row: ``title`` and ``updated_at`` = now, and with ``in_blob`` the
        blob's ``title`` too (its ``updatedAt`` untouched). Whether the row exists."""

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
        batch: EntryBatch,
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
        now = self.clock()
        batch = prepare_batch(conversation_id, entries, now)
        first = self._append_payloads(
            conversation_id, agent_id, normalize_tenant(tenant_id), batch, now
        )
        return batch.stamp(first)

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
        """The conversation without its tool-result archive, as the store's release reads it.

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
            policy=self._read_policy,
            cutover=self.read_cutover,
        )

    def _lazy_entries(self, conversation_id: str) -> Iterator[JsonDict]:
        """The entries the release's read asks for, read only when the cutover iterates them.

        0.59.3 on asks ``readEntries(id, {types: [subagent_result,
        callback_started]})``, so transcript rows (malformed ones included)
        are never read. The read happens inside the cutover's error
        handling, so a failing read falls back to the blob as upstream's
        ``readEntries`` callback does, and a disabled cutover reads nothing.
        """
        types = QUEUE_TYPES if self._read_policy.reads == "pending_queue" else None
        yield from self._entry_dicts(conversation_id, types)

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
        """A new conversation with a new id (random unless ``ids`` was given); blank titles become ``"New conversation"``.

        ``init`` may carry ``messages`` and the thread/subagent/channel
        fields (``parentConversationId``, ``parentMessageId``, ``threadMeta``,
        ``subagentMeta``, ``channelMeta``).
        """
        now = self.clock()
        conv = new_conversation(self.new_id(), owner_id, normalize_title(title), tenant_id, init, now)
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
        """Retitle (normalised) the way the store's release did (SPEC §7).

        - up to 0.59.0 (and ``"blob"``): get -> set the title -> update, which
          returns the updated object. Under the 0.58 cutover the get has
          rebuilt the transcript, so the update writes it into the blob
          (the 0.58.0 bug, SPEC §6); under 0.59.0 the pending results.
        - 0.59.1-0.59.2: the ``title`` and ``updated_at`` columns only; the
          blob, which reads parse, keeps the old title.
        - 0.59.3 on: one write of the ``title`` column, ``updated_at`` and
          the blob's ``title`` (``json_set(data, '$.title', ?)``); the blob's
          ``updatedAt`` stays.

        From 0.59.1 on the result is what :meth:`get` serves after the write
        (old title and old ``updatedAt`` in 0.59.1-0.59.2), None for an unknown id.
        """
        how = rename_write(self._read_policy)
        if how == "get_update":
            conv = self.get(conversation_id)
            if conv is None:
                return None
            conv.title = normalize_title(title)
            self.update(conv)
            return conv
        in_blob = how == "title_column_and_blob"
        if not self._retitle_row(
            conversation_id, normalize_title(title), in_blob=in_blob, now=self.clock()
        ):
            return None
        return self.get(conversation_id)

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
