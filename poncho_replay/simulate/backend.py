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

``cutover`` on ``get`` and the helpers is the read cutover of the release
named by ``policy`` (default 0.58.0's): when true the conversation is
rebuilt from its log before the caller modifies and writes it back (the
write-back of SPEC §6; from 0.59.0 only ``pendingSubagentResults``).
``rename_title_column`` is the rename of 0.59.1 and later (SPEC §7), which
writes the row's ``title`` (and from 0.59.3 the blob's) without a get.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from poncho_replay.models import JsonDict, entry_to_dict
from poncho_replay.policy import Policy, ReadPolicy
from poncho_replay.rebuild import rebuild_conversation
from poncho_replay.simulate.clock import Clock
from poncho_replay.store.base import DEFAULT_TENANT, ConversationStore, normalize_title
from poncho_replay.store.rowstore import RowStore

DEFAULT_READ: Policy = "0.58"
"""The read a backend call applies when the caller names none: 0.58.0's cutover."""


class Backend(Protocol):
    """The store calls the harness's write sites make, on harness dicts."""

    def create(self, owner_id: str, title: str, tenant_id: str | None) -> JsonDict: ...

    def get(self, conversation_id: str, *, cutover: bool, policy: Policy | ReadPolicy = DEFAULT_READ) -> JsonDict: ...

    def update(self, conversation: JsonDict) -> None: ...

    def append(self, conversation_id: str, agent_id: str, tenant_id: str | None, entries: list[JsonDict]) -> list[int]:
        """Store the entries (seq = max + 1, ...) and return their seqs, which the ground truth names."""
        ...

    def read(self, conversation_id: str, types: Sequence[str] | None = None) -> list[JsonDict]: ...

    def rename(self, conversation_id: str, title: str, *, cutover: bool, policy: Policy | ReadPolicy = DEFAULT_READ) -> None: ...

    def rename_title_column(self, conversation_id: str, title: str, *, in_blob: bool) -> None: ...

    def append_subagent_result(
        self, conversation_id: str, result: JsonDict, *, cutover: bool, policy: Policy | ReadPolicy = DEFAULT_READ
    ) -> None: ...

    def clear_callback_lock(self, conversation_id: str, *, cutover: bool, policy: Policy | ReadPolicy = DEFAULT_READ) -> None: ...


