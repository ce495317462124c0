"""One SQL macro per audit cause (sql/causes.sql; STYLE item 11, issue 14 item 3).

Each cause's macro gets a hand-built fact row, written from the SPEC section
its header names, and must fire on it, and not fire once the one fact that
decides it is changed. The fact groups below have the shapes parity_at
(audit.sql) passes; a macro reading a fact its group lacks fails to bind, so
the defaults also hold the headers' fact lists honest. The last tests hold
the causes the SQL can emit, ``audit.CAUSES`` and the README table equal, and
give an unexplained divergence its aligned slice (item 5).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pytest

import poncho_replay
from poncho_replay.audit import CAUSES
from poncho_replay.simulate import Fleet, Simulator, Turn
from poncho_replay.sql import read_sql, run_script

ROOT = Path(__file__).resolve().parents[1]


class Sql(str):
    """A SQL expression written out in this file (typed NULLs, timestamps), pasted as it is."""


def literal(value: Any) -> str:
    """A constant of this file as a DuckDB literal (never user input)."""
    if isinstance(value, Sql):
        return str(value)
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"'{k}': {literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


AMENDMENTS = Sql(
    "NULL::STRUCT(seq BIGINT, target VARCHAR, target_seq BIGINT, target_turn VARCHAR, expected_turn VARCHAR, "
    "target_in_blob BOOLEAN, target_has_text BOOLEAN)[]"
)
T0 = Sql("TIMESTAMP '2026-03-04 00:00:00'")
T9 = Sql("TIMESTAMP '2026-03-04 00:00:09'")


def item_facts(**over: Any) -> dict[str, Any]:
    """A field's audit_item_facts row: nothing unusual."""
    base = {
        "callback_items": 0,
        "queue_callback_items": 0,
        "display_copies": 0,
        "resumed_items": 0,
        "incomplete_items": 0,
        "last_in_log": 9,
        "missing_prefix": 0,
        "lost_positions": Sql("NULL::BIGINT[]"),
        "unseen_seqs": Sql("NULL::BIGINT[]"),
        "moved_items": 0,
        "unlogged_tail_users": 0,
        "unlogged_tail_bubbles": 0,
        "first_unlogged_user": Sql("NULL::BIGINT"),
        "leading_tail_bubbles": 0,
        "stale_turn_seqs": Sql("NULL::BIGINT[]"),
        "blob_first_kept_seq": Sql("NULL::BIGINT"),
        "unlogged_summaries": 0,
        "newest_summary_in_blob": False,
        "newest_summary_first": False,
        "guess_at_kept": False,
        "compaction_turn_bubble_in_blob": False,
        "pre_log_messages": 0,
        "pre_dual_write_messages": 0,
        "first_after_dual_write": Sql("NULL::BIGINT"),
        "last_unlogged_user_ts": Sql("NULL::BIGINT"),
        "resumed_without_append": 0,
        "keyless_bubbles": 0,
        "own_unlogged_prefix": 0,
    }
    return {**base, **over}


def counts(**over: Any) -> dict[str, Any]:
    """A field's audit_compare row: equal."""
    base = {
        "served": 10,
        "blob": 10,
        "matching": 10,
        "changed": 0,
        "missing_in_entries": 0,
        "extra_in_entries": 0,
        "first_position": Sql("NULL::BIGINT"),
    }
    return {**base, **over}


