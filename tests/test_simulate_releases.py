"""The simulator writes as each harness release does (SPEC §5, §7), and upgrades mid-way.

Expected values are worked out by hand from SPEC §7's "Write paths from
0.59.3 on", its release table and its rename paragraph; what ``get()``
serves is checked with ``rebuild_conversation(..., policy=...)``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from poncho_replay.cli import cli
from poncho_replay.errors import StoreError
from poncho_replay.models import JsonDict
from poncho_replay.policy import PolicyError
from poncho_replay.rebuild import rebuild_conversation
from poncho_replay.simulate import (
    DictBackend,
    Faults,
    Fleet,
    Simulator,
    StoreBackend,
    Turn,
    fleet,
)
from poncho_replay.store import MemoryStore

CURRENT = "0.61.2"
QUEUE = {"subagent_result", "callback_started"}


def _blob(sim: Simulator, cid: str) -> JsonDict:
    return sim.backend.get(cid, cutover=False)


def _served_pending(sim: Simulator, cid: str, policy: str = CURRENT) -> list[JsonDict]:
    """What the release's get() serves as pendingSubagentResults."""
    return rebuild_conversation(_blob(sim, cid), sim.backend.read(cid), policy=policy)["pendingSubagentResults"]


def _expected_prompt(result: JsonDict) -> str:
    """SPEC §7's callback prompt for a result with a non-empty response."""
    r = result["result"]
    body = f"Status: {r['status']}\nResponse: {r['response']}\nSteps: {r['steps']}, Duration: {r['duration']}ms"
    return f"[Subagent Result] Subagent \"{result['task']}\" ({result['subagentId']}) {result['taskOutcome']}:\n\n{body}"


@pytest.fixture(params=["dict", "memory"])
def current(request: pytest.FixtureRequest) -> Simulator:
    """A 0.61.2 simulator on the dict backend and on the reference MemoryStore."""
    s = Simulator(seed=21, harness=CURRENT)
    if request.param == "memory":
        s.backend = StoreBackend(MemoryStore("agent-x", read_cutover=False, clock=s.clock.tick))
    return s


# --- releases -----------------------------------------------------------------------


def test_release_names() -> None:
    assert Simulator().release.name == "0.58.0"
    assert Simulator(harness="current").release.name == CURRENT
    assert Simulator(harness="0.57").release.dual_write
    with pytest.raises(PolicyError):
        Simulator(harness="0.59")  # ambiguous: 0.59.0 and 0.59.3 write differently
    with pytest.raises(ValueError, match="read policy"):
        Simulator(harness="blob")


def test_before_0_57_no_entries_at_all() -> None:
    sim = Simulator(seed=3, harness="0.56.0")
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("a", reply="A"))
    sim.subagent_result(cid, "s1", "task", "found")
    sim.callback(cid, "ok")
    assert sim.backend.read(cid) == []
    assert [m["content"] for m in _blob(sim, cid)["messages"]][-1] == "ok"


def test_0_57_dual_writes_but_reads_nothing() -> None:
    """The 0.58 write-back switch has no effect under 0.57: its get() reads the blob."""
    sim = Simulator(seed=3, harness="0.57.0")
    sim.writeback = True
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("a", reply="A"))
    sim.turn(cid, Turn("b", reply="B", skip_final_update=True))
    sim.turn(cid, Turn("c", reply="C"))
    assert [e["type"] for e in sim.backend.read(cid)].count("user_message") == 3
    # The stale blob ([a, A, b]) is continued, not replaced by the log's [a, A, b, B].
    assert [m["content"] for m in _blob(sim, cid)["messages"]] == ["a", "A", "b", "c", "C"]


def test_0_59_1_still_dual_writes_the_transcript() -> None:
    sim = Simulator(seed=3, harness="0.59.1")
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("a", reply="A"))
    assert [e["type"] for e in sim.backend.read(cid)] == ["user_message", "harness_message", "harness_message", "assistant_message"]


# --- 0.59.3+ turns and compactions ------------------------------------------------------