class DictBackend:
    """An in-process store of plain dicts with the harness's semantics (SPEC §4).

    Ids and timestamps come from the simulator's seeded :class:`Clock`, so
    the same seed gives byte-identical data. Blobs are held as given by
    ``update`` (the simulator never mutates a message after writing it), and
    :meth:`get` returns a new top-level dict whose nested values (messages,
    the rebuilt lists' messages) are the stored blob's and log's own: replace
    a key, never mutate a value in place. Copying them on every read was
    most of the time a large fleet took to generate.
    :attr:`columns` holds the rows whose ``title``/``updated_at`` columns a
    0.59.1+ rename set apart from the blob, until the next ``update``
    rewrites the whole row from the blob (as the harness's UPDATE does).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.blobs: dict[str, JsonDict] = {}
        self.entries: dict[str, list[JsonDict]] = {}
        self.entry_tenants: dict[str, str] = {}
        self.entry_agents: dict[str, str] = {}
        self.columns: dict[str, JsonDict] = {}

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

    def get(self, conversation_id: str, *, cutover: bool, policy: Policy | ReadPolicy = DEFAULT_READ) -> JsonDict:
        blob = self.blobs[conversation_id]
        if cutover and self.entries.get(conversation_id):
            # No copy: like the dict(blob) below, the result is a new top-level dict
            # whose nested values the simulator replaces but never mutates.
            return rebuild_conversation(blob, self.entries[conversation_id], policy=policy, cutover=True, copy=False)
        return dict(blob)

    def update(self, conversation: JsonDict) -> None:
        stored = dict(conversation)
        stored["updatedAt"] = self.clock.tick()
        self.blobs[stored["conversationId"]] = stored
        self.columns.pop(stored["conversationId"], None)

    def append(self, conversation_id: str, agent_id: str, tenant_id: str | None, entries: list[JsonDict]) -> list[int]:
        log = self.entries.setdefault(conversation_id, [])
        seq = log[-1]["seq"] if log else 0
        now = self.clock.tick()
        seqs = []
        for e in entries:
            seq += 1
            seqs.append(seq)
            log.append({**e, "seq": seq, "createdAt": now})
            self.entry_agents[e["id"]] = agent_id
            self.entry_tenants[e["id"]] = tenant_id if tenant_id is not None else DEFAULT_TENANT
        return seqs

    def read(self, conversation_id: str, types: Sequence[str] | None = None) -> list[JsonDict]:
        log = self.entries.get(conversation_id, [])
        return [e for e in log if e["type"] in types] if types else list(log)

    def rename(self, conversation_id: str, title: str, *, cutover: bool, policy: Policy | ReadPolicy = DEFAULT_READ) -> None:
        conv = self.get(conversation_id, cutover=cutover, policy=policy)
        conv["title"] = normalize_title(title)
        self.update(conv)

    def rename_title_column(self, conversation_id: str, title: str, *, in_blob: bool) -> None:
        """One UPDATE of the row: ``title`` and ``updated_at``, and with ``in_blob`` the blob's title.

        The blob's ``updatedAt`` stays as it was (SPEC §7).
        """
        title = normalize_title(title)
        if in_blob:
            self.blobs[conversation_id] = {**self.blobs[conversation_id], "title": title}
        self.columns[conversation_id] = {"title": title, "updatedAt": self.clock.tick()}

    def append_subagent_result(
        self, conversation_id: str, result: JsonDict, *, cutover: bool, policy: Policy | ReadPolicy = DEFAULT_READ
    ) -> None:
        conv = self.get(conversation_id, cutover=cutover, policy=policy)
        conv["pendingSubagentResults"] = [*(conv.get("pendingSubagentResults") or []), result]
        self.update(conv)

    def clear_callback_lock(self, conversation_id: str, *, cutover: bool, policy: Policy | ReadPolicy = DEFAULT_READ) -> None:
        conv = self.get(conversation_id, cutover=cutover, policy=policy)
        conv.pop("runningCallbackSince", None)
        self.update(conv)


class StoreBackend:
    """Adapts any :class:`ConversationStore` to the simulator.

    ``cutover`` and ``policy`` are applied by setting the store's
    ``read_cutover`` and ``policy`` around the call (the stores of this kit
    take both), so a scripted scenario can switch the write-back and the
    release per operation the way the harness's ``PONCHO_READ_ENTRIES`` and
    an upgrade did, without touching the environment.
    """

    def __init__(self, store: ConversationStore) -> None:
        if not hasattr(store, "read_cutover"):
            raise TypeError("StoreBackend needs a store with a settable read_cutover attribute")
        self.store = store

    @contextmanager
    def _cutover(self, on: bool, policy: Policy | ReadPolicy = DEFAULT_READ) -> Iterator[None]:
        before = self.store.read_cutover, getattr(self.store, "policy", DEFAULT_READ)  # type: ignore[attr-defined]
        self.store.read_cutover, self.store.policy = on, policy  # type: ignore[attr-defined]
        try:
            yield
        finally:
            self.store.read_cutover, self.store.policy = before  # type: ignore[attr-defined]

    def create(self, owner_id: str, title: str, tenant_id: str | None) -> JsonDict:
        return self.store.create(owner_id=owner_id, title=title, tenant_id=tenant_id).to_dict()

    def get(self, conversation_id: str, *, cutover: bool, policy: Policy | ReadPolicy = DEFAULT_READ) -> JsonDict:
        with self._cutover(cutover, policy):
            conv = self.store.get_with_archive(conversation_id)
        if conv is None:
            raise KeyError(conversation_id)
        return _as_dict(conv)

    def update(self, conversation: JsonDict) -> None:
        self.store.update(copy.deepcopy(conversation))

    def append(self, conversation_id: str, agent_id: str, tenant_id: str | None, entries: list[JsonDict]) -> list[int]:
        return [e.seq for e in self.store.append_entries(conversation_id, agent_id, tenant_id, entries)]

    def read(self, conversation_id: str, types: Sequence[str] | None = None) -> list[JsonDict]:
        return [entry_to_dict(e) for e in self.store.read_entries(conversation_id, types=types)]

    def rename(self, conversation_id: str, title: str, *, cutover: bool, policy: Policy | ReadPolicy = DEFAULT_READ) -> None:
        with self._cutover(cutover, policy):
            self.store.rename(conversation_id, title)

    def rename_title_column(self, conversation_id: str, title: str, *, in_blob: bool) -> None:
        """The 0.59.1+ rename on the store's row; the kit's stores' ``rename`` is 0.58's get -> update.

        Raises:
            TypeError: for a store that is not a :class:`~poncho_replay.store.rowstore.RowStore`
                (the protocol has no column-only write).
        """
        store = self.store
        if not isinstance(store, RowStore):
            raise TypeError("a 0.59.1+ rename needs a RowStore (MemoryStore, DuckDBStore) under the StoreBackend")
        row = store._fetch_row(conversation_id, with_archive=False)
        if row is None:
            return
        row.title = normalize_title(title)
        if in_blob:
            row.data = {**row.data, "title": row.title}
        row.updated_at = store.clock()
        store._upsert_row(row)  # the archive column is kept: the row carries none

    def append_subagent_result(
        self, conversation_id: str, result: JsonDict, *, cutover: bool, policy: Policy | ReadPolicy = DEFAULT_READ
    ) -> None:
        with self._cutover(cutover, policy):
            self.store.append_subagent_result(conversation_id, result)

    def clear_callback_lock(self, conversation_id: str, *, cutover: bool, policy: Policy | ReadPolicy = DEFAULT_READ) -> None:
        with self._cutover(cutover, policy):
            self.store.clear_callback_lock(conversation_id)


def _as_dict(conv: Any) -> JsonDict:
    return conv.to_dict() if hasattr(conv, "to_dict") else dict(conv)