def defaults() -> dict[str, Any]:
    """A transcript-era conversation with a plain log; each test changes the facts its cause reads."""
    return {
        "diverged_fields": ["llm", "display"],
        "conversation": {
            "n_entries": 12,
            "era": "transcript",
            "parent_conversation_id": Sql("NULL::VARCHAR"),
            "updated_at": T0,
            "llm_log": True,
            "quarantined": Sql("NULL::STRUCT(seq BIGINT, reason VARCHAR, field VARCHAR)[]"),
            "queue_writes_in_source": False,
            "queue_writes_from": Sql("NULL::TIMESTAMP"),
            "dual_write_until": Sql("NULL::TIMESTAMP"),
            "created_at": T0,
        },
        "log_facts": {
            "callback_seqs": Sql("NULL::BIGINT[]"),
            "hidden_users": Sql("NULL::STRUCT(seq BIGINT, turn_id VARCHAR)[]"),
            "approx_turns": Sql("NULL::STRUCT(turn_id VARCHAR, seqs BIGINT[], kind VARCHAR)[]"),
            "duplicates": Sql("NULL::STRUCT(type VARCHAR, seqs BIGINT[])[]"),
            "summaries_without_compaction": Sql("NULL::BIGINT[]"),
            "reordered": Sql("NULL::STRUCT(compaction_seq BIGINT, turn_id VARCHAR)[]"),
            "amendments": AMENDMENTS,
            "callback_reply_seqs": Sql("NULL::BIGINT[]"),
            "keyless_bubbles": 0,
            "resume_seqs": Sql("NULL::BIGINT[]"),
            "compaction_seq": Sql("NULL::BIGINT"),
            "first_kept_seq": Sql("NULL::VARCHAR"),
            "first_type": "user_message",
            "last_entry_at": T0,
        },
        "llm_facts": item_facts(),
        "display_facts": item_facts(),
        "pending_facts": item_facts(),
        "llm_counts": counts(),
        "display_counts": counts(),
        "pending_counts": counts(),
        "queue_facts": {
            "doubled_results": Sql("NULL::VARCHAR[]"),
            "consumed_results_in_blob": Sql("NULL::VARCHAR[]"),
            "queued_results_not_in_blob": Sql("NULL::VARCHAR[]"),
        },
    }


SIGNATURE = re.compile(r"CREATE OR REPLACE MACRO (cause_\w+)\(([^)]*)\)", re.DOTALL)
MACROS = {
    name: [p.strip() for p in params.split(",")]
    for name, params in SIGNATURE.findall(read_sql("causes.sql"))
}


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    run_script(c, "causes.sql")  # needs nothing else
    return c


def fire(con: duckdb.DuckDBPyConnection, cause: str, **changes: Any) -> bool:
    """Whether ``cause``'s macro fires on the default facts with ``changes`` (group -> {fact: value} or a value)."""
    facts = defaults()
    for group, value in changes.items():
        facts[group] = {**facts[group], **value} if isinstance(value, dict) else value
    args = ", ".join(literal(facts[p]) for p in MACROS[f"cause_{cause}"])
    (got,) = con.execute(f"SELECT cause_{cause}({args})").fetchone()
    assert got is None or got["cause"] == cause
    return got is not None


# --- one test per cause: (the facts that make it fire, the one change that stops it) ----------------------------

CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # SPEC §6: no entries at all, or blob messages older than the log's first turn
    "pre_dual_write": (
        {"display_facts": item_facts(missing_prefix=2), "diverged_fields": ["display"]},
        {
            "display_facts": item_facts(missing_prefix=2, moved_items=1),
            "diverged_fields": ["display"],
        },
    ),
    # SPEC §5: a thread's copied messages, never logged
    "thread_copy_not_captured": (
        {
            "conversation": {"parent_conversation_id": "parent"},
            "display_facts": item_facts(missing_prefix=3),
        },
        {
            "conversation": {"parent_conversation_id": Sql("NULL::VARCHAR")},
            "display_facts": item_facts(missing_prefix=3),
        },
    ),
    # SPEC §5: 0.58's injected [Subagent Result] messages in the blob; 0.59.3+ ones name a taskOutcome (§7)
    "callback_turn_not_captured": (
        {"display_facts": item_facts(callback_items=1)},
        {"display_facts": item_facts(queue_callback_items=1)},
    ),
    # SPEC §5: the finalize's length diff after a compaction
    "approximate_finalize_diff": (
        {"log_facts": {"approx_turns": [{"turn_id": "t", "seqs": [5, 6], "kind": "length_diff"}]}},
        {
            "log_facts": {
                "approx_turns": [{"turn_id": "t", "seqs": [5, 6], "kind": "length_diff"}]
            },
            "diverged_fields": ["display"],
        },
    ),
    # SPEC §5: the guessed firstKeptSeq, checked only where the blob's context starts with the compaction's summary
    "guessed_first_kept_seq_off": (
        {
            "log_facts": {"compaction_seq": 14, "first_kept_seq": "10"},
            "llm_facts": item_facts(blob_first_kept_seq=12, newest_summary_in_blob=True, newest_summary_first=True),
        },
        {
            "log_facts": {"compaction_seq": 14, "first_kept_seq": "10"},
            "llm_facts": item_facts(blob_first_kept_seq=12, newest_summary_in_blob=False),
        },
    ),
    # SPEC §5 compaction: logged messages the blob moved to compactedHistory
    "compaction_moved_history": (
        {"display_facts": item_facts(moved_items=4)},
        {"display_facts": item_facts(moved_items=0)},
    ),
    # SPEC §5 resume: a resumed run's message only in the blob
    "resume_not_captured": (
        {"log_facts": {"resume_seqs": [9]}, "llm_facts": item_facts(resumed_items=1)},
        {
            "log_facts": {"resume_seqs": Sql("NULL::BIGINT[]")},
            "llm_facts": item_facts(resumed_items=1),
        },
    ),
    # SPEC §5 resume: the amendment's target bubble, as the blob holds it, lacks the appended text
    "amendment_wrong_target": (
        {
            "log_facts": {
                "amendments": [
                    {
                        "seq": 9,
                        "target": "e4",
                        "target_seq": 4,
                        "target_turn": "a",
                        "expected_turn": "b",
                        "target_in_blob": True,
                        "target_has_text": False,
                    }
                ]
            }
        },
        {
            "log_facts": {
                "amendments": [
                    {
                        "seq": 9,
                        "target": "e4",
                        "target_seq": 4,
                        "target_turn": "a",
                        "expected_turn": "b",
                        "target_in_blob": True,
                        "target_has_text": True,
                    }
                ]
            }
        },
    ),
    # SPEC §5: a blob message the log never saw, inside the logged history
    "lost_or_reordered_append": (
        {"display_facts": item_facts(lost_positions=[3], last_in_log=9)},
        # the same position, in the blob's unlogged tail of whole turns 0.59.3+ wrote (dual_write_ended)
        {
            "conversation": {"queue_writes_in_source": True},
            "display_facts": item_facts(
                lost_positions=[10],
                last_in_log=9,
                unlogged_tail_users=1,
                unlogged_tail_bubbles=1,
                first_unlogged_user=10,
            )
        },
    ),
    # SPEC §5: a turn's final blob write lost while later turns went on from the blob
    "stale_blob": (
        {"display_facts": item_facts(stale_turn_seqs=[6])},
        {"display_facts": item_facts()},
    ),
    # SPEC §7: the blob lists one result twice
    "result_delivered_twice": (
        {"diverged_fields": ["pending"], "queue_facts": {"doubled_results": ["s1@1"]}},
        {"diverged_fields": ["display"], "queue_facts": {"doubled_results": ["s1@1"]}},
    ),
    # SPEC §3/§7: a consumed result still pending in the blob
    "consumed_result_kept_in_blob": (
        {"diverged_fields": ["pending"], "queue_facts": {"consumed_results_in_blob": ["s1@1"]}},
        {"diverged_fields": ["pending"]},
    ),
    # SPEC §7: a queued result the blob lacks
    "queued_result_not_in_blob": (
        {"diverged_fields": ["pending"], "queue_facts": {"queued_results_not_in_blob": ["s1@1"]}},
        {"diverged_fields": ["pending"]},
    ),
    # SPEC §7: 0.59.3+ wrote turns the log never holds
    "dual_write_ended": (
        {
            "conversation": {"queue_writes_in_source": True},
            "display_facts": item_facts(unlogged_tail_users=1, unlogged_tail_bubbles=1),
        },
        # only a bubble after the log's end: the last logged turn's finalize was lost
        {
            "conversation": {"queue_writes_in_source": True},
            "display_facts": item_facts(unlogged_tail_users=0, unlogged_tail_bubbles=1),
        },
    ),
    # the load quarantined entry rows of a diverged conversation
    "quarantined_entries": (
        {"conversation": {"quarantined": [{"seq": 3, "reason": "bad", "field": "message"}]}},
        {},
    ),
    # SPEC §6: a matching conversation whose blob is newer than its log (0.58's get -> update)
    "blob_overwritten_by_rebuild": (
        {"diverged_fields": Sql("[]::VARCHAR[]"), "conversation": {"updated_at": T9}},
        {"diverged_fields": Sql("[]::VARCHAR[]")},
    ),
}


