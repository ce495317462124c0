"""Each fault of the simulated dual-write is classified to its cause (SPEC §5, §6).

Small conversations are scripted with one fault forced at one write site
(``FaultPlan.force``), written in the harness's SQLite layout, loaded and
audited. What a fault should be called follows from SPEC §5: a lost,
failed, duplicated or overtaken append is ``lost_or_reordered_append``; a
lost *blob* write (the finalize's update) is ``stale_blob``; 0.58.0's
read-cutover write-back is ``blob_overwritten_by_rebuild``. A clean fleet
(no faults, no callbacks, resumes, compactions or threads) must match.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import poncho_replay
from poncho_replay.simulate import Fleet, Simulator, Turn, fleet
from poncho_replay.simulate.faults import Faults

Script = Callable[[Simulator], str]


def audit(tmp_path: Path, script: Script, faults: Faults | None = None) -> tuple[dict[str, Any], Simulator]:
    """Run ``script`` on a fresh simulator, load its harness.db, return the conversation's parity row."""
    sim = Simulator(seed=11, faults=faults, verify=False)
    cid = script(sim)
    db = tmp_path / "harness.db"
    db.unlink(missing_ok=True)
    Fleet.from_simulator(sim).to_sqlite(db)
    ws = poncho_replay.open()
    ws.load(db, progress=False)
    rows = ws.parity().to_dict("records")
    (row,) = [r for r in rows if r["conversation_id"] == cid]
    return row, sim


def three_turns(site: str | None = None, fate: str = "ok", at: int = 1) -> Script:
    """Three plain turns (the first with a tool step); ``fate`` forced at ``site`` on turn ``at``."""

    def script(sim: Simulator) -> str:
        c = sim.create("owner-ines", "Three turns")
        for i in range(3):
            if site is not None and i == at:
                sim.plan.force(site, fate)  # type: ignore[arg-type]
            tools = [("web_search", "Looking.", "sunny")] if i == 0 else []
            sim.turn(c, Turn(f"Question {i}?", reply=f"Answer {i}.", tools=tools))
        return c

    return script


@pytest.mark.parametrize("fate", ["lost", "fail", "duplicate"])
@pytest.mark.parametrize("site", ["user_turn", "finalize"])
@pytest.mark.parametrize("at", [0, 1])
def test_a_faulty_turn_append_is_a_lost_or_reordered_append(tmp_path: Path, fate: str, site: str, at: int) -> None:
    row, sim = audit(tmp_path, three_turns(site, fate, at))
    assert [(e.site, e.fate) for e in sim.events] == [(site, fate)]
    assert row["verdict"] == "diverged"
    assert list(row["causes"]) == ["lost_or_reordered_append"]
    evidence = row["evidence"]["lost_or_reordered_append"]
    if fate == "duplicate":  # both copies are named, by type and seq
        dups = evidence["duplicated"]
        assert dups and all(len(d["seqs"]) == 2 for d in dups)
        assert {d["type"] for d in dups} == ({"user_message"} if site == "user_turn" else {"harness_message", "assistant_message"})
    else:
        assert evidence["duplicated"] is None


def test_a_lost_user_turn_shows_as_the_missing_display_message(tmp_path: Path) -> None:
    row, _ = audit(tmp_path, three_turns("user_turn", "lost", 1))
    # blob display: Q0 A0 Q1 A1 Q2 A2; the log lacks Q1 (blob position 2)
    assert (row["display_entries"], row["display_blob"], row["display_missing_in_entries"]) == (5, 6, 1)
    assert row["display_first_position"] == 2
    assert row["evidence"]["lost_or_reordered_append"]["blob_only_display_positions"] == [2]
    assert (row["llm_entries"], row["llm_blob"], row["llm_first_position"]) == (8, 8, None)


def test_a_reordered_compaction_is_a_lost_or_reordered_append(tmp_path: Path) -> None:
    def script(sim: Simulator) -> str:
        c = sim.create("owner-lukas", "Reordered")
        sim.turn(c, Turn("A?", reply="a."))
        sim.turn(c, Turn("B?", reply="b."))
        sim.plan.force("compaction", "reorder")
        sim.turn(c, Turn("C?", reply="c.", compact_keep=2))
        return c

    row, sim = audit(tmp_path, script)
    assert [(e.site, e.fate) for e in sim.events] == [("compaction", "reorder")]
    assert "lost_or_reordered_append" in row["causes"]
    # U H H A U H H A U [H A overtook] C: the compaction landed at seq 12, after its turn's user at 9
    (reordered,) = row["evidence"]["lost_or_reordered_append"]["reordered"]
    assert reordered["compaction_seq"] == 12
    assert "unexplained" not in row["causes"]