def test_current_turn_writes_the_blob_only(current: Simulator) -> None:
    cid = current.create("owner-a", "T")
    current.turn(cid, Turn("q", reply="r", tools=[("calc", "Let me see.", "4")]))
    assert current.backend.read(cid) == []
    blob = _blob(current, cid)
    assert [(m["role"], m["content"]) for m in blob["messages"]] == [("user", "q"), ("assistant", "Let me see.\n\nr")]
    assert "incomplete" not in blob["messages"][-1]["metadata"]
    # user, assistant tool call, tool result, final assistant
    assert [m["role"] for m in blob["_harnessMessages"]] == ["user", "assistant", "tool", "assistant"]
    assert current.logs == []  # no parity check from 0.59.3


def test_current_lost_finalize_leaves_the_incomplete_draft() -> None:
    sim = Simulator(seed=4, harness=CURRENT)
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("q", reply="r", tools=[("calc", "Let me see.", "4")], skip_final_update=True))
    draft = _blob(sim, cid)["messages"][-1]
    assert draft["role"] == "assistant" and draft["content"] == "Let me see."
    assert draft["metadata"]["incomplete"] is True


def test_current_compaction_leaves_no_entry(current: Simulator) -> None:
    cid = current.create("owner-a", "T")
    for q in ("a", "b", "c"):
        current.turn(cid, Turn(q, reply=q.upper()))
    current.turn(cid, Turn("d", reply="D", compact_keep=2))
    assert current.backend.read(cid) == []
    blob = _blob(current, cid)
    assert [m["content"] for m in blob["compactedHistory"]] == ["a", "A", "b", "B"]
    assert blob["messages"][0]["metadata"]["isCompactionSummary"] is True
    assert [m["content"] for m in blob["messages"][1:]] == ["c", "C", "d", "D"]


# --- 0.59.3+ subagent results and callbacks ------------------------------------------------


def test_current_result_goes_to_the_queue_then_the_blob(current: Simulator) -> None:
    cid = current.create("owner-a", "T")
    current.subagent_result(cid, "s1", "Vendor A", "SOC2.")
    log = current.backend.read(cid)
    assert [e["type"] for e in log] == ["subagent_result"]
    result = log[0]["result"]
    assert result["taskOutcome"] == "succeeded" and result["subagentId"] == "s1"
    # The entry landed first; the blob's get serves the queue's [r], then pushes r.
    assert _blob(current, cid)["pendingSubagentResults"] == [result, result]
    assert _served_pending(current, cid) == [result]


def test_current_callback_consumes_through_the_queue(current: Simulator) -> None:
    cid = current.create("owner-a", "T")
    current.turn(cid, Turn("Research two vendors.", reply="Spawned."))
    current.subagent_result(cid, "sub-a", "Vendor A", "SOC2, EU hosting.")
    current.subagent_result(cid, "sub-b", "Vendor B", "tool missing", status="error")
    current.callback(cid, "Vendor A looks good.")
    log = current.backend.read(cid)
    assert [e["type"] for e in log] == ["subagent_result", "subagent_result", "callback_started"]
    assert log[2]["consumedSeqs"] == [1, 2]
    a, b = log[0]["result"], log[1]["result"]
    assert b["taskOutcome"] == "failed" and b["error"]["message"] == "tool missing"

    blob = _blob(current, cid)
    injected = blob["messages"][2:4]
    assert [m["content"] for m in injected] == [
        _expected_prompt(a),
        '[Subagent Result] Subagent "Vendor B" (sub-b) failed:\n\nError: tool missing',
    ]
    assert injected[0]["metadata"] == {
        "_subagentCallback": True, "subagentId": "sub-a", "task": "Vendor A", "taskOutcome": "succeeded",
        "timestamp": a["timestamp"],
    }
    assert blob["messages"][-1]["content"] == "Vendor A looks good."
    assert blob["pendingSubagentResults"] == [] and _served_pending(current, cid) == []
    assert blob["subagentCallbackCount"] == 1 and blob["runStatus"] == "idle"
    assert "runningCallbackSince" not in blob
    assert blob["_harnessMessages"] == blob["messages"]


