"""The simulator reproduces SPEC §5's write sites exactly, with each fault, deterministically.

Expected values are worked out by hand from SPEC §5 and each script.
"""

from __future__ import annotations

import os
import sqlite3
import uuid

import pytest

from poncho_replay.rebuild import (
    build_display_snapshot,
    build_llm_context,
    pending_subagent_results,
)
from poncho_replay.simulate import (
    Faults,
    Fleet,
    Simulator,
    StoreBackend,
    Turn,
    fleet,
    run_scenarios,
)
from poncho_replay.store import MemoryStore


def _types(sim: Simulator, cid: str) -> list[str]:
    return [e["type"] for e in sim.backend.read(cid)]


@pytest.fixture(params=["dict", "memory"])
def sim(request: pytest.FixtureRequest) -> Simulator:
    """A simulator on the fast dict backend and on the reference MemoryStore."""
    s = Simulator(seed=11)
    if request.param == "memory":
        s.backend = StoreBackend(MemoryStore("agent-x", read_cutover=False, clock=s.clock.tick))
    return s


def test_turn_writes_user_then_harness_then_assistant(sim: Simulator) -> None:
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("q", reply="r", tools=[("calc", "Let me see.", "4")]))
    log = sim.backend.read(cid)
    blob = sim.backend.get(cid, cutover=False)
    assert [e["type"] for e in log] == ["user_message"] + ["harness_message"] * 4 + ["assistant_message"]
    turn_id = blob["messages"][-1]["metadata"]["id"]
    assert {e["turnId"] for e in log} == {turn_id}
    assert log[0]["message"] == blob["messages"][0] and "hidden" not in log[0]
    assert [e["message"] for e in log[1:5]] == blob["_harnessMessages"]
    assert log[5]["message"] == blob["messages"][1]
    assert blob["messages"][1]["content"] == "Let me see.\n\nr"
    assert blob["messages"][1]["metadata"]["toolActivity"] == ["- done `calc`"]
    assert sim.logs == [f"[entries-parity] {cid} OK"]


def test_compaction_guesses_first_kept_seq_and_diff_is_approximate(sim: Simulator) -> None:
    cid = sim.create("owner-a", "T")
    for q in ("a", "b", "c"):
        sim.turn(cid, Turn(q, reply=q.upper()))
    sim.turn(cid, Turn("d", reply="D", compact_keep=2))
    log = sim.backend.read(cid)
    # harness seqs 2,3,6,7,10,11; keep 2 -> 10; user 13, compaction 14, then all 5 messages + bubble.
    assert [e["type"] for e in log[12:]] == ["user_message", "compaction"] + ["harness_message"] * 5 + ["assistant_message"]
    comp = log[13]
    assert comp["firstKeptSeq"] == 10 and comp["tokensBefore"] == 720
    blob = sim.backend.get(cid, cutover=False)
    assert [m["content"] for m in blob["_harnessMessages"][1:]] == ["c", "C", "d", "D"]
    assert [m["content"] for m in blob["compactedHistory"]] == ["a", "A", "b", "B"]
    assert any("harness-message diff approximate" in line for line in sim.logs)


def test_keep_more_than_logged_points_one_past_the_last(sim: Simulator) -> None:
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("a", reply="A"))
    sim.plan.force("finalize", "lost")
    sim.turn(cid, Turn("b", reply="B"))
    sim.turn(cid, Turn("c", reply="C", compact_keep=4))  # keeps 4, the log has 2 (seqs 2, 3)
    comp = next(e for e in sim.backend.read(cid) if e["type"] == "compaction")
    assert comp["firstKeptSeq"] == 4


def test_resume_amends_latest_assistant_message_or_pushes_fresh(sim: Simulator) -> None:
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("go", tools=[("deploy", "Approve?", None)]))
    sim.resume(cid, " Deployed.")
    log = sim.backend.read(cid)
    assert log[-1]["type"] == "assistant_amendment"
    assert log[-1]["targetEntryId"] == log[-2]["id"] and log[-1]["appendText"] == " Deployed."
    assert build_display_snapshot(log, 10).messages[-1]["content"] == "Approve? Deployed."
    assert sim.backend.get(cid, cutover=False)["_harnessMessages"][-1]["content"] == " Deployed."

    other = sim.create("owner-a", "U")
    sim.turn(other, Turn("go"))
    sim.resume(other, "Done.")
    last = sim.backend.read(other)[-1]
    assert last["type"] == "assistant_message" and last["turnId"] == f"resume-{other}"