@pytest.mark.parametrize("fate", ["lost", "duplicate"])
def test_a_faulty_subagent_result_append_is_a_lost_or_reordered_append(tmp_path: Path, fate: str) -> None:
    def script(sim: Simulator) -> str:
        c = sim.create("owner-rafael", "Delegation")
        sim.turn(c, Turn("Go", reply="Delegated."))
        sim.plan.force("subagent_result", fate)  # type: ignore[arg-type]
        sim.subagent_result(c, "sub-1", "Compare", "Q wins.")
        return c

    row, _ = audit(tmp_path, script)
    assert row["diverged_fields"].tolist() == ["pending"]
    assert list(row["causes"]) == ["lost_or_reordered_append"]
    # the blob holds the result once; the log none (lost) or twice (duplicated)
    assert (row["pending_blob"], row["pending_entries"]) == (1, 0 if fate == "lost" else 2)



def test_a_duplicated_queue_append_under_0_61_is_named_beside_the_double_delivery(tmp_path: Path) -> None:
    """0.61.2 queues one entry per result (SPEC §7); its blob holds every result twice anyway (served by get(), then
    pushed), so a result queued twice shows as a third blob copy: the blob's count cannot excuse the duplicate."""

    def script(sim: Simulator) -> str:
        c = sim.create("owner-rafael", "Delegation")
        sim.turn(c, Turn("Go", reply="Delegated."))
        sim.upgrade("0.61.2", c)
        sim.plan.force("subagent_result", "duplicate")  # type: ignore[arg-type]
        sim.subagent_result(c, "sub-1", "Compare", "Q wins.")
        return c

    sim = Simulator(seed=11, verify=False)
    cid = script(sim)
    db = tmp_path / "harness.db"
    Fleet.from_simulator(sim).to_sqlite(db)
    ws = poncho_replay.open()
    ws.load(db, progress=False)
    (row,) = [r for r in ws.parity("current").to_dict("records") if r["conversation_id"] == cid]
    assert row["diverged_fields"].tolist() == ["pending"]
    assert sorted(row["causes"]) == ["lost_or_reordered_append", "result_delivered_twice"]
    assert (row["pending_entries"], row["pending_blob"]) == (2, 3)  # queued twice; get() served both, then a push
    queued = [seq for (seq,) in ws.con.execute(
        "SELECT seq FROM conversation_entries WHERE conversation_id = ? AND type = 'subagent_result' ORDER BY seq", [cid]
    ).fetchall()]  # fmt: skip
    assert len(queued) == 2
    assert row["evidence"]["lost_or_reordered_append"]["duplicated"] == [{"type": "subagent_result", "seqs": queued}]

def test_a_skipped_blob_write_is_a_stale_blob(tmp_path: Path) -> None:
    def script(sim: Simulator) -> str:
        c = sim.create("owner-lukas", "Stale")
        sim.turn(c, Turn("1 mi?", reply="1.609 km."))
        sim.turn(c, Turn("1 lb?", reply="0.454 kg.", skip_final_update=True))
        return c

    row, _ = audit(tmp_path, script)
    assert list(row["causes"]) == ["stale_blob"]
    # log: U1 H2 H3 A4 U5 H6 H7 A8; the blob saw the second user message (display) but not seqs 6-8
    ev = row["evidence"]["stale_blob"]
    assert (ev["log_only_llm_seqs"], ev["log_only_display_seqs"]) == ([6, 7], [8])
    assert (row["display_entries"], row["display_blob"], row["display_extra_in_entries"]) == (4, 3, 1)


def two_stale_turns(fate: str = "ok") -> Script:
    """Two turns whose finalize blob writes are lost, then a third (its finalize append's fate ``fate``).

    The blob never got a ``_harnessMessages``, so turns two and three ran on
    the display ``messages`` and their length diff (against no array)
    appended all of them: the first user message, by its display id, is
    logged by both (benchmarks, seeds 78, 92, 94 without faults).
    """

    def script(sim: Simulator) -> str:
        c = sim.create("owner-ines", "Stale twice")
        sim.turn(c, Turn("Question 0?", reply="Answer 0.", skip_final_update=True))
        sim.turn(c, Turn("Question 1?", reply="Answer 1.", skip_final_update=True))
        sim.plan.force("finalize", fate)  # type: ignore[arg-type]
        sim.turn(c, Turn("Question 2?", reply="Answer 2."))
        return c

    return script


def test_a_context_rebuilt_from_the_display_twice_is_a_stale_blob_only(tmp_path: Path) -> None:
    row, sim = audit(tmp_path, two_stale_turns())
    assert [(e.site, e.fate) for e in sim.events] == [("finalize", "blob_write_skipped")] * 2
    # U1 H2 H3 A4 | U5 [H6 = U1's display message] H7 H8 A9 | U10 [H11 = U1] [H12 = U5] H13 H14 A15
    assert row["verdict"] == "diverged"
    assert list(row["causes"]) == ["stale_blob"]


def test_a_thread_whose_first_finalize_blob_write_was_lost_duplicated_no_append(tmp_path: Path) -> None:
    def script(sim: Simulator) -> str:
        p = sim.create("owner-ines", "Parent")
        sim.turn(p, Turn("P0?", reply="p0."))
        sim.turn(p, Turn("P1?", reply="p1."))
        c = sim.thread(p, "Child")
        sim.turn(c, Turn("C0?", reply="c0.", skip_final_update=True))
        sim.turn(c, Turn("C1?", reply="c1."))
        return c

    row, _ = audit(tmp_path, script)
    # both child turns ran on the copied display messages (the parent's ids, in the blob's display, never
    # logged as the child's user/assistant messages) and appended all four: logged twice, no fault
    assert list(row["causes"]) == ["thread_copy_not_captured"]