def test_current_callback_in_flight_holds_the_lock() -> None:
    sim = Simulator(seed=5, harness=CURRENT)
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("Summarize the incident.", reply="Delegating."))
    sim.subagent_result(cid, "sub-x", "Read #incident", "Root cause: expired TLS cert.")
    assert sim.begin_callback(cid)
    blob = _blob(sim, cid)
    assert blob["runStatus"] == "running" and isinstance(blob["runningCallbackSince"], int)
    assert blob["subagentCallbackCount"] == 1 and blob["pendingSubagentResults"] == []
    assert blob["messages"][-1]["content"].startswith('[Subagent Result] Subagent "Read #incident" (sub-x) succeeded:')
    assert blob["_harnessMessages"] == blob["messages"]
    assert [e["type"] for e in sim.backend.read(cid)] == ["subagent_result", "callback_started"]


def test_current_results_after_the_callback_stay_pending(current: Simulator) -> None:
    cid = current.create("owner-a", "T")
    current.subagent_result(cid, "s1", "one", "first")
    assert current.begin_callback(cid)
    current.subagent_result(cid, "s2", "two", "during the reply")
    current.finish_callback(cid, "Got one.")
    during = current.backend.read(cid)[-1]["result"]
    # Phase B's fresh get serves the queue's pending [r2] and writes it back.
    assert _blob(current, cid)["pendingSubagentResults"] == [during]
    assert _served_pending(current, cid) == [during]

    current.subagent_result(cid, "s3", "three", "after the callback")
    after = current.backend.read(cid)[-1]["result"]
    assert _served_pending(current, cid) == [during, after]
    assert _blob(current, cid)["pendingSubagentResults"] == [during, after, after]


def test_result_queued_by_0_58_consumed_by_a_current_callback() -> None:
    """No taskOutcome: the prompt prints ``undefined``, the metadata has no key; no hidden entries."""
    sim = Simulator(seed=6)
    cid = sim.create("owner-a", "T")
    sim.turn(cid, Turn("Audit dependencies", reply="Spawned."))
    sim.subagent_result(cid, "sub-1", "Audit dependencies", "3 outdated packages.")
    before = len(sim.backend.read(cid))
    sim.upgrade(CURRENT, cid)
    sim.callback(cid, "Three are outdated.")
    log = sim.backend.read(cid)
    assert [e["type"] for e in log[before:]] == ["callback_started"]
    assert log[-1]["consumedSeqs"] == [before]
    injected = _blob(sim, cid)["messages"][-2]
    assert injected["content"].startswith('[Subagent Result] Subagent "Audit dependencies" (sub-1) undefined:\n\n')
    assert "taskOutcome" not in injected["metadata"]


def test_empty_response_points_to_read_subagent() -> None:
    sim = Simulator(seed=7, harness=CURRENT)
    cid = sim.create("owner-a", "T")
    sim.subagent_result(cid, "sub-c", "Vendor C", "", task_outcome="partial")
    sim.callback(cid, "C had nothing.")
    content = _blob(sim, cid)["messages"][0]["content"]
    assert content.startswith('[Subagent Result] Subagent "Vendor C" (sub-c) partial:\n\nStatus: completed\nResponse: (')
    assert 'read_subagent with subagent_id "sub-c"' in content


class _FlakyBackend(DictBackend):
    """A dict backend whose blob append fails the first ``failures`` times."""

    def __init__(self, sim: Simulator, failures: int) -> None:
        super().__init__(sim.clock)
        self.failures = failures

    def append_subagent_result(self, conversation_id: str, result: JsonDict, **kw: object) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError(f"busy {self.failures}")
        super().append_subagent_result(conversation_id, result, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("failures", "landed"), [(1, True), (2, False)])
def test_blob_append_is_retried_once(failures: int, landed: bool) -> None:
    sim = Simulator(seed=8, harness=CURRENT)
    sim.backend = _FlakyBackend(sim, failures)
    cid = sim.create("owner-a", "T")
    sim.subagent_result(cid, "s1", "t", "r")
    assert bool(_blob(sim, cid).get("pendingSubagentResults")) == landed
    assert [e["type"] for e in sim.backend.read(cid)] == ["subagent_result"]  # the queue entry is independent
    failed = [line for line in sim.logs if "FAILED to persist result for subagent s1" in line]
    assert len(failed) == (0 if landed else 1)


# --- faults on the queue -------------------------------------------------------------------


