"""The simulator's ground truth for the audit's causes, and the audit measured against it (issue 14).

The truth is recorded at the write site (DESIGN.md, "Cause metric"). The
hand-built scripts below state, from SPEC §5 and §7 alone, which behaviours
each one exercises and at which seq their entries land; the seqs are
counted by hand (one ``user_message``, one ``harness_message`` per
transcript message, one ``assistant_message`` per turn). The last test runs
``benchmarks/bench_causes.py``'s comparison on a few small fleets, holds
that no diverged conversation there is ``unexplained``, and prints the
precision and recall it measures without asserting them: the benchmark (and
the README table it produces) is where the figures live.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import poncho_replay
from poncho_replay.audit import CAUSES
from poncho_replay.policy import resolve_policy
from poncho_replay.simulate import Faults, Simulator, Turn, fleet
from poncho_replay.simulate.truth import TRUTH_COLUMNS
from tests.test_causes_sql import audit_one

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_causes.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_causes", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def truth_of(sim: Simulator, cid: str) -> list[tuple[str, int | None, tuple[str, ...]]]:
    """``(cause, seq, fields)`` of one conversation's records, in the order they happened."""
    return [(t.cause, t.seq, t.fields) for t in sim.truth if t.conversation_id == cid]


def test_a_clean_turn_records_nothing() -> None:
    sim = Simulator(seed=3, verify=False)
    c = sim.create("owner-a", "Clean")
    sim.turn(c, Turn("Q?", reply="A.", tools=[("calc", "", "4")]))
    sim.turn(c, Turn("Again?", reply="Yes."))
    assert sim.truth == []


def test_compactions_record_moved_history_and_both_finalize_diffs() -> None:
    sim = Simulator(seed=3, verify=False)
    c = sim.create("owner-a", "Compactions")
    sim.turn(c, Turn("A?", reply="a."))  # 1u 2h 3h 4a
    sim.turn(c, Turn("B?", reply="b."))  # 5u 6h 7h 8a
    # 9u 10c: keeps the last 2 of [u1 a1 u2 a2] (seqs 6, 7): the guess (2nd-from-last harness seq) is right.
    # The display moves 2 messages to compactedHistory. The array [S u2 a2 u3 a3] (5) did not shrink
    # below 4, so the length diff appends only its last message: 11h 12a.
    sim.turn(c, Turn("C?", reply="c.", compact_keep=2))
    # 13u 14c: keeps [a3] (seq 11, the last harness seq: right again); [S' a3 u4 a4] (4) shrank from 5,
    # so the whole array is re-appended: 15h-18h 19a.
    sim.turn(c, Turn("D?", reply="d.", compact_keep=1))
    assert [e["type"][0] for e in sim.backend.read(c)] == list("uhhauhhaucha" "uchhhha")
    # The second compaction rewrote the blob's display (it moved messages) and, re-appended whole, its
    # context: the first compaction's records no longer show in any served field.
    assert truth_of(sim, c) == [
        ("compaction_moved_history", 10, ()),
        ("approximate_finalize_diff", 11, ()),
        ("compaction_moved_history", 14, ("display",)),
        ("approximate_finalize_diff", 15, ("llm",)),
    ]


def test_a_compaction_retires_only_what_it_rewrote() -> None:
    sim = Simulator(seed=3, verify=False)
    c = sim.create("owner-a", "Callback, then compactions")
    sim.turn(c, Turn("Go", reply="Delegated."))  # 1u 2h 3h 4a
    sim.subagent_result(c, "sub-1", "Compare", "Q wins.")  # 5s
    sim.callback(c, "Q wins.")  # 6c 7u(hidden) 8a
    # history = display = [Go, Delegated., injected, Q wins.]; keeps the last 3: the display moves 1 message,
    # the array [S + 3 + 2] did not shrink, so the length diff appends only its last 2: the kept copies still show
    sim.turn(c, Turn("More", reply="Sure.", compact_keep=3))
    assert [t[2] for t in truth_of(sim, c)][:2] == [("llm",), ("llm",)]
    # keeps 1: the array shrank, the finalize re-appends it whole: the callback shows nowhere served
    sim.turn(c, Turn("Less", reply="Fine.", compact_keep=1))
    assert [t[2] for t in truth_of(sim, c)][:2] == [(), ()]
    assert truth_of(sim, c)[-1][2] == ("llm",)  # the last compaction's own record stays


