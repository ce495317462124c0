"""The ConversationStore conformance suite (SPEC §4), shipped with the package.

Every store runs the same tests: subclass :class:`StoreContract` in a class
whose name starts with ``Test`` and implement :meth:`StoreContract.make_store`::

    from poncho_replay.store import MemoryStore
    from poncho_replay.testing.store_contract import StoreContract

    class TestMemoryStore(StoreContract):
        def make_store(self, tmp_path, **options):
            return MemoryStore(**options)

``options`` are ``read_cutover``, ``clock`` (epoch ms) and ``policy`` (a
harness release, SPEC §7); a store under test must honour all three, and
``policy`` and ``read_cutover`` must stay settable attributes. Expected
values are written out from the SPEC by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poncho_replay.dualwrite import (
    assistant_amendment_entry,
    assistant_message_entry,
    callback_started_entry,
    compaction_entry,
    harness_message_entries,
    subagent_result_entry,
    user_message_entry,
)
from poncho_replay.errors import BadEntryError
from poncho_replay.models import JsonDict, Message, parse_new_entry
from poncho_replay.policy import PolicyError, resolve_policy
from poncho_replay.store.base import ConversationStore

__all__ = ["FakeClock", "StoreContract"]

T0 = 1_772_631_000_000
"""2026-03-04T13:30:00Z in epoch ms, the sample database's first day."""


