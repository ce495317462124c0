"""A simulated fleet as plain harness dicts, and its writers.

The writers put a fleet into the harness's own layout (SQLite file or
PostgreSQL schema, migrations 1-8) through :mod:`poncho_replay.harness_layout`,
the one owner of that DDL, so the loaders can be tested on realistic data.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from poncho_replay import harness_layout
from poncho_replay.models import JsonDict, entry_to_dict
from poncho_replay.simulate.backend import DictBackend
from poncho_replay.simulate.harness import Event, Simulator
from poncho_replay.simulate.truth import Truth, truth_df
from poncho_replay.store.base import ConversationStore


@dataclass
class Fleet:
    """Blobs and entry logs as plain harness dicts, ready for a writer.

    ``conversations`` are the stored blobs (with ``_harnessMessages`` etc.
    still inside; writers split them into columns); ``entries`` maps a
    conversation id to its stored entries in seq order; ``entry_agent`` and
    ``entry_tenant`` give each entry id's ``agent_id`` (the owner id, SPEC
    §5) and tenant columns. ``columns`` holds the conversations whose
    ``title`` / ``updated_at`` columns differ from their blob (a rename from
    0.59.1 on): ``{conversation id: {"title": ..., "updatedAt": epoch ms}}``;
    a writer applies them after the rows, as the harness's UPDATE did. Treat
    the dicts as read-only: messages are shared between blobs and entries.
    ``truth_records`` are the simulator's :class:`~poncho_replay.simulate.truth.Truth`
    records (empty for a fleet read from a store), :attr:`truth` their DataFrame.
    """

    agent_id: str
    conversations: list[JsonDict]
    entries: dict[str, list[JsonDict]]
    entry_agent: dict[str, str]
    entry_tenant: dict[str, str]
    events: list[Event] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    columns: dict[str, JsonDict] = field(default_factory=dict)
    truth_records: list[Truth] = field(default_factory=list)

    @property
    def truth(self) -> pd.DataFrame:
        """What the simulator did that can make each log and blob differ: the audit's causes, measured against.

        Columns ``conversation_id, cause, seq, detail, fields`` (see
        :mod:`poncho_replay.simulate.truth`), one row per behaviour, in the
        order they happened.
        """
        return truth_df(self.truth_records)

    @property
    def entry_count(self) -> int:
        """How many entry rows the fleet holds."""
        return sum(len(v) for v in self.entries.values())

    def column_updates(self) -> list[tuple[str, str, str]]:
        """``(title, updated_at ISO-8601, conversation_id)`` per row whose columns moved apart from its blob."""
        return [(c["title"], harness_layout.iso_ms(c["updatedAt"]), cid) for cid, c in self.columns.items()]

    def entry_rows(self) -> Iterator[tuple[str, str, str, JsonDict]]:
        """``(conversation_id, agent_id, tenant_id, entry)`` for every entry, by conversation then seq."""
        for cid, log in self.entries.items():
            for e in log:
                yield cid, self.entry_agent[e["id"]], self.entry_tenant[e["id"]], e

    @classmethod
    def from_simulator(cls, sim: Simulator, agent_id: str = "poncho-sim-agent") -> Fleet:
        """The data a :class:`DictBackend`-backed simulator wrote."""
        sim.flush()
        backend = sim.backend
        if not isinstance(backend, DictBackend):
            raise TypeError("Fleet.from_simulator needs a DictBackend; read a real store with its own loader")
        return cls(
            agent_id=agent_id,
            conversations=list(backend.blobs.values()),
            entries={cid: log for cid, log in backend.entries.items() if log},
            entry_agent=backend.entry_agents,
            entry_tenant=backend.entry_tenants,
            events=sim.events,
            logs=sim.logs,
            columns=dict(backend.columns),
            truth_records=list(sim.truth),
        )

    @classmethod
    def from_store(
        cls, store: ConversationStore, conversation_ids: Iterable[str], agent_id: str = "poncho-sim-agent"
    ) -> Fleet:
        """The blobs (as stored: read cutover off) and logs of conversations in a real store."""
        before = getattr(store, "read_cutover", None)
        store.read_cutover = False  # type: ignore[attr-defined]
        try:
            convs = [store.get_with_archive(cid).to_dict() for cid in conversation_ids]  # type: ignore[union-attr]
        finally:
            store.read_cutover = before  # type: ignore[attr-defined]
        entries = {c["conversationId"]: [entry_to_dict(e) for e in store.read_entries(c["conversationId"])] for c in convs}
        agents = {e["id"]: c["ownerId"] for c in convs for e in entries[c["conversationId"]]}
        tenants = {e["id"]: c.get("tenantId") or "__default__" for c in convs for e in entries[c["conversationId"]]}
        return cls(agent_id, convs, {k: v for k, v in entries.items() if v}, agents, tenants)

    def to_sqlite(self, path: str | Path) -> None:
        """Write a harness-layout SQLite file (migrations 1-8, JSON as TEXT, ISO timestamps)."""
        con = sqlite3.connect(path)
        try:
            harness_layout.create_sqlite(con, version=8)
            harness_layout.write_sqlite(con, self.conversations, self.entries, agent_id=self.agent_id)
            con.executemany("UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?", self.column_updates())
            con.commit()
        finally:
            con.close()

    def to_postgres(self, conn: Any, schema: str, *, jsonb: harness_layout.JsonbShape = "string") -> None:
        """Create ``schema`` with the harness tables (JSONB, TIMESTAMP) and write the fleet into it.

        JSONB values are string scalars by default, as the harness writes them
        (``jsonb="object"`` or ``"mixed"`` for databases other tools wrote).
        """
        harness_layout.create_postgres(conn, schema, version=8)
        harness_layout.write_postgres(
            conn, schema, self.conversations, self.entries, agent_id=self.agent_id, jsonb=jsonb
        )
        from psycopg import sql

        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("UPDATE {}.conversations SET title = %s, updated_at = %s WHERE id = %s").format(
                    sql.Identifier(schema)
                ),
                self.column_updates(),
            )
        conn.commit()