@pytest.mark.parametrize("cause", sorted(CASES))
def test_each_cause_fires_on_its_facts_and_not_without_them(
    con: duckdb.DuckDBPyConnection, cause: str
) -> None:
    fires, stops = CASES[cause]
    assert fire(con, cause, **fires)
    assert not fire(con, cause, **stops)


def test_pre_dual_write_also_fires_with_no_entries(con: duckdb.DuckDBPyConnection) -> None:
    assert fire(
        con, "pre_dual_write", conversation={"n_entries": 0}, diverged_fields=Sql("[]::VARCHAR[]")
    )
    # created after the source's last transcript entry, in a source 0.59.3+ wrote: that release's, no history
    after = {"n_entries": 0, "queue_writes_in_source": True, "created_at": T9, "dual_write_until": T0}
    assert not fire(con, "pre_dual_write", conversation=after, diverged_fields=Sql("[]::VARCHAR[]"))
    assert fire(con, "pre_dual_write", conversation={**after, "queue_writes_in_source": False},
                diverged_fields=Sql("[]::VARCHAR[]"))  # fmt: skip


def test_pre_dual_write_also_fires_on_messages_dated_before_the_log(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # a compaction moved them to compactedHistory: no leading gap is left, only their timestamps
    older = item_facts(moved_items=2, pre_log_messages=3)
    assert fire(con, "pre_dual_write", log_facts={"compaction_seq": 14}, display_facts=older)
    assert not fire(
        con,
        "pre_dual_write",
        log_facts={"compaction_seq": 14, "first_type": "harness_message"},
        display_facts=older,
    )


def test_a_lost_finalize_before_the_unlogged_turns_is_still_a_lost_append(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # the last logged turn's bubble (position 10) precedes the first unlogged 0.59.3+ user message (11)
    tail = item_facts(
        lost_positions=[10, 11, 12],
        last_in_log=9,
        unlogged_tail_users=1,
        unlogged_tail_bubbles=2,
        first_unlogged_user=11,
    )
    assert fire(con, "lost_or_reordered_append", display_facts=tail)


def test_an_unlogged_turn_is_0593s_only_in_a_source_that_release_wrote(con: duckdb.DuckDBPyConnection) -> None:
    # SPEC §5, §7: the last turn's user message and bubble after everything the log holds; a 0.58 turn whose
    # user_message and finalize appends were both lost leaves the same tail, and is all it can be in a
    # database no write of 0.59.3+ shows (audit_source_facts)
    tail = item_facts(lost_positions=[10, 11], last_in_log=9, unlogged_tail_users=1, unlogged_tail_bubbles=1,
                      first_unlogged_user=10)  # fmt: skip
    for cause, in_source in (("dual_write_ended", True), ("lost_or_reordered_append", False)):
        other = "lost_or_reordered_append" if cause == "dual_write_ended" else "dual_write_ended"
        seen = {"queue_writes_in_source": in_source}
        assert fire(con, cause, conversation=seen, display_facts=tail), cause
        assert not fire(con, other, conversation=seen, display_facts=tail), cause
    # the conversation's own log looks like 0.59.3+'s (its era): so it is, in a source that release wrote; in
    # one it never wrote, it is a 0.58 callback whose hidden messages and reply were lost
    assert fire(con, "dual_write_ended", conversation={"era": "mixed", "queue_writes_in_source": True})
    assert not fire(con, "dual_write_ended", conversation={"era": "mixed", "queue_writes_in_source": False})


def test_an_unlogged_tail_dated_before_the_first_0593_write_is_lost_where_releases_took_turns(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # the tail's last user message at 1000 ms; the source's first 0.59.3+ write at 2000 ms
    tail = item_facts(lost_positions=[10, 11], last_in_log=9, unlogged_tail_users=1, unlogged_tail_bubbles=1,
                      first_unlogged_user=10, last_unlogged_user_ts=1000)  # fmt: skip
    first_queue_write = Sql("make_timestamp(2000 * 1000)")
    in_turn = {"queue_writes_in_source": True, "queue_writes_from": first_queue_write,
               "dual_write_until": Sql("make_timestamp(1500 * 1000)")}  # fmt: skip
    assert fire(con, "lost_or_reordered_append", conversation=in_turn, display_facts=tail)
    assert not fire(con, "dual_write_ended", conversation=in_turn, display_facts=tail)
    # the source's dual-write went on after its first 0.59.3+ write (releases coexisted): the date decides nothing
    overlapping = {**in_turn, "dual_write_until": Sql("make_timestamp(2500 * 1000)")}
    assert fire(con, "dual_write_ended", conversation=overlapping, display_facts=tail)
    assert not fire(con, "lost_or_reordered_append", conversation=overlapping, display_facts=tail)


def test_blob_items_dated_after_the_sources_last_transcript_entry_are_0593s(con: duckdb.DuckDBPyConnection) -> None:
    # a 0.59.3+ resume's message (position 10) right after the last logged turn, no user message after it
    after = item_facts(lost_positions=[10], last_in_log=9, first_after_dual_write=10)
    wrote = {"queue_writes_in_source": True}
    assert fire(con, "dual_write_ended", conversation=wrote, llm_facts=after)
    assert not fire(con, "lost_or_reordered_append", conversation=wrote, llm_facts=after)
    # in a source 0.59.3+ never wrote, the date alone says nothing: a lost append
    assert fire(con, "lost_or_reordered_append", llm_facts=after)
    assert not fire(con, "dual_write_ended", llm_facts=after)


def test_messages_dated_before_the_sources_dual_write_are_pre_dual_write(con: duckdb.DuckDBPyConnection) -> None:
    # the log starts with a resume's bubble: without the date, a lost start
    start = {"first_type": "assistant_message"}
    gap = item_facts(missing_prefix=4)
    assert fire(con, "lost_or_reordered_append", log_facts=start, display_facts=gap)
    assert not fire(con, "pre_dual_write", log_facts=start, display_facts=gap)
    dated = item_facts(missing_prefix=4, pre_dual_write_messages=4)
    assert fire(con, "pre_dual_write", log_facts=start, display_facts=dated)
    assert not fire(con, "lost_or_reordered_append", log_facts=start, display_facts=dated)
    # a log of queue entries only: the blob's turns dated before any transcript entry of the source
    queue_only = {"era": "queue", "queue_writes_in_source": True}
    assert fire(con, "pre_dual_write", conversation=queue_only, log_facts={"first_type": "subagent_result"},
                display_facts=item_facts(pre_dual_write_messages=6))  # fmt: skip


def test_a_merged_resume_whose_amendment_was_lost_is_a_resume_and_a_lost_append(con: duckdb.DuckDBPyConnection) -> None:
    resumed = item_facts(resumed_without_append=1, lost_positions=[12], last_in_log=11)
    assert fire(con, "resume_not_captured", llm_facts=resumed)
    assert fire(con, "lost_or_reordered_append", llm_facts=resumed)
    # 0.59.3+ logs no resume at all: there the lone message is its own
    queue = {"era": "mixed", "queue_writes_in_source": True}
    assert not fire(con, "resume_not_captured", conversation=queue, llm_facts=resumed)
    assert not fire(con, "resume_not_captured", llm_facts=item_facts(lost_positions=[12], last_in_log=11))


def test_a_lost_or_doubled_callback_reply_is_a_lost_append(con: duckdb.DuckDBPyConnection) -> None:
    # SPEC §5: one callback_started, hidden user messages and one reply bubble (it has no id) per callback turn
    callback = {"callback_seqs": [8], "hidden_users": [{"seq": 9, "turn_id": "callback-1-c"}], "keyless_bubbles": 1}
    assert not fire(con, "lost_or_reordered_append", log_facts={**callback, "callback_reply_seqs": [10]},
                    display_facts=item_facts(keyless_bubbles=1))  # fmt: skip
    # the blob holds two id-less bubbles, the log one: the second callback's reply never reached the log
    assert fire(con, "lost_or_reordered_append", log_facts={**callback, "callback_reply_seqs": [10]},
                display_facts=item_facts(keyless_bubbles=2))  # fmt: skip
    # one callback_started, two replies: the reply was logged twice (or a callback_started lost)
    assert fire(con, "lost_or_reordered_append", log_facts={**callback, "callback_reply_seqs": [10, 11]})
    # a callback_started alone, in a source 0.59.3+ never wrote: 0.58's, its hidden messages and reply lost
    started = {"callback_seqs": [8]}
    assert fire(con, "callback_turn_not_captured", log_facts=started, llm_facts=item_facts(display_copies=4))
    assert not fire(con, "callback_turn_not_captured", conversation={"queue_writes_in_source": True},
                    log_facts=started, llm_facts=item_facts(display_copies=4))  # fmt: skip


def test_a_threads_own_message_before_its_first_logged_one_is_lost(con: duckdb.DuckDBPyConnection) -> None:
    thread = {"parent_conversation_id": "parent"}
    assert not fire(con, "lost_or_reordered_append", conversation=thread, display_facts=item_facts(missing_prefix=12))
    assert fire(con, "lost_or_reordered_append", conversation=thread,
                display_facts=item_facts(missing_prefix=13, own_unlogged_prefix=1))  # fmt: skip


def test_a_guess_that_points_at_a_copy_of_the_kept_message_is_not_off(con: duckdb.DuckDBPyConnection) -> None:
    # a duplicated finalize logged the kept message at seqs 24 and 32; the guess, 32, holds it too
    kept = {"compaction_seq": 35, "first_kept_seq": "32"}
    off = item_facts(blob_first_kept_seq=24, newest_summary_in_blob=True, newest_summary_first=True)
    assert fire(con, "guessed_first_kept_seq_off", log_facts=kept, llm_facts=off)
    assert not fire(con, "guessed_first_kept_seq_off", log_facts=kept, llm_facts={**off, "guess_at_kept": True})


def test_a_summary_a_later_unlogged_compaction_kept_is_no_guess_to_judge(con: duckdb.DuckDBPyConnection) -> None:
    # 0.61.2 compacted again: its own summary leads the context, the logged one is its first kept message
    later = item_facts(blob_first_kept_seq=66, newest_summary_in_blob=True, newest_summary_first=False, unlogged_summaries=1)
    assert not fire(con, "guessed_first_kept_seq_off", log_facts={"compaction_seq": 65, "first_kept_seq": "62"}, llm_facts=later)


def test_a_silent_diff_re_append_is_no_duplicate(tmp_path: Path) -> None:
    """A lost blob write before a compaction that does not shrink the array: the length diff re-appends a logged message."""
    sim = Simulator(seed=3)
    cid = sim.create("owner-a", "Stale then compacted")
    sim.turn(cid, Turn("one", reply="r1"))
    sim.turn(cid, Turn("two", reply="r2", skip_final_update=True))  # the blob keeps 2 of the log's 4 context messages
    sim.turn(cid, Turn("three", reply="r3"))
    sim.turn(cid, Turn("four", reply="r4", compact_keep=4))  # summary + 4 kept = 5 > 4: the diff appends its last 3
    logged = [e["message"]["content"] for e in sim.backend.read(cid) if e["type"] == "harness_message"]
    assert logged.count("r3") == 2  # logged by turn three, and again by the silent diff
    row = audit_one(sim, tmp_path)
    assert row["verdict"] == "diverged"
    assert "lost_or_reordered_append" not in row["causes"], row["evidence"]
    assert set(row["causes"]) <= {t.cause for t in sim.truth}


def test_a_0593_resume_after_a_stale_turn_is_not_a_lost_append(con: duckdb.DuckDBPyConnection) -> None:
    # the context's unlogged tail starts with a resumed message (position 10), before the first unlogged user (11)
    tail = item_facts(lost_positions=[10, 11, 12], last_in_log=9, unlogged_tail_users=1, first_unlogged_user=11)
    # the display's unlogged tail starts with a 0.59.3+ user message the context lacks (its final write was lost)
    users_first = item_facts(last_in_log=7, unlogged_tail_users=2, unlogged_tail_bubbles=2, first_unlogged_user=8)
    mixed = {"era": "mixed", "queue_writes_in_source": True}
    assert fire(con, "lost_or_reordered_append", llm_facts=tail, display_facts=item_facts())  # all 0.58: lost
    assert not fire(con, "lost_or_reordered_append", conversation=mixed, llm_facts=tail, display_facts=users_first)
    # an unlogged bubble finishes the last logged turn first: a 0.58 resume whose append was lost
    bubble_first = {**users_first, "first_unlogged_user": 9, "leading_tail_bubbles": 1}
    assert fire(con, "lost_or_reordered_append", conversation=mixed, llm_facts=tail, display_facts=bubble_first)
    # the display's first unlogged user is the context's too: a 0.58 merged resume whose amendment was lost
    same_users = {**users_first, "unlogged_tail_users": 1}
    assert fire(con, "lost_or_reordered_append", conversation=mixed, llm_facts=tail, display_facts=same_users)


def test_a_compaction_held_back_past_a_write_back_is_reordered_not_stale(con: duckdb.DuckDBPyConnection) -> None:
    late = {"compaction_seq": 45}
    summary_missing = item_facts(newest_summary_in_blob=False)
    assert fire(con, "stale_blob", log_facts=late, llm_facts=summary_missing)
    assert not fire(con, "lost_or_reordered_append", log_facts=late, llm_facts=summary_missing)
    landed = {**summary_missing, "compaction_turn_bubble_in_blob": True}
    assert not fire(con, "stale_blob", log_facts=late, llm_facts=landed)
    assert fire(con, "lost_or_reordered_append", log_facts=late, llm_facts=landed)


def test_a_callback_copy_dates_nothing_though_its_callback_started_was_lost(con: duckdb.DuckDBPyConnection) -> None:
    # the blob's context is a copy of messages (display_copies); only the blob's injected message shows the callback
    copied = item_facts(display_copies=5)
    assert fire(con, "stale_blob", log_facts={"compaction_seq": 25}, llm_facts=copied)
    assert not fire(
        con, "stale_blob", log_facts={"compaction_seq": 25}, llm_facts=copied, display_facts=item_facts(callback_items=1)
    )


@pytest.mark.parametrize(("site", "fate"), [("user_turn", "duplicate"), ("compaction", "fail")])
def test_a_bubble_the_kept_messages_replaced_is_no_stale_turn(tmp_path: Path, site: str, fate: str) -> None:
    """The compaction's display keeps 3 harness messages in place of its last 3 messages (B's bubble among them).

    B's bubble is then in neither the display nor compactedHistory; what bounds that is the compaction's
    turn, which starts at its first user_message (logged twice here) or, its compaction entry lost, shows
    by the summary its finalize re-appended (logged at seq 16).
    """
    sim = Simulator(seed=3)
    cid = sim.create("owner-a", "Kept tail")
    sim.turn(cid, Turn("A?", reply="a."))  # 1u 2h 3h 4a
    sim.turn(cid, Turn("B?", reply="b."))  # 5u 6h 7h 8a
    sim.turn(cid, Turn("D?", reply="d.", tools=[("calc", "", "4")]))  # 9u 10-13h 14a
    sim.plan.force(site, fate)
    sim.turn(cid, Turn("E?", reply="e.", compact_keep=3))  # keeps D's 3 last harness messages
    row = audit_one(sim, tmp_path)
    assert row["verdict"] == "diverged"
    assert "stale_blob" not in row["causes"] and "stale_blob" not in {t.cause for t in sim.truth}, row["evidence"]


def audit_one(sim: Simulator, tmp_path: Path) -> dict[str, Any]:
    """The one conversation of ``sim``, written in the harness layout and audited under 0.58."""
    db = tmp_path / "one.db"
    Fleet.from_simulator(sim).to_sqlite(db)
    ws = poncho_replay.open()
    ws.load(db, progress=False)
    (row,) = ws.parity(policy="0.58").to_dict("records")
    ws.con.close()
    return row


# --- the three lists of causes agree --------------------------------------------------------------------------


def readme_causes() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("| cause | meaning |", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE))


def test_the_sql_the_vocabulary_and_the_readme_name_the_same_causes() -> None:
    emitted = set(re.findall(r"'cause': '(\w+)'", read_sql("causes.sql")))
    assert "['unexplained']" in read_sql("audit.sql")
    # one macro per cause, named after it
    assert {name.removeprefix("cause_") for name in MACROS} == emitted
    calls = set(re.findall(r"\bcause_(\w+)\(b\.", read_sql("audit.sql")))
    assert calls == emitted  # parity_at calls every one
    assert emitted | {"unexplained"} == set(CAUSES) == readme_causes()
    assert set(CASES) == emitted  # and each has its test above


# --- an unexplained divergence carries its slice (item 5) -----------------------------------------------------


def test_an_unexplained_row_carries_the_aligned_slice_around_its_first_divergence(
    tmp_path: Path,
) -> None:
    sim = Simulator(seed=3, verify=False)
    cid = sim.create("owner", "Edited by hand")
    for n in range(4):
        sim.turn(cid, Turn(f"Q{n}?", reply=f"A{n}."))
    db = tmp_path / "harness.db"
    Fleet.from_simulator(sim).to_sqlite(db)
    # an edit no write site of SPEC §5 makes: the third display message's text
    with sqlite3.connect(db) as c:
        data = json.loads(
            c.execute("SELECT data FROM conversations WHERE id = ?", [cid]).fetchone()[0]
        )
        data["messages"][2]["content"] = "edited"
        c.execute("UPDATE conversations SET data = ? WHERE id = ?", [json.dumps(data), cid])
    ws = poncho_replay.open()
    ws.load(db, progress=False)
    row = ws.parity().set_index("conversation_id").loc[cid]
    assert list(row["causes"]) == ["unexplained"]
    (display,) = row["evidence"]["unexplained"]["slices"]
    assert display["field"] == "display" and display["first_position"] == 2
    items = display["items"]
    # three before (as many as there are), three after
    assert [i["position"] for i in items] == [0, 1, 2, 3, 4, 5]
    edited = items[2]
    assert edited["blob"] == "user:edited" and edited["entries"] == "user:Q1?"
    # the same message, by id: the log seq on both sides
    assert edited["entries_seq"] == edited["blob_seq"]
    assert all(i["entries"] == i["blob"] for i in items if i["position"] != 2)