def test_a_compaction_after_a_callback_guesses_off() -> None:
    sim = Simulator(seed=3, verify=False)
    c = sim.create("owner-a", "Callback then compaction")
    sim.turn(c, Turn("Go", reply="Delegated."))  # 1u 2h 3h 4a
    sim.subagent_result(c, "sub-1", "Compare", "Q wins.")  # 5s
    sim.callback(c, "Q wins.")  # 6c 7u(hidden) 8a; the blob's _harnessMessages become a copy of messages
    # 9u 10c: the kept messages are display copies, in no harness_message entry
    sim.turn(c, Turn("More", reply="Sure.", compact_keep=2))
    causes = truth_of(sim, c)
    # the compaction moved the injected message out of the display; the kept copies still feed the context
    assert causes[:2] == [("callback_turn_not_captured", 6, ("llm",)), ("callback_turn_not_captured", 8, ("llm",))]
    assert ("guessed_first_kept_seq_off", 10, ("llm",)) in causes
    (off,) = [t for t in sim.truth if t.cause == "guessed_first_kept_seq_off"]
    assert off.detail == "guessed 2; the 2 kept messages are not in the log"  # harness seqs [2, 3]: 2nd from last


@pytest.mark.parametrize("fate", ["lost", "fail"])
def test_a_guess_whose_compaction_entry_never_landed_is_served_by_no_read(fate: str) -> None:
    """DESIGN "Cause metric": recall counts what can change what a policy serves; an unlogged guess cannot."""
    sim = Simulator(seed=3, verify=False)
    c = sim.create("owner-a", "Callback then lost compaction")
    sim.turn(c, Turn("Go", reply="Delegated."))
    sim.subagent_result(c, "sub-1", "Compare", "Q wins.")
    sim.callback(c, "Q wins.")  # the kept messages will be display copies: the guess is off
    sim.plan.force("compaction", fate)
    sim.turn(c, Turn("More", reply="Sure.", compact_keep=2))
    assert not any(e["type"] == "compaction" for e in sim.backend.read(c))
    (off,) = [t for t in sim.truth if t.cause == "guessed_first_kept_seq_off"]
    assert off.fields == ()
    assert any(t.cause == "lost_or_reordered_append" and t.detail.startswith(f"{fate} at compaction") for t in sim.truth)


def test_a_resume_after_a_lost_finalize_amends_the_wrong_bubble() -> None:
    sim = Simulator(seed=3, verify=False)
    c = sim.create("owner-a", "Approval")
    sim.turn(c, Turn("Q0", reply="A0"))  # 1u 2h 3h 4a
    sim.plan.force("finalize", "lost")
    sim.turn(c, Turn("Q1", tools=[("shell", "Needs approval.", None)]))  # 5u; its 4 harness + bubble lost
    sim.resume(c, " Done.")  # merged into Q1's bubble; the log's latest assistant_message is A0's (seq 4)
    assert truth_of(sim, c) == [
        ("lost_or_reordered_append", None, ("llm", "display")),
        ("resume_not_captured", 6, ("llm", "display")),
        ("amendment_wrong_target", 6, ("display",)),
    ]
    assert sim.truth[0].detail == "lost at finalize (5 entries)"