def test_lost_queue_entry_splits_queue_and_blob() -> None:
    sim = Simulator(seed=9, harness=CURRENT)
    cid = sim.create("owner-a", "T")
    sim.subagent_result(cid, "s1", "one", "first")
    sim.callback(cid, "ok")
    sim.plan.force("subagent_result", "lost")
    sim.subagent_result(cid, "s2", "two", "lost on the way")
    blob_pending = _blob(sim, cid)["pendingSubagentResults"]
    assert [r["subagentId"] for r in blob_pending] == ["s2"]
    assert _served_pending(sim, cid) == []  # the queue has entries, none pending: s2 is never delivered
    assert [(e.site, e.fate) for e in sim.events] == [("subagent_result", "lost")]


def test_failed_queue_append_is_logged() -> None:
    sim = Simulator(seed=9, harness=CURRENT)
    cid = sim.create("owner-a", "T")
    sim.plan.force("subagent_result", "fail")
    sim.subagent_result(cid, "s1", "one", "first")
    assert sim.backend.read(cid) == []
    assert any(line.startswith(f"[entries-queue] subagent_result append failed for {cid}: ") for line in sim.logs)
    assert [r["subagentId"] for r in _blob(sim, cid)["pendingSubagentResults"]] == ["s1"]


def test_duplicated_queue_entry_is_consumed_twice() -> None:
    sim = Simulator(seed=10, harness=CURRENT)
    cid = sim.create("owner-a", "T")
    sim.plan.force("subagent_result", "duplicate")
    sim.subagent_result(cid, "s1", "one", "first")
    assert [e["type"] for e in sim.backend.read(cid)] == ["subagent_result", "subagent_result"]
    assert len(_served_pending(sim, cid)) == 2
    sim.callback(cid, "ok")
    log = sim.backend.read(cid)
    assert log[-1]["type"] == "callback_started" and log[-1]["consumedSeqs"] == [1, 2]
    assert sum(1 for m in _blob(sim, cid)["messages"] if (m.get("metadata") or {}).get("_subagentCallback")) == 2


def test_reordered_queue_entry_lands_after_the_blob_read() -> None:
    sim = Simulator(seed=11, harness=CURRENT)
    cid = sim.create("owner-a", "T")
    sim.plan.force("subagent_result", "reorder")
    sim.subagent_result(cid, "s1", "one", "late")
    assert sim.backend.read(cid) == []
    assert len(_blob(sim, cid)["pendingSubagentResults"]) == 1  # the get saw no queue entry: pushed once
    sim.flush()
    assert [e["type"] for e in sim.backend.read(cid)] == ["subagent_result"]


def test_failed_callback_started_leaves_the_result_pending() -> None:
    sim = Simulator(seed=12, harness=CURRENT)
    cid = sim.create("owner-a", "T")
    sim.subagent_result(cid, "s1", "one", "first")
    sim.plan.force("callback_started", "fail")
    sim.callback(cid, "ok")
    assert any(line.startswith(f"[entries-queue] callback_started append failed for {cid}: ") for line in sim.logs)
    # Nothing marks s1 consumed: phase B's fresh get serves it from the queue and writes it back.
    assert [r["subagentId"] for r in _served_pending(sim, cid)] == ["s1"]
    assert [r["subagentId"] for r in _blob(sim, cid)["pendingSubagentResults"]] == ["s1"]


# --- rename per release ---------------------------------------------------------------------


def _renamed(release: str, tmp_path: Path) -> tuple[JsonDict, tuple[str, str], JsonDict]:
    """A conversation with a stale blob, renamed under ``release``: (blob before, (title, updated_at) columns, blob)."""
    sim = Simulator(seed=13, harness=release)
    sim.writeback = True
    cid = sim.create("owner-a", "Old")
    sim.turn(cid, Turn("a", reply="A"))
    sim.turn(cid, Turn("b", reply="B", skip_final_update=True))
    before = _blob(sim, cid)
    sim.rename(cid, "  New  ")
    db = tmp_path / f"{release}.db"
    Fleet.from_simulator(sim).to_sqlite(db)
    with sqlite3.connect(db) as con:
        title, updated_at, data = con.execute("SELECT title, updated_at, data FROM conversations").fetchone()
    return before, (title, updated_at), json.loads(data)


def test_rename_0_58_gets_and_updates_writing_the_rebuild_back(tmp_path: Path) -> None:
    before, (title, updated_at), blob = _renamed("0.58.0", tmp_path)
    assert title == blob["title"] == "New"
    assert blob["updatedAt"] > before["updatedAt"] and updated_at == _iso(blob["updatedAt"])
    assert [m["content"] for m in blob["messages"]] == ["a", "A", "b", "B"]  # the log's transcript


