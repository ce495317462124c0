"""The in-memory reference store: plain Python rows, copied in and out.

Upstream's ``InMemoryEngine`` hands out live references (hence its "clone
first" comment on the read cutover). Here every row is deep-copied on the
way in and out, and every entry is kept as its JSON text (as the SQL
engines keep it) and parsed anew on each read, so no caller can reach
stored state.
Unlike upstream's in-memory engine, ``get`` leaves the archive out and
``update`` keeps it, exactly as the SQL engines do: one contract for every
store (SPEC §4).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from poncho_replay.models import JsonDict, StatusSnapshot
from poncho_replay.policy import Policy, ReadPolicy
from poncho_replay.store.records import (
    ConversationRow,
    EntryBatch,
    duplicate_id_error,
    normalize_tenant,
    row_to_status,
    stored_entry,
)
from poncho_replay.store.rowstore import ALL_TENANTS, Clock, RowStore

__all__ = ["MemoryStore"]


@dataclasses.dataclass
class _StoredEntry:
    id: str
    type: str
    payload: str
    """The entry as given, as JSON text."""
    seq: int
    created_at: int


class MemoryStore(RowStore):
    """A ConversationStore held in Python dicts; the reference for the contract.

    Example:
        >>> from poncho_replay.store import MemoryStore
        >>> store = MemoryStore()
        >>> conv = store.create(title="  Notes ")
        >>> conv.title
        'Notes'
        >>> [e.seq for e in store.append_entries(conv.conversation_id, "local-owner", None, [
        ...     {"id": "e1", "type": "callback_started", "consumedSeqs": []}])]
        [1]

    Thread-safe: one lock guards every operation.
    """

    def __init__(
        self,
        agent_id: str = "local-agent",
        *,
        read_cutover: bool | None = None,
        policy: Policy | ReadPolicy = "0.58",
        clock: Clock | None = None,
        ids: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(agent_id, read_cutover=read_cutover, policy=policy, clock=clock, ids=ids)
        self._lock = threading.RLock()
        self._rows: dict[str, ConversationRow] = {}
        self._entries: dict[str, list[_StoredEntry]] = {}
        self._entry_ids: set[str] = set()

    def _fetch_row(self, conversation_id: str, *, with_archive: bool) -> ConversationRow | None:
        with self._lock:
            row = self._rows.get(conversation_id)
            return copy.deepcopy(row) if row is not None else None

    def _insert_row(self, row: ConversationRow) -> None:
        with self._lock:
            self._rows[row.id] = copy.deepcopy(row)

    def _upsert_row(self, row: ConversationRow) -> None:
        with self._lock:
            old = self._rows.get(row.id)
            new = copy.deepcopy(row)
            if old is not None:
                # agent_id is the row's owner, never rewritten (as the SQL upsert).
                new.agent_id = old.agent_id
                if new.tool_result_archive is None:
                    new.tool_result_archive = old.tool_result_archive
            self._rows[row.id] = new

    def _retitle_row(self, conversation_id: str, title: str, *, in_blob: bool, now: int) -> bool:
        with self._lock:
            row = self._rows.get(conversation_id)
            if row is None:
                return False
            row.title, row.updated_at = title, now
            if in_blob:
                row.data["title"] = title
            return True

    def _delete_row(self, conversation_id: str) -> bool:
        with self._lock:
            return self._rows.pop(conversation_id, None) is not None

    def _summary_rows(self, owner_id: str | None, tenant_id: Any) -> list[ConversationRow]:
        with self._lock:
            rows = [
                r
                for r in self._rows.values()
                if (tenant_id is ALL_TENANTS or r.tenant_id == normalize_tenant(tenant_id))
                and (owner_id is None or r.owner_id == owner_id)
            ]
            return _newest_first(rows)

    def _thread_rows(self, parent_conversation_id: str) -> list[ConversationRow]:
        with self._lock:
            rows = [
                r
                for r in self._rows.values()
                if r.parent_conversation_id == parent_conversation_id
                and r.parent_message_id is not None
            ]
            return _newest_first(rows)

    def get_status_snapshot(self, conversation_id: str) -> StatusSnapshot | None:
        with self._lock:
            row = self._rows.get(conversation_id)
            if row is None:
                return None
            return row_to_status(
                row, row.data.get("runStatus"), row.continuation_messages is not None
            )

    def _append_payloads(
        self,
        conversation_id: str,
        agent_id: str,
        tenant_id: str,
        batch: EntryBatch,
        now: int,
    ) -> int:
        with self._lock:
            reused = [i for i in batch.ids if i in self._entry_ids]
            if reused:
                raise duplicate_id_error(conversation_id, reused)
            log = self._entries.setdefault(conversation_id, [])
            first = log[-1].seq + 1 if log else 1  # appended in seq order: the last is the max
            log.extend(
                _StoredEntry(id_, type_, text, first + i, now)
                for i, (id_, type_, text) in enumerate(
                    zip(batch.ids, batch.types, batch.payloads, strict=True)
                )
            )
            self._entry_ids.update(batch.ids)
            return first

    def _entry_dicts(
        self,
        conversation_id: str,
        types: Sequence[str] | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> list[JsonDict]:
        with self._lock:
            log = list(self._entries.get(conversation_id, []))  # kept in seq order by appends
        if types:
            allowed = set(types)
            log = [e for e in log if e.type in allowed]
        if after_seq is not None:
            log = [e for e in log if e.seq > after_seq]
        if limit is not None:
            log = log[:limit]
        return [
            stored_entry({**json.loads(e.payload), "id": e.id}, e.seq, e.created_at) for e in log
        ]


def _newest_first(rows: list[ConversationRow]) -> list[ConversationRow]:
    """Summary order: ``updated_at`` descending, ties by id (copies, never live rows)."""
    return sorted((copy.deepcopy(r) for r in rows), key=lambda r: (-r.updated_at, r.id))