def test_a_duplicated_finalize_of_a_turn_run_on_the_display_is_still_named(tmp_path: Path) -> None:
    row, sim = audit(tmp_path, two_stale_turns("duplicate"))
    assert ("finalize", "duplicate") in [(e.site, e.fate) for e in sim.events]
    assert "lost_or_reordered_append" in row["causes"]
    dups = row["evidence"]["lost_or_reordered_append"]["duplicated"]
    assert {d["type"] for d in dups} == {"harness_message", "assistant_message"}


def test_a_rename_with_the_cutover_on_is_a_blob_overwritten_by_rebuild(tmp_path: Path) -> None:
    def script(sim: Simulator) -> str:
        c = sim.create("owner-kenji", "Standup")
        sim.turn(c, Turn("Notes?", reply="Ship it."))
        sim.turn(c, Turn("Blockers?", reply="None.", skip_final_update=True))
        sim.rename(c, "Standup notes")
        return c

    row, _ = audit(tmp_path, script, Faults(writeback=True))
    # the rename wrote the log's rebuild into the stale blob: it now matches, a minute after the last entry
    assert row["verdict"] == "match" and row["harness_verdict"] == "OK"
    assert list(row["causes"]) == ["blob_overwritten_by_rebuild"]


def test_a_callback_with_the_cutover_on_is_a_blob_overwritten_by_rebuild(tmp_path: Path) -> None:
    def script(sim: Simulator) -> str:
        c = sim.create("owner-rafael", "Callback")
        sim.turn(c, Turn("Go", reply="Delegated."))
        sim.subagent_result(c, "sub-1", "Compare", "Q wins.")
        sim.callback(c, "Q wins, says the subagent.")
        sim.turn(c, Turn("Thanks", reply="Welcome."))
        return c

    row, _ = audit(tmp_path, script, Faults(writeback=True))
    assert row["verdict"] == "match"
    assert list(row["causes"]) == ["blob_overwritten_by_rebuild"]
    # U1 H2 H3 A4 S5 B6 u7 A8 U9 H10 H11 A12
    assert row["evidence"]["blob_overwritten_by_rebuild"]["callback_started_seqs"] == [6]
    # the same script without the write-back: the callback turn lives only in the blob
    row, _ = audit(tmp_path, script)
    assert row["verdict"] == "diverged"
    assert list(row["causes"]) == ["callback_turn_not_captured"]


def test_a_clean_fleet_matches_with_no_causes(tmp_path: Path) -> None:
    sim = Simulator(seed=5, verify=False)
    for i in range(12):
        c = sim.create(f"owner-{i % 3}", f"Clean {i}", "northwind" if i % 4 == 0 else None)
        for t in range(1 + i % 4):
            tools = [("calculator", "", str(t))] * (t % 3)
            sim.turn(c, Turn(f"q{i}.{t} 東京 😀", reply=f"a{i}.{t}", tools=tools, hidden=(i == 3 and t == 0)))
    db = tmp_path / "harness.db"
    Fleet.from_simulator(sim).to_sqlite(db)
    ws = poncho_replay.open()
    ws.load(db, progress=False)
    report = ws.parity()
    assert len(report) == 12
    assert report["verdict"].tolist() == ["match"] * 12
    assert report["harness_verdict"].tolist() == ["OK"] * 12
    assert [list(c) for c in report["causes"]] == [[]] * 12
    summary = report.summary()
    assert summary[["verdict", "harness_verdict", "cause", "conversations"]].values.tolist() == [["match", "OK", "(none)", 12]]


@pytest.mark.parametrize("fate", ["lost", "fail", "duplicate"])
def test_random_faults_in_a_fleet_are_never_unexplained(tmp_path: Path, fate: str) -> None:
    """Across a random fleet, each conversation a fault touched names lost_or_reordered_append.

    Conversations compacted later are left out: a compaction moves the
    damaged history to ``compactedHistory``, out of both compared sides.
    """
    data = fleet(30, seed=2, faults=Faults(**{fate: 0.02, "seed": 9}))
    compacted = {cid for cid, log in data.entries.items() if any(e["type"] == "compaction" for e in log)}
    touched = {
        e.conversation_id
        for e in data.events
        if e.fate == fate and e.site in ("user_turn", "finalize") and e.conversation_id not in compacted
    }
    assert touched, "the seed should inject at least one fault"
    db = tmp_path / "harness.db"
    data.to_sqlite(db)
    ws = poncho_replay.open()
    ws.load(db, progress=False)
    report = ws.parity()
    by_id = {r["conversation_id"]: r for r in report.to_dict("records")}
    for cid in touched:
        assert by_id[cid]["verdict"] == "diverged", cid
        assert "lost_or_reordered_append" in by_id[cid]["causes"], (cid, by_id[cid]["causes"])
    assert not any("unexplained" in r["causes"] for r in by_id.values())