def test_rename_0_59_1_sets_the_title_column_only(tmp_path: Path) -> None:
    before, (title, updated_at), blob = _renamed("0.59.1", tmp_path)
    assert title == "New"
    assert blob["title"] == "Old" and blob["updatedAt"] == before["updatedAt"]
    assert [m["content"] for m in blob["messages"]] == ["a", "A", "b"]  # no get -> update
    assert updated_at > _iso(before["updatedAt"])


def test_rename_current_sets_column_and_blob_title(tmp_path: Path) -> None:
    before, (title, updated_at), blob = _renamed(CURRENT, tmp_path)
    assert title == blob["title"] == "New"
    assert blob["updatedAt"] == before["updatedAt"]
    before.pop("_harnessMessages")  # a column of its own, not in data
    assert blob == {**before, "title": "New"}
    assert updated_at > _iso(before["updatedAt"])


def test_next_update_after_a_0_59_1_rename_writes_the_blob_title_back() -> None:
    """The harness's update writes the title column from the object, which still has the old title."""
    sim = Simulator(seed=14, harness="0.59.1")
    cid = sim.create("owner-a", "Old")
    sim.rename(cid, "New")
    assert Fleet.from_simulator(sim).column_updates()[0][0] == "New"
    sim.turn(cid, Turn("a", reply="A"))
    assert Fleet.from_simulator(sim).column_updates() == []


def test_column_rename_through_a_row_store() -> None:
    sim = Simulator(seed=15, harness="0.59.1")
    store = MemoryStore("agent-x", read_cutover=False, clock=sim.clock.tick)
    sim.backend = StoreBackend(store)
    cid = sim.create("owner-a", "Old")
    sim.rename(cid, "New")
    assert store.list_summaries()[0].title == "New"
    assert store.get(cid).title == "Old"  # type: ignore[union-attr]


def _iso(ms: int) -> str:
    from poncho_replay.harness_layout import iso_ms

    return iso_ms(ms)


# --- fleets that upgrade mid-way ----------------------------------------------------------


def test_upgraded_fleet_mixes_transcript_entries_and_queue_only_activity() -> None:
    data = fleet(60, seed=16, harness="0.58.0", upgrade_to=CURRENT)
    upgraded = {e.conversation_id for e in data.events if e.site == "upgrade"}
    assert len(upgraded) == 60 and {e.fate for e in data.events if e.site == "upgrade"} == {CURRENT}
    blobs = {c["conversationId"]: c for c in data.conversations}
    mixed = 0
    for cid, log in data.entries.items():
        queue_era = False
        for e in log:
            if e["type"] == "subagent_result" and "taskOutcome" in e["result"]:
                queue_era = True
            elif queue_era:
                assert e["type"] == "callback_started", (cid, e["type"])  # nothing but the queue after the upgrade
        logged_turns = sum(1 for e in log if e["type"] == "user_message" and not e.get("hidden"))
        blob_turns = sum(1 for m in blobs[cid]["messages"] if m["role"] == "user" and not (m.get("metadata") or {}).get("_subagentCallback"))
        mixed += 0 < logged_turns < blob_turns
    assert mixed >= 10  # begun under 0.58 (transcript entries), continued under 0.61.2 (blob only)
    assert any(cid not in data.entries for cid in upgraded)  # upgraded before the first turn, no results
    assert any("taskOutcome" in e["result"] for log in data.entries.values() for e in log if e["type"] == "subagent_result")


def test_upgrade_point_changes_no_script() -> None:
    """The upgrade draws from its own generator: the same turns, written by two releases."""
    plain = fleet(20, seed=17)
    upgraded = fleet(20, seed=17, upgrade_to=CURRENT)
    def texts(f: Fleet) -> list[list[str]]:
        return [
            [str(m["content"]) for m in c["messages"] if m["role"] == "user" and "_subagentCallback" not in (m.get("metadata") or {})]
            for c in f.conversations
        ]

    assert texts(plain) == texts(upgraded)
    assert upgraded.entry_count < plain.entry_count