def test_callback_turn_writes_no_harness_messages(sim: Simulator) -> None:
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("spawn", reply="ok"))
    sim.subagent_result(cid, "s1", "task", "found")
    sim.subagent_result(cid, "s1", "task", "again")  # same id twice: both consumed
    sim.callback(cid, "Summary.")
    log = sim.backend.read(cid)
    assert [e["type"] for e in log[4:]] == [
        "subagent_result", "subagent_result", "callback_started", "user_message", "user_message", "assistant_message"
    ]
    assert log[6]["consumedSeqs"] == [5, 6]
    assert all(e["hidden"] for e in log[7:9]) and log[7]["turnId"] == f"callback-1-{cid}"
    assert log[9]["turnId"] == f"callback-{cid}"
    blob = sim.backend.get(cid, cutover=False)
    assert blob["_harnessMessages"] == blob["messages"] and len(blob["messages"]) == 5
    assert blob["pendingSubagentResults"] == [] and pending_subagent_results(log) == []
    assert len(build_llm_context(log)) == 2


@pytest.mark.parametrize(("fate", "expected"), [
    ("lost", ["harness_message", "harness_message", "assistant_message"]),
    ("fail", ["harness_message", "harness_message", "assistant_message"]),
    ("duplicate", ["user_message", "user_message", "harness_message", "harness_message", "assistant_message"]),
])
def test_user_turn_faults(sim: Simulator, fate: str, expected: list[str]) -> None:
    cid = sim.create("owner-a", "T")
    sim.plan.force("user_turn", fate)  # type: ignore[arg-type]
    sim.turn(cid, Turn("hi", reply="yo"))
    log = sim.backend.read(cid)
    assert [e["type"] for e in log] == expected
    assert len({e["id"] for e in log}) == len(log)
    assert (f"[entries-dual-write] append failed for {cid}" in " ".join(sim.logs)) == (fate == "fail")
    assert [(ev.site, ev.fate) for ev in sim.events] == [("user_turn", fate)]
    assert len(sim.backend.get(cid, cutover=False)["messages"]) == 2  # the blob is unaffected


def test_reorder_lands_compaction_after_finalize(sim: Simulator) -> None:
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("a", reply="A"))
    sim.plan.force("compaction", "reorder")
    sim.turn(cid, Turn("b", reply="B", compact_keep=1))
    # pre-turn transcript 2, new one [summary, A, b, B] = 4: the length diff appends b and B.
    assert _types(sim, cid)[4:] == ["user_message", "harness_message", "harness_message", "assistant_message", "compaction"]
    assert sim.backend.read(cid)[-1]["firstKeptSeq"] == 3  # guessed before the finalize landed


def test_writeback_rewrites_stale_blob_only_when_on(sim: Simulator) -> None:
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("a", reply="A"))
    sim.turn(cid, Turn("b", reply="B", skip_final_update=True))
    sim.subagent_result(cid, "s1", "t", "r")
    assert [m["content"] for m in sim.backend.get(cid, cutover=False)["messages"]] == ["a", "A", "b"]
    sim.writeback = True
    sim.rename(cid, "  New  ")
    blob = sim.backend.get(cid, cutover=False)
    assert [m["content"] for m in blob["messages"]] == ["a", "A", "b", "B"]
    assert [m["content"] for m in blob["_harnessMessages"]] == ["a", "A", "b", "B"]
    assert blob["title"] == "New" and len(blob["pendingSubagentResults"]) == 1


def test_pre_dual_write_conversation_has_no_entries(sim: Simulator) -> None:
    cid = sim.create("owner-a", "T", dual_write=False)
    sim.turn(cid, Turn("a", reply="A"))
    sim.resume(cid, " more")
    assert sim.backend.read(cid) == [] and sim.logs == []


