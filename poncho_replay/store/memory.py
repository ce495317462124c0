"""The in-memory reference store: plain Python rows, deep-copied in and out.

Upstream's ``InMemoryEngine`` hands out live references (hence its "clone
first" comment on the read cutover). Here every row and entry is copied on
the way in and rebuilt on the way out, so no caller can reach stored state.
Unlike upstream's in-memory engine, ``get`` leaves the archive out and
``update`` keeps it, exactly as the SQL engines do: one contract for every
store (SPEC §4).
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

from poncho_replay.models import JsonDict, StatusSnapshot
from poncho_replay.rebuild import Policy
from poncho_replay.store.records import (
    ConversationRow,
    duplicate_id_error,
    normalize_tenant,
    row_to_status,
    stored_entry,
)
from poncho_replay.store.rowstore import ALL_TENANTS, Clock, RowStore

__all__ = ["MemoryStore"]


@dataclasses.dataclass
class _StoredEntry:
    payload: JsonDict
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
        policy: Policy = "0.58",
        clock: Clock | None = None,
    ) -> None:
        super().__init__(agent_id, read_cutover=read_cutover, policy=policy, clock=clock)
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
        payloads: list[JsonDict],
        now: int,
    ) -> int:
        with self._lock:
            reused = [p["id"] for p in payloads if p["id"] in self._entry_ids]
            if reused:
                raise duplicate_id_error(conversation_id, reused)
            log = self._entries.setdefault(conversation_id, [])
            first = max((e.seq for e in log), default=0) + 1
            log.extend(_StoredEntry(p, first + i, now) for i, p in enumerate(payloads))
            self._entry_ids.update(p["id"] for p in payloads)
            return first

    def _entry_dicts(
        self,
        conversation_id: str,
        types: Sequence[str] | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> list[JsonDict]:
        with self._lock:
            log = sorted(self._entries.get(conversation_id, []), key=lambda e: e.seq)
            if types:
                allowed = set(types)
                log = [e for e in log if e.payload.get("type") in allowed]
            if after_seq is not None:
                log = [e for e in log if e.seq > after_seq]
            if limit is not None:
                log = log[:limit]
            return [stored_entry(copy.deepcopy(e.payload), e.seq, e.created_at) for e in log]


def _newest_first(rows: list[ConversationRow]) -> list[ConversationRow]:
    """Summary order: ``updated_at`` descending, ties by id (copies, never live rows)."""
    return sorted((copy.deepcopy(r) for r in rows), key=lambda r: (-r.updated_at, r.id))