def test_stale_blob_thread_copy_and_pre_dual_write() -> None:
    sim = Simulator(seed=3, verify=False)
    stale = sim.create("owner-a", "Stale")
    sim.turn(stale, Turn("1 mi?", reply="1.6 km."))  # 1u 2h 3h 4a
    sim.turn(stale, Turn("1 lb?", reply="0.45 kg.", skip_final_update=True))  # 5u 6h 7h 8a, blob never sees them
    child = sim.thread(stale, "Thread")
    sim.turn(child, Turn("Outline", reply="Three parts."))
    old = sim.create("owner-a", "Old", dual_write=False)
    sim.turn(old, Turn("Remember milk", reply="Noted."))
    sim.set_dual_write(old, True)
    sim.turn(old, Turn("And eggs", reply="Noted too."))
    assert truth_of(sim, stale) == [("stale_blob", 6, ("llm", "display"))]
    assert truth_of(sim, child) == [("thread_copy_not_captured", None, ("display",))]
    assert truth_of(sim, old) == [("pre_dual_write", None, ("llm", "display"))]


def test_the_current_release_records_dual_write_ended_and_the_doubled_result() -> None:
    sim = Simulator(seed=3, verify=False, harness="current")
    c = sim.create("owner-a", "Queue era")
    sim.turn(c, Turn("Go", reply="Delegated."))  # no entries (SPEC §7)
    sim.subagent_result(c, "sub-1", "Compare", "Q wins.")  # 1s, then get() serves it and the push doubles it
    assert truth_of(sim, c) == [
        ("dual_write_ended", None, ("llm", "display")),
        ("blob_overwritten_by_rebuild", None, ()),
        ("result_delivered_twice", 1, ("pending",)),
    ]


def test_a_write_back_retires_what_it_overwrote() -> None:
    sim = Simulator(seed=3, verify=False, faults=Faults(writeback=True))
    c = sim.create("owner-a", "Standup")
    sim.turn(c, Turn("Notes?", reply="Ship it."))
    sim.turn(c, Turn("Blockers?", reply="None.", skip_final_update=True))
    sim.rename(c, "Standup notes")  # 0.58.0's get (cutover on) -> update writes the log's rebuild into the blob
    assert truth_of(sim, c) == [("stale_blob", 6, ()), ("blob_overwritten_by_rebuild", None, ())]


@pytest.mark.parametrize("harness", ["0.58.0", "current"])
def test_every_fault_is_in_the_truth_of_its_conversation(harness: str) -> None:
    faults = Faults(lost=0.05, fail=0.03, duplicate=0.03, reorder=0.3, reorder_sites=("compaction", "finalize"), seed=4)
    data = fleet(40, seed=6, faults=faults, harness=harness, upgrade_to=None if harness == "current" else "current")
    recorded = sorted(
        (e.conversation_id, f"{e.fate} at {e.site} ({e.detail})") for e in data.events if e.site != "upgrade" and e.fate in faults_fates()
    )
    truth = data.truth
    assert list(truth.columns) == list(TRUTH_COLUMNS)
    faulted = truth[truth.cause == "lost_or_reordered_append"]
    assert recorded, "the seed should inject faults"
    assert sorted(zip(faulted.conversation_id, faulted.detail, strict=True)) == recorded
    # a fault that lands (duplicate, reorder) names the seq it landed at; a lost or failed one none
    landed = faulted.detail.str.startswith(("duplicate", "reorder"))
    assert faulted[landed].seq.notna().all() and faulted[~landed].seq.isna().all()
    assert set(truth.cause) <= set(CAUSES) - {"unexplained"}


def faults_fates() -> set[str]:
    """The fates of a faulty append (every one but ``ok``)."""
    return {"lost", "fail", "duplicate", "reorder"}