def test_same_seed_same_fleet_for_every_release_mix() -> None:
    faults = Faults(lost=0.05, fail=0.05, duplicate=0.05, reorder=0.5, reorder_sites=("subagent_result",), seed=4)
    for kw in ({"harness": CURRENT}, {"harness": "0.58.0", "upgrade_to": CURRENT}):
        a, b = fleet(40, seed=18, faults=faults, **kw), fleet(40, seed=18, faults=faults, **kw)
        assert a.conversations == b.conversations and a.entries == b.entries and a.columns == b.columns
        assert [(e.conversation_id, e.site, e.fate) for e in a.events] == [(e.conversation_id, e.site, e.fate) for e in b.events]


def test_a_dated_fleet_deploys_each_release_to_the_whole_fleet_at_one_moment() -> None:
    """SPEC §5, §7: before 0.57 nothing is logged, then 0.58 dual-writes, then 0.61.2 only queues, fleet-wide."""
    data = fleet(80, seed=21, upgrade_to=CURRENT, timeline="dated")
    rows = [e for log in data.entries.values() for e in log]
    transcript = [e["createdAt"] for e in rows if e["type"] not in QUEUE]
    queued_by_current = [e["createdAt"] for e in rows if e["type"] == "subagent_result" and "taskOutcome" in e["result"]]
    assert transcript and queued_by_current and max(transcript) < min(queued_by_current)
    pre = [t for t in data.truth_records if t.cause == "pre_dual_write"]
    assert pre and all(t.detail.endswith("written before the dual-write (0.56.0)") for t in pre)
    first_logged = min(e["message"]["metadata"]["timestamp"] for e in rows if e["type"] == "user_message")
    blobs = {c["conversationId"]: c for c in data.conversations}
    for cid in {t.conversation_id for t in pre}:  # its first user message predates every logged one
        first = next(m for m in blobs[cid]["messages"] if m["role"] == "user")
        assert first["metadata"]["timestamp"] < first_logged
    # conversations overlap in time: some span the upgrade, with turns logged before it and blob-only after
    spans = sum(1 for cid, log in data.entries.items()
                if any(e["type"] == "user_message" for e in log) and any(e.site == "upgrade" for e in data.events))  # fmt: skip
    assert spans > 0
    mixed = [cid for cid, log in data.entries.items()
             if any(e["type"] == "user_message" for e in log)
             and sum(1 for m in blobs[cid]["messages"] if m["role"] == "user")
             > sum(1 for e in log if e["type"] == "user_message" and not e.get("hidden"))]  # fmt: skip
    assert len(mixed) >= 5


def test_a_dated_fleet_runs_the_sequential_fleets_scripts() -> None:
    """The timeline changes when each step runs, not what the conversations say."""
    def texts(f: Fleet) -> dict[str, list[str]]:
        return {
            c["title"]: [str(m["content"]) for m in c["messages"]
                         if m["role"] == "user" and "_subagentCallback" not in (m.get("metadata") or {})]
            for c in f.conversations
        }  # fmt: skip

    assert texts(fleet(30, seed=22, timeline="dated")) == texts(fleet(30, seed=22))


def test_current_fleet_logs_only_the_queue() -> None:
    data = fleet(80, seed=19, harness=CURRENT)
    assert data.entries, "some conversations received subagent results"
    assert {e["type"] for log in data.entries.values() for e in log} == QUEUE
    for log in data.entries.values():
        assert [e["seq"] for e in log] == list(range(1, len(log) + 1))


# --- the CLI -------------------------------------------------------------------------------


def test_cli_simulate_harness_and_upgrade(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "mixed.sqlite"
    r = runner.invoke(cli, ["simulate", "--conversations", "5", "--seed", "2", "--out", str(out),
                            "--harness", "0.58", "--upgrade-to", "current"])  # fmt: skip
    assert r.exit_code == 0, r.output
    expected = fleet(5, seed=2, harness="0.58.0", upgrade_to=CURRENT)
    with sqlite3.connect(out) as con:
        assert con.execute("SELECT count(*) FROM conversation_entries").fetchone()[0] == expected.entry_count
    bad = runner.invoke(cli, ["simulate", "--out", str(tmp_path / "x.sqlite"), "--harness", "blob"])
    assert bad.exit_code == 2 and "read policy" in bad.output