def test_thread_child_appends_copied_history() -> None:
    sim = Simulator(seed=2)
    parent = sim.create("owner-a", "P")
    sim.turn(parent, Turn("a", reply="A"))
    child = sim.thread(parent, "C")
    sim.turn(child, Turn("b", reply="B"))
    blob = sim.backend.get(child, cutover=False)
    assert blob["parentConversationId"] == parent
    assert blob["parentMessageId"] == sim.backend.get(parent, cutover=False)["messages"][1]["metadata"]["id"]
    assert _types(sim, child) == ["user_message"] + ["harness_message"] * 4 + ["assistant_message"]


def test_fleet_is_deterministic_by_seed() -> None:
    faults = Faults(lost=0.05, fail=0.05, duplicate=0.05, reorder=0.5, writeback=True, seed=4)
    a, b = fleet(40, seed=3, faults=faults), fleet(40, seed=3, faults=faults)
    assert a.conversations == b.conversations and a.entries == b.entries
    assert [(e.site, e.fate) for e in a.events] == [(e.site, e.fate) for e in b.events]
    assert {e.fate for e in a.events} >= {"lost", "fail", "duplicate"}
    assert fleet(40, seed=4).entries != a.entries


def test_fleet_logs_are_well_formed() -> None:
    f = fleet(60, seed=5)
    for log in f.entries.values():
        assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    ids = [e["id"] for log in f.entries.values() for e in log]
    assert len(ids) == len(set(ids)) == f.entry_count
    assert 25 * 60 < f.entry_count < 80 * 60


def test_scenarios_agree_between_dict_backend_and_memory_store() -> None:
    fast, titles_fast = run_scenarios(seed=9)
    store = MemoryStore("agent-x", read_cutover=False)
    slow, titles_slow = run_scenarios(seed=9, sim=Simulator(StoreBackend(store), seed=9))
    assert titles_fast.keys() == titles_slow.keys()
    for title in titles_fast:
        a = fast.backend.read(titles_fast[title])
        b = slow.backend.read(titles_slow[title])
        assert [e["type"] for e in a] == [e["type"] for e in b], title


def test_sqlite_writer_round_trip(tmp_path) -> None:
    f = fleet(30, seed=6)
    db = tmp_path / "h.db"
    f.to_sqlite(db)
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM conversation_entries").fetchone()[0] == f.entry_count
    assert con.execute("SELECT count(*) FROM conversations").fetchone()[0] == len(f.conversations)
    owners = {c["conversationId"]: c["ownerId"] for c in f.conversations}
    for cid, agent in con.execute("SELECT conversation_id, agent_id FROM conversation_entries"):
        assert agent == owners[cid]
    con.close()


@pytest.mark.postgres
def test_postgres_writer_round_trip() -> None:
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3)
    except psycopg.OperationalError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("PostgreSQL is not reachable")
    schema = f"sim_{uuid.uuid4().hex[:12]}"
    f = fleet(10, seed=7)
    try:
        f.to_postgres(conn, schema)
        with conn.cursor() as cur:
            cur.execute(f'SELECT count(*) FROM "{schema}".conversation_entries')
            assert cur.fetchone()[0] == f.entry_count
            cur.execute(f'SELECT count(*) FROM "{schema}"._migrations')
            assert cur.fetchone()[0] == 8
    finally:
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.commit()
        conn.close()


def test_fleet_from_store_reads_blobs_without_cutover() -> None:
    sim = Simulator(seed=1)
    store = MemoryStore("agent-x", read_cutover=True)
    sim.backend = StoreBackend(store)
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("a", reply="A"))
    sim.turn(cid, Turn("b", reply="B", skip_final_update=True))
    f = Fleet.from_store(store, [cid])
    assert len(f.conversations[0]["messages"]) == 3  # the stale blob, not the rebuilt 4
    assert store.read_cutover is True


@pytest.mark.parametrize("seed", [0, 1, 12, 2**40])
def test_clock_ids_are_the_uuid4_strings_of_the_same_draws(seed: int) -> None:
    """The clock formats its UUIDs by hand: the same text uuid.UUID(int=..., version=4) gives, draw for draw."""
    import random

    from poncho_replay.simulate.clock import Clock

    clock, draws = Clock(seed), random.Random(seed)
    for _ in range(2000):
        expected = str(uuid.UUID(int=draws.getrandbits(128), version=4))
        got = clock.uuid()
        assert got == expected and uuid.UUID(got).version == 4