@pytest.mark.parametrize("timeline", ["sequential", "dated"])
def test_the_audit_measured_against_the_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str], timeline: str) -> None:
    """Runs the benchmark's comparison on small fleets: nothing unexplained; prints the figures."""
    bench = _bench()
    printed: list[str] = []
    for seed in (0, 1):
        for faults in (None, bench.parse_faults(bench.DEFAULT_FAULTS, seed)):
            data = fleet(30, seed=seed, faults=faults, harness="0.58.0", upgrade_to="current", timeline=timeline)  # type: ignore[arg-type]
            db = tmp_path / f"{seed}-{faults is not None}.db"
            data.to_sqlite(db)
            ws = poncho_replay.open()
            ws.load(db, progress=False)
            for policy in ("0.58", "current"):
                parity = ws.parity(policy=policy)
                tally = bench.compare(parity, data.truth, resolve_policy(policy).reads)
                diverged = parity[parity.verdict == "diverged"]
                assert tally.diverged == len(diverged)
                assert tally.unexplained == sum(list(c) == ["unexplained"] for c in diverged.causes)
                # the simulator does nothing the kit does not know: every divergence has a cause (issue 14)
                assert tally.unexplained == 0, "\n".join(bench.table(("mixed", "faults" if faults else "none", policy), tally, 1))
                assert set(tally.named) <= set(CAUSES) - {"unexplained"}
                assert all(tally.named_right[c] <= n for c, n in tally.named.items())
                assert all(tally.true_named[c] <= n for c, n in tally.true.items())
                key = ("mixed", "faults" if faults else "none", policy)
                printed.extend(bench.table(key, tally, 1))
    with capsys.disabled():
        print("\n" + "\n".join(printed))


def test_a_compaction_the_log_does_not_follow_retires_what_it_summarized() -> None:
    sim = Simulator(seed=3, verify=False)
    c = sim.create("owner-a", "Resumed, then upgraded")
    for q in ("A?", "B?", "C?"):
        sim.turn(c, Turn(q, reply=q.lower()))  # 6 harness messages
    sim.resume(c, " More.", merge=False)  # the resumed message: in the blob's context only
    sim.upgrade("current", c)  # from here the blob is written alone
    # keeps the last 1 (the resumed message): [S, resumed, u, a] shrank from 7, but the resumed one was kept
    sim.turn(c, Turn("D?", reply="d.", compact_keep=1))
    resumed = [t for t in sim.truth if t.cause == "resume_not_captured"]
    assert [t.fields for t in resumed] == [("llm",)]
    # keeps the last 1 again (d.): [S', d., u, a] did not shrink from 4; then once more, shrinking: summarized away
    sim.turn(c, Turn("E?", reply="e.", compact_keep=1))
    assert [t.fields for t in resumed] == [("llm",)]
    sim.turn(c, Turn("F?", reply="f.", tools=[("calc", "", "1"), ("calc", "", "2")]))
    sim.turn(c, Turn("G?", reply="g.", compact_keep=1))
    assert [t.fields for t in resumed] == [()]


def test_a_compaction_held_back_past_a_write_back_keeps_its_llm(tmp_path: Path) -> None:
    """A reordered compaction is inert (the context reads the newest one, whatever its seq), unless a
    write-back read the log before it landed: the blob then has the older context, the log the summary."""
    sim = Simulator(seed=3, verify=False, faults=Faults(writeback=True))
    c = sim.create("owner-a", "Late summary")
    sim.turn(c, Turn("A?", reply="a."))  # 1u 2h 3h 4a
    sim.turn(c, Turn("B?", reply="b."))  # 5u 6h 7h 8a
    sim.plan.force("compaction", "reorder")
    sim.plan.force("finalize", "lost")
    sim.turn(c, Turn("C?", reply="c.", compact_keep=2))  # 9u; the compaction held back; the finalize lost
    # D's get writes the log's context (no summary) back, then its 10u lets the compaction land at 11
    sim.turn(c, Turn("D?", reply="d."))  # 10u 11c 12h 13h 14a
    assert truth_of(sim, c) == [
        ("compaction_moved_history", 11, ()),
        ("lost_or_reordered_append", 11, ("llm",)),
        ("approximate_finalize_diff", None, ()),
        ("lost_or_reordered_append", None, ()),
        ("blob_overwritten_by_rebuild", None, ()),
    ]
    row = audit_one(sim, tmp_path)
    assert "lost_or_reordered_append" in row["causes"] and "stale_blob" not in row["causes"], row["evidence"]
    assert row["evidence"]["lost_or_reordered_append"]["compaction_landed_late"] == 11
