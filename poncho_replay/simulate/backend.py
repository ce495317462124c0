"""Where the simulator writes: a real ``ConversationStore``, or plain dicts.

The harness's write sites only need a handful of store calls. Both backends
give them the same dict-in, dict-out shape so one simulator drives either:

- :class:`StoreBackend` wraps any object following
  :class:`poncho_replay.store.base.ConversationStore` (the scripted
  scenarios go through a real store, as the harness does);
- :class:`DictBackend` keeps blobs and entries as plain dicts with the same
  SPEC §4 rules (seq = max + 1, get -> modify -> update for the helpers) and
  no validation, so ``simulate.fleet`` can produce a million entries in
  seconds instead of paying a store round trip per entry.

``cutover`` on ``get`` and the helpers is 0.58.0's read cutover: when true
the conversation is rebuilt from its log before the caller modifies and
writes it back (the write-back of SPEC §6).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from poncho_replay.models import JsonDict, entry_to_dict
from poncho_replay.rebuild import rebuild_conversation
from poncho_replay.simulate.clock import Clock
from poncho_replay.store.base import DEFAULT_TENANT, ConversationStore, normalize_title


class Backend(Protocol):
    """The store calls the harness's write sites make, on harness dicts."""

    def create(self, owner_id: str, title: str, tenant_id: str | None) -> JsonDict: ...

    def get(self, conversation_id: str, *, cutover: bool) -> JsonDict: ...

    def update(self, conversation: JsonDict) -> None: ...

    def append(self, conversation_id: str, agent_id: str, tenant_id: str | None, entries: list[JsonDict]) -> None: ...

    def read(self, conversation_id: str, types: Sequence[str] | None = None) -> list[JsonDict]: ...

    def rename(self, conversation_id: str, title: str, *, cutover: bool) -> None: ...

    def append_subagent_result(self, conversation_id: str, result: JsonDict, *, cutover: bool) -> None: ...

    def clear_callback_lock(self, conversation_id: str, *, cutover: bool) -> None: ...


class DictBackend:
    """An in-process store of plain dicts with the harness's semantics (SPEC §4).

    Ids and timestamps come from the simulator's seeded :class:`Clock`, so
    the same seed gives byte-identical data. Blobs are held as given by
    ``update`` (the simulator never mutates a message after writing it).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.blobs: dict[str, JsonDict] = {}
        self.entries: dict[str, list[JsonDict]] = {}
        self.entry_tenants: dict[str, str] = {}
        self.entry_agents: dict[str, str] = {}

    def create(self, owner_id: str, title: str, tenant_id: str | None) -> JsonDict:
        now = self.clock.tick()
        cid = self.clock.uuid()
        self.blobs[cid] = {
            "conversationId": cid,
            "title": normalize_title(title),
            "messages": [],
            "ownerId": owner_id,
            "tenantId": tenant_id,
            "createdAt": now,
            "updatedAt": now,
        }
        return dict(self.blobs[cid])

    def get(self, conversation_id: str, *, cutover: bool) -> JsonDict:
        blob = self.blobs[conversation_id]
        if cutover and self.entries.get(conversation_id):
            return rebuild_conversation(blob, self.entries[conversation_id], cutover=True)
        return dict(blob)

    def update(self, conversation: JsonDict) -> None:
        stored = dict(conversation)
        stored["updatedAt"] = self.clock.tick()
        self.blobs[stored["conversationId"]] = stored

    def append(self, conversation_id: str, agent_id: str, tenant_id: str | None, entries: list[JsonDict]) -> None:
        log = self.entries.setdefault(conversation_id, [])
        seq = log[-1]["seq"] if log else 0
        now = self.clock.tick()
        for e in entries:
            seq += 1
            log.append({**e, "seq": seq, "createdAt": now})
            self.entry_agents[e["id"]] = agent_id
            self.entry_tenants[e["id"]] = tenant_id if tenant_id is not None else DEFAULT_TENANT

    def read(self, conversation_id: str, types: Sequence[str] | None = None) -> list[JsonDict]:
        log = self.entries.get(conversation_id, [])
        return [e for e in log if e["type"] in types] if types else list(log)

    def rename(self, conversation_id: str, title: str, *, cutover: bool) -> None:
        conv = self.get(conversation_id, cutover=cutover)
        conv["title"] = normalize_title(title)
        self.update(conv)

    def append_subagent_result(self, conversation_id: str, result: JsonDict, *, cutover: bool) -> None:
        conv = self.get(conversation_id, cutover=cutover)
        conv["pendingSubagentResults"] = [*(conv.get("pendingSubagentResults") or []), result]
        self.update(conv)

    def clear_callback_lock(self, conversation_id: str, *, cutover: bool) -> None:
        conv = self.get(conversation_id, cutover=cutover)
        conv.pop("runningCallbackSince", None)
        self.update(conv)


class StoreBackend:
    """Adapts any :class:`ConversationStore` to the simulator.

    ``cutover`` is applied by setting the store's ``read_cutover`` around the
    call (the stores of this kit take ``read_cutover=True|False|None``), so a
    scripted scenario can switch the 0.58.0 write-back per operation the way
    the harness's ``PONCHO_READ_ENTRIES`` did, without touching the environment.
    """

    def __init__(self, store: ConversationStore) -> None:
        if not hasattr(store, "read_cutover"):
            raise TypeError("StoreBackend needs a store with a settable read_cutover attribute")
        self.store = store

    @contextmanager
    def _cutover(self, on: bool) -> Iterator[None]:
        before = self.store.read_cutover  # type: ignore[attr-defined]
        self.store.read_cutover = on  # type: ignore[attr-defined]
        try:
            yield
        finally:
            self.store.read_cutover = before  # type: ignore[attr-defined]

    def create(self, owner_id: str, title: str, tenant_id: str | None) -> JsonDict:
        return self.store.create(owner_id=owner_id, title=title, tenant_id=tenant_id).to_dict()

    def get(self, conversation_id: str, *, cutover: bool) -> JsonDict:
        with self._cutover(cutover):
            conv = self.store.get_with_archive(conversation_id)
        if conv is None:
            raise KeyError(conversation_id)
        return _as_dict(conv)

    def update(self, conversation: JsonDict) -> None:
        self.store.update(copy.deepcopy(conversation))

    def append(self, conversation_id: str, agent_id: str, tenant_id: str | None, entries: list[JsonDict]) -> None:
        self.store.append_entries(conversation_id, agent_id, tenant_id, entries)

    def read(self, conversation_id: str, types: Sequence[str] | None = None) -> list[JsonDict]:
        return [entry_to_dict(e) for e in self.store.read_entries(conversation_id, types=types)]

    def rename(self, conversation_id: str, title: str, *, cutover: bool) -> None:
        with self._cutover(cutover):
            self.store.rename(conversation_id, title)

    def append_subagent_result(self, conversation_id: str, result: JsonDict, *, cutover: bool) -> None:
        with self._cutover(cutover):
            self.store.append_subagent_result(conversation_id, result)

    def clear_callback_lock(self, conversation_id: str, *, cutover: bool) -> None:
        with self._cutover(cutover):
            self.store.clear_callback_lock(conversation_id)


def _as_dict(conv: Any) -> JsonDict:
    return conv.to_dict() if hasattr(conv, "to_dict") else dict(conv)