class FakeClock:
    """A settable "now" in epoch ms, so timestamps in tests are exact."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def msg(role: str, content: Any, **metadata: Any) -> JsonDict:
    """A harness message; metadata only when given."""
    m: JsonDict = {"role": role, "content": content}
    if metadata:
        m["metadata"] = metadata
    return m


def with_id(entry_id: str, entry: JsonDict) -> JsonDict:
    """A new entry with a fixed id (tests need ids they can name)."""
    return {"id": entry_id, **entry}


def harness(entry_id: str, role: str, text: str, turn: str = "t1") -> JsonDict:
    return with_id(entry_id, harness_message_entries([msg(role, text)], turn)[0])


def result(subagent_id: str, text: str) -> JsonDict:
    return {
        "subagentId": subagent_id,
        "task": "look it up",
        "status": "completed",
        "result": text,
        "timestamp": T0,
    }


class StoreContract:
    """Tests every ConversationStore must pass. Not collected itself (no ``Test`` prefix)."""

    def make_store(self, tmp_path: Path, **options: Any) -> ConversationStore:
        """A fresh, empty store honouring ``read_cutover`` and ``clock``."""
        raise NotImplementedError

    # --- fixtures ---------------------------------------------------------------------

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def open_store(self, tmp_path: Path, clock: FakeClock) -> Iterator[Any]:
        """``open_store(**options)`` -> a store (closed after the test)."""
        opened: list[Any] = []

        def _open(**options: Any) -> Any:
            options.setdefault("clock", clock)
            store = self.make_store(tmp_path, **options)
            opened.append(store)
            return store

        yield _open
        for store in opened:
            getattr(store, "close", lambda: None)()

    @pytest.fixture
    def store(self, open_store: Any) -> Any:
        """A store with the read cutover forced off: the blob exactly as stored."""
        return open_store(read_cutover=False)

    @pytest.fixture
    def cutover_store(self, open_store: Any) -> Any:
        """A store with the 0.58 read cutover forced on."""
        return open_store(read_cutover=True)

    # --- appendEntries ----------------------------------------------------------------

    def test_empty_batch_is_a_no_op(self, store: Any) -> None:
        assert store.append_entries("c1", "agent", None, []) == []
        assert store.read_entries("c1") == []

    def test_append_assigns_consecutive_seqs_and_one_created_at(
        self, store: Any, clock: FakeClock
    ) -> None:
        clock.now = T0 + 42
        stored = store.append_entries(
            "c1", "agent", None, [harness("a", "user", "q"), harness("b", "assistant", "r")]
        )
        assert [(e.id, e.seq, e.created_at) for e in stored] == [
            ("a", 1, T0 + 42),
            ("b", 2, T0 + 42),
        ]
        clock.now = T0 + 99
        more = store.append_entries("c1", "agent", None, [harness("c", "user", "q2")])
        assert [(e.id, e.seq, e.created_at) for e in more] == [("c", 3, T0 + 99)]

    def test_seq_spaces_are_per_conversation(self, store: Any) -> None:
        store.append_entries(
            "c1", "agent", None, [harness("a", "user", "x"), harness("b", "user", "y")]
        )
        other = store.append_entries("c2", "agent", "t", [harness("c", "user", "z")])
        assert other[0].seq == 1
        assert [e.seq for e in store.read_entries("c1")] == [1, 2]

    def test_returned_entries_equal_what_is_read_back(self, store: Any) -> None:
        entry = with_id(
            "u1",
            user_message_entry(
                msg("user", [{"type": "text", "text": "hi"}], id="m1", _subagentCallback=True), "t1"
            ),
        )
        entry["extraKey"] = {"kept": [1, 2]}
        stored = store.append_entries("c1", "owner-a", None, [entry])
        read = store.read_entries("c1")
        assert [e.to_dict() for e in read] == [e.to_dict() for e in stored]
        assert read[0].to_dict() == {**entry, "seq": 1, "createdAt": T0}

    def test_every_entry_type_round_trips(self, store: Any) -> None:
        batch = [
            with_id("u", user_message_entry(msg("user", "hidden"), "t1", hidden=True)),
            with_id("a", assistant_message_entry(msg("assistant", "hi"), "t1", "run1")),
            with_id("am", assistant_amendment_entry("a", " more")),
            harness("h", "user", "hidden"),
            with_id(
                "c",
                compaction_entry(msg("user", "summary"), 4, tokens_before=1000, tokens_after=100),
            ),
            with_id("s", subagent_result_entry(result("sa1", "done"))),
            with_id("cb", callback_started_entry([6])),
        ]
        store.append_entries("c1", "agent", None, batch)
        read = store.read_entries("c1")
        assert [e.to_dict() for e in read] == [
            {**e, "seq": i + 1, "createdAt": T0} for i, e in enumerate(batch)
        ]

    # --- readEntries ------------------------------------------------------------------

    @pytest.fixture
    def log(self, store: Any) -> Any:
        store.append_entries(
            "c1",
            "agent",
            None,
            [
                with_id("u1", user_message_entry(msg("user", "q1"), "t1")),
                harness("h1", "user", "q1"),
                harness("h2", "assistant", "r1"),
                with_id("a1", assistant_message_entry(msg("assistant", "r1"), "t1", "run1")),
                with_id("u2", user_message_entry(msg("user", "q2"), "t2")),
                harness("h3", "user", "q2"),
            ],
        )
        return store

    def test_read_entries_in_seq_order(self, log: Any) -> None:
        assert [e.id for e in log.read_entries("c1")] == ["u1", "h1", "h2", "a1", "u2", "h3"]

    def test_types_filter_and_empty_types_means_all(self, log: Any) -> None:
        assert [e.seq for e in log.read_entries("c1", types=["harness_message"])] == [2, 3, 6]
        assert [
            e.seq for e in log.read_entries("c1", types=["user_message", "assistant_message"])
        ] == [1, 4, 5]
        assert len(log.read_entries("c1", types=[])) == 6

    def test_after_seq_then_limit(self, log: Any) -> None:
        assert [e.seq for e in log.read_entries("c1", after_seq=4)] == [5, 6]
        assert [e.seq for e in log.read_entries("c1", after_seq=0)] == [1, 2, 3, 4, 5, 6]
        assert [e.seq for e in log.read_entries("c1", limit=2)] == [1, 2]
        assert log.read_entries("c1", limit=0) == []
        assert [
            e.seq for e in log.read_entries("c1", types=["harness_message"], after_seq=2, limit=1)
        ] == [3]

    def test_unknown_conversation_reads_empty(self, log: Any) -> None:
        assert log.read_entries("nope") == []

    # --- bad input: the whole batch is rejected, nothing written -----------------------

    def test_unknown_type_rejects_the_batch(self, log: Any) -> None:
        with pytest.raises(BadEntryError) as err:
            log.append_entries(
                "c1", "agent", None, [harness("ok", "user", "x"), {"id": "z", "type": "telepathy"}]
            )
        assert err.value.field == "type" and err.value.conversation_id == "c1"
        assert [e.seq for e in log.read_entries("c1")] == [1, 2, 3, 4, 5, 6]

    def test_missing_required_field_rejects_the_batch(self, log: Any) -> None:
        bad = {"id": "z", "type": "compaction", "summaryMessage": msg("user", "s")}
        with pytest.raises(BadEntryError) as err:
            log.append_entries("c1", "agent", None, [harness("ok", "user", "x"), bad])
        assert err.value.field == "firstKeptSeq"
        assert "missing" in str(err.value)
        assert len(log.read_entries("c1")) == 6

    def test_missing_id_rejects_the_batch(self, log: Any) -> None:
        with pytest.raises(BadEntryError) as err:
            log.append_entries(
                "c2", "agent", None, [harness_message_entries([msg("user", "x")], "t")[0]]
            )
        assert err.value.field == "id"
        assert log.read_entries("c2") == []

    def test_id_already_stored_rejects_the_batch(self, log: Any) -> None:
        # Ids are unique across the whole table, not per conversation.
        with pytest.raises(BadEntryError) as err:
            log.append_entries(
                "c2", "agent", None, [harness("fresh", "user", "x"), harness("h2", "user", "y")]
            )
        assert "h2" in str(err.value) and err.value.field == "id"
        assert log.read_entries("c2") == []
        assert log.append_entries("c2", "agent", None, [harness("fresh", "user", "x")])[0].seq == 1

    def test_id_twice_in_one_batch_rejects_the_batch(self, store: Any) -> None:
        with pytest.raises(BadEntryError):
            store.append_entries(
                "c1", "agent", None, [harness("d", "user", "x"), harness("d", "user", "y")]
            )
        assert store.read_entries("c1") == []

    @pytest.mark.parametrize("bad", ["x", [1], 5, None, {}], ids=repr)
    def test_an_entry_that_is_not_an_object_rejects_the_batch(self, store: Any, bad: Any) -> None:
        with pytest.raises(BadEntryError) as err:
            store.append_entries("c1", "agent", None, [harness("ok", "user", "x"), bad])
        assert err.value.conversation_id == "c1"
        assert store.read_entries("c1") == []

    def test_a_value_json_cannot_hold_rejects_the_batch(self, store: Any) -> None:
        looped = harness("loop", "user", "x")
        looped["self"] = looped
        for bad in ({**harness("obj", "user", "x"), "extra": object()}, looped):
            with pytest.raises(BadEntryError, match="not JSON"):
                store.append_entries("c1", "agent", None, [harness("ok", "user", "x"), bad])
        assert store.read_entries("c1") == []

    def test_a_bad_entry_last_in_a_batch_of_100_writes_nothing(self, store: Any) -> None:
        batch = [harness(f"h{i}", "user", "x") for i in range(99)]
        with pytest.raises(BadEntryError):
            store.append_entries("c1", "agent", None, [*batch, {"id": "z", "type": "telepathy"}])
        assert store.read_entries("c1") == []
        stored = store.append_entries("c1", "agent", None, batch)
        assert [e.seq for e in stored] == list(range(1, 100))

    def test_entries_given_as_models_append_like_their_dicts(self, store: Any) -> None:
        entry = harness("m", "user", "x")
        stored = store.append_entries("c1", "agent", None, [parse_new_entry(entry)])
        assert stored[0].to_dict() == {**entry, "seq": 1, "createdAt": T0}
        assert [e.to_dict() for e in store.read_entries("c1")] == [stored[0].to_dict()]

    # --- create / get / update ----------------------------------------------------------

    def test_create_defaults(self, store: Any) -> None:
        conv = store.create()
        assert conv.to_dict() == {
            "conversationId": conv.conversation_id,
            "title": "New conversation",
            "messages": [],
            "ownerId": "local-owner",
            "tenantId": None,
            "createdAt": T0,
            "updatedAt": T0,
        }
        assert store.get(conv.conversation_id).to_dict() == conv.to_dict()

    @pytest.mark.parametrize(
        ("given", "stored"),
        [("  Trip  ", "Trip"), ("   ", "New conversation"), ("", "New conversation")],
    )
    def test_create_normalises_titles(self, store: Any, given: str, stored: str) -> None:
        conv = store.create("o", given)
        assert conv.title == stored
        assert store.list_summaries()[0].title == stored

    def test_create_with_init(self, store: Any) -> None:
        parent = store.create("o", "parent", "northwind")
        child = store.create(
            "o",
            "thread",
            "northwind",
            {
                "messages": [msg("user", "q")],
                "parentConversationId": parent.conversation_id,
                "parentMessageId": "m9",
                "threadMeta": {"snapshotLength": 1},
            },
        )
        got = store.get(child.conversation_id).to_dict()
        assert got["messages"] == [msg("user", "q")]
        assert (got["parentConversationId"], got["parentMessageId"], got["threadMeta"]) == (
            parent.conversation_id,
            "m9",
            {"snapshotLength": 1},
        )
        assert got["tenantId"] == "northwind"
        assert store.get_status_snapshot(child.conversation_id).message_count == 1

    def test_unknown_ids(self, store: Any) -> None:
        assert store.get("nope") is None
        assert store.get_with_archive("nope") is None
        assert store.get_status_snapshot("nope") is None
        assert store.rename("nope", "x") is None
        assert store.delete("nope") is False
        assert store.clear_callback_lock("nope") is None
        assert store.append_subagent_result("nope", result("s", "r")) is None
        assert store.list_summaries() == []

    def test_update_stamps_updated_at_on_the_object(self, store: Any, clock: FakeClock) -> None:
        conv = store.create("o", "t")
        clock.now = T0 + 5_000
        store.update(conv)
        assert conv.updated_at == T0 + 5_000
        assert store.get(conv.conversation_id).updated_at == T0 + 5_000
        assert store.get(conv.conversation_id).created_at == T0

    def test_heavy_fields_and_archive_rules(self, store: Any) -> None:
        conv = store.create("o", "t").to_dict()
        cid = conv["conversationId"]
        conv["_harnessMessages"] = [msg("user", "h")]
        conv["_continuationMessages"] = [msg("assistant", "c")]
        conv["_toolResultArchive"] = {"tr1": {"payload": "big"}}
        store.update(conv)
        light = store.get(cid).to_dict()
        assert "_toolResultArchive" not in light
        assert light["_harnessMessages"] == [msg("user", "h")]
        assert light["_continuationMessages"] == [msg("assistant", "c")]
        assert store.get_with_archive(cid).to_dict()["_toolResultArchive"] == {
            "tr1": {"payload": "big"}
        }
        # A light get -> update keeps the archive.
        store.update(store.get(cid))
        assert store.get_with_archive(cid).tool_result_archive == {"tr1": {"payload": "big"}}
        # A new archive replaces it.
        full = store.get_with_archive(cid).to_dict()
        full["_toolResultArchive"] = {"tr2": {}}
        store.update(full)
        assert store.get_with_archive(cid).tool_result_archive == {"tr2": {}}
        # Heavy fields dropped from the object are dropped from the store (except the archive).
        bare = store.get(cid).to_dict()
        del bare["_harnessMessages"], bare["_continuationMessages"]
        store.update(bare)
        again = store.get_with_archive(cid).to_dict()
        assert "_harnessMessages" not in again and "_continuationMessages" not in again
        assert again["_toolResultArchive"] == {"tr2": {}}

    def test_update_unknown_conversation_inserts_it(self, store: Any, clock: FakeClock) -> None:
        clock.now = T0 + 7
        store.update(
            {
                "conversationId": "ext",
                "title": "t",
                "messages": [],
                "ownerId": "o",
                "tenantId": None,
                "createdAt": 0,
                "updatedAt": 1,
            }
        )
        got = store.get("ext")
        assert (got.updated_at, got.created_at) == (
            T0 + 7,
            T0 + 7,
        )  # falsy createdAt takes updatedAt

    def test_unknown_fields_survive(self, store: Any) -> None:
        conv = store.create("o", "t").to_dict()
        conv["futureField"] = {"x": [1, None]}
        conv["messages"] = [msg("user", "hi", id="m1", _richToolResults=[1])]
        store.update(conv)
        got = store.get(conv["conversationId"]).to_dict()
        assert got["futureField"] == {"x": [1, None]}
        assert got["messages"] == [msg("user", "hi", id="m1", _richToolResults=[1])]

    # --- summaries, status, threads ------------------------------------------------------

    @pytest.fixture
    def fleet(self, store: Any, clock: FakeClock) -> dict[str, str]:
        ids = {}
        for i, (name, owner, tenant) in enumerate(
            [
                ("a", "ines", None),
                ("b", "kenji", "northwind"),
                ("c", "ines", "northwind"),
                ("d", "kenji", None),
            ]
        ):
            clock.now = T0 + 1000 * i
            ids[name] = store.create(owner, name, tenant).conversation_id
        clock.now = T0 + 10_000
        store.rename(ids["a"], "a")  # a becomes the newest
        return ids

    def test_summaries_newest_first(self, store: Any, fleet: dict[str, str]) -> None:
        assert [s.title for s in store.list_summaries()] == ["a", "d", "c", "b"]
        assert [s.updated_at for s in store.list_summaries()] == [
            T0 + 10_000,
            T0 + 3000,
            T0 + 2000,
            T0 + 1000,
        ]

    def test_summary_filters(self, store: Any, fleet: dict[str, str]) -> None:
        assert [s.title for s in store.list_summaries(tenant_id=None)] == ["a", "d"]
        assert [s.title for s in store.list_summaries(tenant_id="northwind")] == ["c", "b"]
        assert [s.title for s in store.list_summaries("ines")] == ["a", "c"]
        assert [s.title for s in store.list_summaries("kenji", "northwind")] == ["b"]
        assert [s.title for s in store.list_summaries("")] == ["a", "d", "c", "b"]
        assert store.list_summaries(tenant_id="elsewhere") == []

    def test_summary_shape(self, store: Any, fleet: dict[str, str]) -> None:
        conv = store.get(fleet["c"]).to_dict()
        conv["pendingApprovals"] = [{"approvalId": "x"}]
        conv["messages"] = [msg("user", "1"), msg("assistant", "2")]
        conv["channelMeta"] = {"platform": "slack"}
        store.update(conv)
        by_title = {s.title: s.to_dict() for s in store.list_summaries()}
        assert by_title["c"] == {
            "conversationId": fleet["c"],
            "title": "c",
            "updatedAt": T0 + 10_000,
            "createdAt": T0 + 2000,
            "ownerId": "ines",
            "tenantId": "northwind",
            "messageCount": 2,
            "hasPendingApprovals": True,
            "channelMeta": {"platform": "slack"},
        }
        assert by_title["d"]["tenantId"] is None and by_title["d"]["hasPendingApprovals"] is False
        assert "parentConversationId" not in by_title["d"] and "channelMeta" not in by_title["d"]

    def test_list_returns_full_conversations_in_summary_order(
        self, store: Any, fleet: dict[str, str]
    ) -> None:
        convs = store.list(tenant_id="northwind")
        assert [c.title for c in convs] == ["c", "b"]
        assert convs[0].to_dict() == store.get(fleet["c"]).to_dict()

    def test_status_snapshot_reads_columns(self, store: Any, fleet: dict[str, str]) -> None:
        conv = store.get(fleet["b"]).to_dict()
        conv.update(
            runStatus="running",
            _continuationMessages=[msg("user", "go on")],
            parentConversationId="p1",
        )
        store.update(conv)
        assert store.get_status_snapshot(fleet["b"]).to_dict() == {
            "conversationId": fleet["b"],
            "updatedAt": T0 + 10_000,
            "messageCount": 0,
            "hasPendingApprovals": False,
            "hasContinuationMessages": True,
            "parentConversationId": "p1",
            "ownerId": "kenji",
            "tenantId": "northwind",
            "runStatus": "running",
        }

    @pytest.mark.parametrize(
        ("run_status", "shown"), [("idle", "idle"), ("stopped", None), (None, None)]
    )
    def test_status_snapshot_run_status(
        self, store: Any, fleet: dict[str, str], run_status: Any, shown: Any
    ) -> None:
        conv = store.get(fleet["d"]).to_dict()
        if run_status is not None:
            conv["runStatus"] = run_status
        store.update(conv)
        snap = store.get_status_snapshot(fleet["d"])
        assert snap.run_status == shown
        assert snap.tenant_id is None and snap.has_continuation_messages is False

    def test_list_threads(self, store: Any, clock: FakeClock) -> None:
        parent = store.create("o", "parent").conversation_id
        clock.now = T0 + 1
        store.create(
            "o", "old thread", None, {"parentConversationId": parent, "parentMessageId": "m1"}
        )
        clock.now = T0 + 2
        store.create("o", "subagent", None, {"parentConversationId": parent})
        clock.now = T0 + 3
        newest = store.create(
            "o", "new thread", None, {"parentConversationId": parent, "parentMessageId": "m2"}
        )
        store.create(
            "o", "elsewhere", None, {"parentConversationId": "other", "parentMessageId": "m3"}
        )
        threads = store.list_threads(parent)
        assert [t.title for t in threads] == ["new thread", "old thread"]
        assert threads[0].parent_conversation_id == parent
        assert threads[0].conversation_id == newest.conversation_id
        assert store.list_threads("none") == []

    # --- rename, delete, subagent results, callback lock ---------------------------------

    def test_rename(self, store: Any, clock: FakeClock) -> None:
        cid = store.create("o", "old").conversation_id
        clock.now = T0 + 50
        renamed = store.rename(cid, "  new  ")
        assert (renamed.title, renamed.updated_at) == ("new", T0 + 50)
        assert store.get(cid).title == "new"
        assert store.rename(cid, " ").title == "New conversation"

    def test_delete(self, store: Any) -> None:
        cid = store.create("o", "t").conversation_id
        store.append_entries(cid, "o", None, [harness("h", "user", "x")])
        assert store.delete(cid) is True
        assert store.get(cid) is None and store.list_summaries() == []
        assert store.delete(cid) is False
        # Upstream deletes only the conversation row: the log stays.
        assert [e.id for e in store.read_entries(cid)] == ["h"]

    def test_append_subagent_result(self, store: Any) -> None:
        cid = store.create("o", "t").conversation_id
        store.append_subagent_result(cid, result("s1", "one"))
        store.append_subagent_result(cid, result("s2", "two"))
        assert [r["subagentId"] for r in store.get(cid).to_dict()["pendingSubagentResults"]] == [
            "s1",
            "s2",
        ]

    def test_clear_callback_lock_removes_the_key(self, store: Any, clock: FakeClock) -> None:
        conv = store.create("o", "t").to_dict()
        conv["runningCallbackSince"] = T0
        store.update(conv)
        clock.now = T0 + 9
        cleared = store.clear_callback_lock(conv["conversationId"])
        assert "runningCallbackSince" not in cleared.to_dict() and cleared.updated_at == T0 + 9
        assert "runningCallbackSince" not in store.get(conv["conversationId"]).to_dict()

    # --- the read cutover and its kill-switch -------------------------------------------

    @pytest.fixture
    def logged(self, cutover_store: Any) -> tuple[Any, str]:
        """A conversation whose blob and log disagree everywhere the cutover looks."""
        conv = cutover_store.create("o", "t").to_dict()
        cid = conv["conversationId"]
        conv["messages"] = [msg("user", "BLOB")]
        conv["_harnessMessages"] = [msg("user", "BLOB")]
        conv["pendingSubagentResults"] = [result("blob", "BLOB")]
        conv["pendingApprovals"] = [{"approvalId": "keep"}]
        conv["_continuationMessages"] = [msg("user", "keep")]
        cutover_store.update(conv)
        cutover_store.append_entries(
            cid,
            "o",
            None,
            [
                with_id("u1", user_message_entry(msg("user", "q1"), "t1")),  # 1
                harness("h1", "user", "q1"),  # 2
                harness("h2", "assistant", "r1"),  # 3
                with_id("a1", assistant_message_entry(msg("assistant", "r1"), "t1", "run1")),  # 4
                with_id("am", assistant_amendment_entry("a1", " +more")),  # 5
                with_id("s1", subagent_result_entry(result("sa1", "first"))),  # 6
                with_id("s2", subagent_result_entry(result("sa2", "second"))),  # 7
                with_id("cb", callback_started_entry([6])),  # 8
                with_id(
                    "hu",
                    user_message_entry(msg("user", "[Subagent Result] first"), "t2", hidden=True),
                ),  # 9
                with_id("c1", compaction_entry(msg("user", "SUMMARY"), 3)),  # 10
                harness("h3", "user", "q2", "t3"),  # 11
            ],
        )
        return cutover_store, cid

    def test_cutover_rebuilds_three_fields(self, logged: tuple[Any, str]) -> None:
        store, cid = logged
        for got in (store.get(cid).to_dict(), store.get_with_archive(cid).to_dict()):
            # LLM context: the latest compaction's summary, then harness messages with seq >= 3.
            assert got["_harnessMessages"] == [
                msg("user", "SUMMARY"),
                msg("assistant", "r1"),
                msg("user", "q2"),
            ]
            # Display: visible user messages and amended assistant messages.
            assert got["messages"] == [msg("user", "q1"), msg("assistant", "r1 +more")]
            # Pending: results whose seq no callback consumed.
            assert got["pendingSubagentResults"] == [result("sa2", "second")]
            # Never rebuilt.
            assert got["pendingApprovals"] == [{"approvalId": "keep"}]
            assert got["_continuationMessages"] == [msg("user", "keep")]

    def test_cutover_off_returns_the_blob_and_nothing_was_written_back(
        self, logged: tuple[Any, str]
    ) -> None:
        store, cid = logged
        store.get(cid)
        store.read_cutover = False
        got = store.get(cid).to_dict()
        assert got["messages"] == [msg("user", "BLOB")]
        assert got["_harnessMessages"] == [msg("user", "BLOB")]
        assert got["pendingSubagentResults"] == [result("blob", "BLOB")]

    def test_kill_switch_follows_the_environment_unless_forced(
        self, logged: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store, cid = logged
        monkeypatch.setenv("PONCHO_READ_ENTRIES", "0")
        store.read_cutover = None
        assert store.get(cid).to_dict()["messages"] == [msg("user", "BLOB")]
        store.read_cutover = True  # an explicit setting beats the environment
        assert store.get(cid).to_dict()["messages"] == [
            msg("user", "q1"),
            msg("assistant", "r1 +more"),
        ]
        monkeypatch.setenv("PONCHO_READ_ENTRIES", "1")  # anything but "0" keeps it on
        store.read_cutover = None
        assert store.get(cid).to_dict()["messages"] == [
            msg("user", "q1"),
            msg("assistant", "r1 +more"),
        ]
        monkeypatch.delenv("PONCHO_READ_ENTRIES")
        store.read_cutover = False
        assert store.get(cid).to_dict()["messages"] == [msg("user", "BLOB")]

    def test_cutover_without_entries_keeps_the_blob(self, cutover_store: Any) -> None:
        conv = cutover_store.create("o", "t").to_dict()
        conv["messages"] = [msg("user", "only blob")]
        cutover_store.update(conv)
        assert cutover_store.get(conv["conversationId"]).to_dict()["messages"] == [
            msg("user", "only blob")
        ]

    def test_cutover_with_only_harness_entries_empties_the_display(
        self, cutover_store: Any
    ) -> None:
        conv = cutover_store.create("o", "t").to_dict()
        conv["messages"] = [msg("user", "BLOB")]
        cutover_store.update(conv)
        cutover_store.append_entries(
            conv["conversationId"], "o", None, [harness("h", "user", "from log")]
        )
        got = cutover_store.get(conv["conversationId"]).to_dict()
        # A non-empty log replaces the blob even where it has nothing to say.
        assert got["messages"] == [] and got["_harnessMessages"] == [msg("user", "from log")]

    # --- what each release's get() serves (SPEC §7) ---------------------------------------

    def test_default_policy_is_0_58(self, store: Any) -> None:
        assert store.policy == "0.58"
        assert store.read_policy.reads == "full"

    @pytest.mark.parametrize("policy", ["0.58.1", "0.59", "0.60.0-rc.1", "latest"])
    def test_unknown_release_is_refused_at_once(
        self, open_store: Any, store: Any, policy: str
    ) -> None:
        with pytest.raises(PolicyError):
            open_store(policy=policy)
        with pytest.raises(PolicyError):
            store.policy = policy
        assert store.policy == "0.58"  # a refused policy leaves the store as it was

    @pytest.mark.parametrize("policy", ["0.58", "0.58.0"])
    def test_0_58_reads_three_fields_from_all_entries(
        self, logged: tuple[Any, str], policy: str
    ) -> None:
        store, cid = logged
        store.policy = policy
        got = store.get(cid).to_dict()
        assert got["messages"] == [msg("user", "q1"), msg("assistant", "r1 +more")]
        assert got["_harnessMessages"] == [
            msg("user", "SUMMARY"),
            msg("assistant", "r1"),
            msg("user", "q2"),
        ]
        assert got["pendingSubagentResults"] == [result("sa2", "second")]

    @pytest.mark.parametrize("policy", ["0.59.0", "0.59.2", "0.59.3", "0.61.2", "current"])
    def test_0_59_reads_only_pending_results(self, logged: tuple[Any, str], policy: str) -> None:
        store, cid = logged
        store.policy = policy
        for got in (store.get(cid).to_dict(), store.get_with_archive(cid).to_dict()):
            assert got["messages"] == [msg("user", "BLOB")]
            assert got["_harnessMessages"] == [msg("user", "BLOB")]
            assert got["pendingSubagentResults"] == [result("sa2", "second")]

    @pytest.mark.parametrize("policy", ["blob", "0.57.0", "0.56"])
    def test_releases_before_the_log_read_the_blob(
        self, logged: tuple[Any, str], policy: str
    ) -> None:
        store, cid = logged
        store.policy = policy
        got = store.get(cid).to_dict()
        assert got["messages"] == [msg("user", "BLOB")]
        assert got["_harnessMessages"] == [msg("user", "BLOB")]
        assert got["pendingSubagentResults"] == [result("blob", "BLOB")]

    @pytest.fixture
    def transcript_only(self, cutover_store: Any) -> tuple[Any, str]:
        """Blob results pending, and a log holding transcript entries only (no queue entries)."""
        conv = cutover_store.create("o", "t").to_dict()
        conv["messages"] = [msg("user", "BLOB")]
        conv["pendingSubagentResults"] = [result("blob", "BLOB")]
        cutover_store.update(conv)
        cutover_store.append_entries(
            conv["conversationId"],
            "o",
            None,
            [
                with_id("u1", user_message_entry(msg("user", "q1"), "t1")),
                harness("h1", "user", "q1"),
            ],
        )
        return cutover_store, conv["conversationId"]

    @pytest.mark.parametrize(
        ("policy", "pending"),
        [
            ("0.58", []),  # any entry makes the log authoritative: nothing pending
            ("0.59.0", []),
            ("0.59.2", []),
            ("0.59.3", [result("blob", "BLOB")]),  # no queue entries: the blob's value stands
            ("current", [result("blob", "BLOB")]),
            ("blob", [result("blob", "BLOB")]),
        ],
    )
    def test_pending_results_of_a_log_without_queue_entries(
        self, transcript_only: tuple[Any, str], policy: str, pending: list[JsonDict]
    ) -> None:
        store, cid = transcript_only
        store.policy = policy
        assert store.get(cid).to_dict()["pendingSubagentResults"] == pending

    @pytest.mark.parametrize("policy", ["0.58", "0.59.0", "0.59.3", "current"])
    def test_kill_switch_under_every_release(
        self, logged: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, policy: str
    ) -> None:
        store, cid = logged
        store.policy, store.read_cutover = policy, None
        monkeypatch.setenv("PONCHO_READ_ENTRIES", "0")
        assert store.get(cid).to_dict()["pendingSubagentResults"] == [result("blob", "BLOB")]
        monkeypatch.delenv("PONCHO_READ_ENTRIES")
        assert store.get(cid).to_dict()["pendingSubagentResults"] == [result("sa2", "second")]

    def test_policy_may_be_a_resolved_read_policy(self, open_store: Any) -> None:
        store = open_store(policy=resolve_policy("0.59.3"), read_cutover=True)
        assert store.read_policy.reads == "pending_queue"
        cid = store.create("o", "t").conversation_id
        store.append_entries(
            cid, "o", None, [with_id("s1", subagent_result_entry(result("sa1", "r")))]
        )
        assert store.get(cid).to_dict()["pendingSubagentResults"] == [result("sa1", "r")]

    # --- what each release's rename writes (SPEC §6, §7) --------------------------------

    def _blob(self, store: Any, cid: str) -> JsonDict:
        """The stored blob as it is, whatever the store's release reads."""
        before = store.read_cutover
        store.read_cutover = False
        try:
            return store.get(cid).to_dict()
        finally:
            store.read_cutover = before

    def test_rename_0_58_writes_the_rebuilt_transcript_into_the_blob(
        self, logged: tuple[Any, str], clock: FakeClock
    ) -> None:
        # The 0.58.0 bug: rename is get -> update, and the get has rebuilt the transcript.
        store, cid = logged
        store.policy = "0.58"
        clock.now = T0 + 50
        renamed = store.rename(cid, "  New  ")
        assert (renamed.title, renamed.updated_at) == ("New", T0 + 50)
        blob = self._blob(store, cid)
        assert (blob["title"], blob["updatedAt"]) == ("New", T0 + 50)
        assert blob["messages"] == [msg("user", "q1"), msg("assistant", "r1 +more")]
        assert blob["_harnessMessages"] == [
            msg("user", "SUMMARY"),
            msg("assistant", "r1"),
            msg("user", "q2"),
        ]
        assert blob["pendingSubagentResults"] == [result("sa2", "second")]
        assert blob["pendingApprovals"] == [{"approvalId": "keep"}]

    def test_rename_0_59_0_still_goes_through_get_update(
        self, logged: tuple[Any, str], clock: FakeClock
    ) -> None:
        # 0.59.0 reads only the pending results from the log, so only they are written back.
        store, cid = logged
        store.policy = "0.59.0"
        clock.now = T0 + 50
        assert store.rename(cid, "New").title == "New"
        blob = self._blob(store, cid)
        assert (blob["title"], blob["updatedAt"]) == ("New", T0 + 50)
        assert blob["messages"] == [msg("user", "BLOB")]
        assert blob["_harnessMessages"] == [msg("user", "BLOB")]
        assert blob["pendingSubagentResults"] == [result("sa2", "second")]

    @pytest.mark.parametrize("policy", ["blob", "0.57.0"])
    def test_rename_before_the_log_is_get_update_of_the_blob(
        self, logged: tuple[Any, str], clock: FakeClock, policy: str
    ) -> None:
        store, cid = logged
        store.policy = policy
        clock.now = T0 + 50
        store.rename(cid, "New")
        blob = self._blob(store, cid)
        assert (blob["title"], blob["updatedAt"]) == ("New", T0 + 50)
        assert blob["messages"] == [msg("user", "BLOB")]
        assert blob["pendingSubagentResults"] == [result("blob", "BLOB")]

    @pytest.mark.parametrize("policy", ["0.59.1", "0.59.2"])
    def test_rename_0_59_1_updates_the_title_column_only(
        self, logged: tuple[Any, str], clock: FakeClock, policy: str
    ) -> None:
        store, cid = logged
        store.policy = policy
        clock.now = T0 + 50
        served = store.rename(cid, "  New  ")
        # Reads parse the blob: they keep showing the old title and updatedAt.
        assert (served.title, served.updated_at) == ("t", T0)
        assert (store.get(cid).title, store.get(cid).updated_at) == ("t", T0)
        blob = self._blob(store, cid)
        assert blob["messages"] == [msg("user", "BLOB")]
        assert blob["pendingSubagentResults"] == [result("blob", "BLOB")]
        # The columns moved.
        (summary,) = store.list_summaries()
        assert (summary.title, summary.updated_at) == ("New", T0 + 50)
        assert store.get_status_snapshot(cid).updated_at == T0 + 50

    @pytest.mark.parametrize("policy", ["0.59.3", "0.61.2", "current"])
    def test_rename_0_59_3_sets_the_title_in_column_and_blob(
        self, logged: tuple[Any, str], clock: FakeClock, policy: str
    ) -> None:
        store, cid = logged
        store.policy = policy
        clock.now = T0 + 50
        served = store.rename(cid, '  Ünïcode "quoted" ✈️  ')
        title = 'Ünïcode "quoted" ✈️'
        # The blob's title changes, its updatedAt does not; the updated_at column does.
        assert (served.title, served.updated_at) == (title, T0)
        blob = self._blob(store, cid)
        assert (blob["title"], blob["updatedAt"]) == (title, T0)
        assert blob["messages"] == [msg("user", "BLOB")]
        assert blob["pendingSubagentResults"] == [result("blob", "BLOB")]
        assert blob["pendingApprovals"] == [{"approvalId": "keep"}]
        (summary,) = store.list_summaries()
        assert (summary.title, summary.updated_at) == (title, T0 + 50)
        assert store.rename(cid, " ").title == "New conversation"

    @pytest.mark.parametrize("policy", ["0.58", "0.59.1", "current"])
    def test_rename_unknown_conversation(self, store: Any, policy: str) -> None:
        store.policy = policy
        assert store.rename("nope", "x") is None
        assert store.list_summaries() == []

    @pytest.mark.parametrize("policy", ["0.59.1", "current"])
    def test_rename_by_column_keeps_the_archive(self, store: Any, policy: str) -> None:
        conv = store.create("o", "t").to_dict()
        conv["_toolResultArchive"] = {"tr": {"size": 1}}
        store.update(conv)
        store.policy = policy
        store.rename(conv["conversationId"], "New")
        assert store.get_with_archive(conv["conversationId"]).tool_result_archive == {
            "tr": {"size": 1}
        }

    def test_get_modify_update_writes_the_rebuilt_transcript_back(
        self, logged: tuple[Any, str]
    ) -> None:
        # SPEC §6: under the 0.58 cutover every get -> modify -> update path
        # persists the log's view into the blob.
        store, cid = logged
        store.append_subagent_result(cid, result("sa3", "third"))
        store.read_cutover = False
        blob = store.get(cid).to_dict()
        assert blob["messages"] == [msg("user", "q1"), msg("assistant", "r1 +more")]
        assert blob["pendingSubagentResults"] == [result("sa2", "second"), result("sa3", "third")]

    # --- nobody outside can mutate stored state ------------------------------------------

    def test_objects_handed_out_or_in_are_copies(self, logged: tuple[Any, str]) -> None:
        store, cid = logged
        before = store.get_with_archive(cid).to_dict()
        got = store.get(cid)
        got.messages.append(got.messages[0])
        got.title = "changed"
        got.harness_messages[0].content = "changed"
        got.pending_subagent_results.clear()
        for entry in store.read_entries(cid):
            entry.id = "changed"
        assert store.get_with_archive(cid).to_dict() == before
        assert store.read_entries(cid)[0].id == "u1"

    def test_inputs_are_copied(self, store: Any) -> None:
        conv = store.create("o", "t").to_dict()
        conv["messages"] = [msg("user", "stored")]
        store.update(conv)
        conv["messages"][0]["content"] = "mutated after update"
        entry = harness("h", "user", "stored")
        store.append_entries(conv["conversationId"], "o", None, [entry])
        entry["message"]["content"] = "mutated after append"
        assert store.get(conv["conversationId"]).to_dict()["messages"] == [msg("user", "stored")]
        assert store.read_entries(conv["conversationId"])[0].message.content == "stored"

    def test_create_result_is_a_copy(self, store: Any) -> None:
        conv = store.create("o", "t")
        conv.messages.append(Message.model_validate(msg("user", "x")))
        conv.title = "changed"
        assert store.get(conv.conversation_id).title == "t"
        assert store.get(conv.conversation_id).messages == []

    def test_returned_entries_are_copies(self, store: Any) -> None:
        stored = store.append_entries("c1", "o", None, [harness("h", "user", "x")])
        stored[0].message.content = "changed"
        assert store.read_entries("c1")[0].message.content == "x"
