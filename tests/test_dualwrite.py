"""The dual-write helpers of SPEC §5: builders, the finalize diff, the guessed
``firstKeptSeq`` and the parity check's exact log line.

Expected log lines are written by hand from ``verifyEntriesParity``:
``JSON.stringify(projection).slice(0, 120)`` with JavaScript's quoting,
UTF-16 slicing and ``/\\s+/g`` whitespace.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poncho_replay.dualwrite import (
    assistant_amendment_entry,
    assistant_message_entry,
    callback_started_entry,
    compaction_entry,
    guess_first_kept_seq,
    harness_message_entries,
    new_harness_messages_this_turn,
    parity_check,
    project_text,
    stamp_ids,
    subagent_result_entry,
    user_message_entry,
)
from poncho_replay.models import Message, parse_entry
from poncho_replay.rebuild import build_display_snapshot, build_llm_context
from tests.strategies import entry_logs, messages

USER = {"role": "user", "content": "Hello   world"}
REPLY = {"role": "assistant", "content": "Hi!"}
RESULT = {"subagentId": "sa-1", "task": "t", "status": "error", "error": "boom", "timestamp": 5}


def stored(new_entries: list[dict]) -> list[dict]:
    """Give builder output ids, seqs and createdAt, as appendEntriesSafe + a store would."""
    counter = itertools.count(1)
    return [
        e | {"seq": i, "createdAt": 1000 + i}
        for i, e in enumerate(stamp_ids(new_entries, lambda: f"id{next(counter)}"), 1)
    ]


# --- builders -------------------------------------------------------------------------


def test_builders_produce_the_harness_shapes() -> None:
    assert user_message_entry(USER, "t1") == {
        "type": "user_message",
        "message": USER,
        "turnId": "t1",
    }
    assert user_message_entry(USER, "t1", hidden=True) == {
        "type": "user_message",
        "message": USER,
        "turnId": "t1",
        "hidden": True,
    }
    assert "hidden" not in user_message_entry(USER, "t1", hidden=False)
    assert assistant_message_entry(REPLY, "t1", "run-1") == {
        "type": "assistant_message",
        "message": REPLY,
        "turnId": "t1",
        "runId": "run-1",
    }
    assert harness_message_entries([USER, REPLY], "t1") == [
        {"type": "harness_message", "message": USER, "turnId": "t1"},
        {"type": "harness_message", "message": REPLY, "turnId": "t1"},
    ]
    assert harness_message_entries([], "t1") == []
    assert subagent_result_entry(RESULT) == {"type": "subagent_result", "result": RESULT}
    assert callback_started_entry((3, 3, 7)) == {
        "type": "callback_started",
        "consumedSeqs": [3, 3, 7],
    }


def test_compaction_entry_writes_token_counts_only_when_given() -> None:
    assert compaction_entry(USER, 4) == {
        "type": "compaction",
        "summaryMessage": USER,
        "firstKeptSeq": 4,
    }
    assert compaction_entry(USER, 4, tokens_before=0) == {
        "type": "compaction",
        "summaryMessage": USER,
        "firstKeptSeq": 4,
        "tokensBefore": 0,
    }
    assert compaction_entry(USER, 4, tokens_after=9)["tokensAfter"] == 9


def test_amendment_drops_an_empty_append_text() -> None:
    assert assistant_amendment_entry("a1", "") == {
        "type": "assistant_amendment",
        "targetEntryId": "a1",
    }
    assert assistant_amendment_entry("a1", " more") == {
        "type": "assistant_amendment",
        "targetEntryId": "a1",
        "appendText": " more",
    }


def test_builders_accept_models() -> None:
    assert user_message_entry(Message.from_dict(USER), "t")["message"] == USER


def test_stamp_ids_puts_a_fresh_id_first_and_an_existing_id_wins() -> None:
    ids = iter(["x1", "x2"])
    out = stamp_ids(
        [
            {"type": "callback_started", "consumedSeqs": []},
            {"id": "keep", "type": "callback_started", "consumedSeqs": []},
        ],
        lambda: next(ids),
    )
    assert out == [
        {"id": "x1", "type": "callback_started", "consumedSeqs": []},
        {"id": "keep", "type": "callback_started", "consumedSeqs": []},
    ]
    assert list(out[0]) == ["id", "type", "consumedSeqs"]
    assert len({e["id"] for e in stamp_ids([{}, {}, {}])}) == 3  # uuid4 by default


def test_every_builder_output_is_a_valid_entry_once_stored() -> None:
    built = [
        user_message_entry(USER, "t", hidden=True),
        assistant_message_entry(REPLY, "t", "r"),
        assistant_amendment_entry("id2", "x"),
        *harness_message_entries([USER], "t"),
        compaction_entry(USER, 1, tokens_before=10),
        subagent_result_entry(RESULT),
        callback_started_entry([6]),
    ]
    for entry in stored(built):
        assert parse_entry(entry).to_dict() == entry


# --- new harness messages this turn ------------------------------------------------------

A, B, C, S = ({"role": "user", "content": x} for x in "abcs")


@pytest.mark.parametrize(
    ("prev", "next_", "expected"),
    [
        (None, None, ([], False)),
        ([A], None, ([], False)),
        ([A], [], ([], False)),
        (None, [A, B], ([A, B], False)),
        ([], [A], ([A], False)),
        ([A], [A, B, C], ([B, C], False)),
        ([A, B], [C, S], ([], False)),  # same length: no suffix, not flagged
        ([A, B, C], [S, C], ([S, C], True)),  # shrank (compaction): the whole array, approximate
    ],
)
def test_new_harness_messages_this_turn(
    prev: Any, next_: Any, expected: tuple[list[dict], bool]
) -> None:
    assert new_harness_messages_this_turn(prev, next_) == expected


@given(st.lists(messages(), max_size=5), st.lists(messages(), max_size=5))
def test_appending_the_diff_rebuilds_the_new_context(prev: list[dict], added: list[dict]) -> None:
    new, approximate = new_harness_messages_this_turn(prev, prev + added)
    assert (new, approximate) == (added, False)
    log = stored([*harness_message_entries(prev, "t0"), *harness_message_entries(new, "t1")])
    assert build_llm_context(log) == prev + added


# --- guessed firstKeptSeq ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seqs", "compacted", "expected"),
    [
        ([2, 3, 5, 8], 3, 5),  # summary + 2 kept: the 2nd-from-last harness seq
        ([2, 3, 5, 8], 5, 2),  # summary + 4 kept: exactly enough
        ([2, 3, 5, 8], 1, 9),  # summary only: one past the last
        ([2, 3, 5, 8], 0, 9),  # nothing compacted: kept = max(0, -1) = 0
        ([2], 4, 3),  # too few to keep 3: one past the last
        ([], 3, 1),  # none at all
    ],
)
def test_guess_first_kept_seq(seqs: list[int], compacted: int, expected: int) -> None:
    assert guess_first_kept_seq(seqs, compacted) == expected


# --- parity check ----------------------------------------------------------------------------

LOG = stored(
    [
        user_message_entry(USER, "t"),
        *harness_message_entries([USER, REPLY], "t"),
        assistant_message_entry(REPLY, "t", "r"),
    ]
)


def test_parity_ok_after_whitespace_collapsing() -> None:
    blob = [
        {"role": "user", "content": " Hello\u3000\u2028world\t"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hi!"}]},
    ]
    result = parity_check(
        LOG, harness_messages=blob, display_messages=blob[:1] + [REPLY], conversation_id="c1"
    )
    assert result.mismatches == []
    assert result.log_line == "[entries-parity] c1 OK"
    assert result.ok


def test_parity_compares_nothing_when_no_blob_side_is_given() -> None:
    assert parity_check(LOG, conversation_id="c1").log_line == "[entries-parity] c1 OK"


def test_parity_length_mismatch_then_tail_comparison() -> None:
    blob = [{"role": "system", "content": "extra"}, USER, REPLY]
    result = parity_check(LOG, harness_messages=blob, conversation_id="c1")
    assert result.mismatches == ["llmContext length 2 (entries) vs 3 (blob)"]  # the last two agree
    assert (
        result.log_line
        == "[entries-parity] c1 MISMATCH (1): llmContext length 2 (entries) vs 3 (blob)"
    )
    assert not result.ok


def test_parity_an_empty_blob_array_is_compared() -> None:
    result = parity_check(LOG, display_messages=[], conversation_id="c1")
    assert result.mismatches == ["display length 2 (entries) vs 0 (blob)"]


def test_parity_tail_items_are_numbered_from_the_end_and_joined() -> None:
    display = [{"role": "user", "content": "Hello world!"}, REPLY]
    harness = [USER, {"role": "assistant", "content": 'say "hi"\n\x01'}]
    result = parity_check(
        LOG, harness_messages=harness, display_messages=display, conversation_id="c1"
    )
    assert result.mismatches == [
        'llmContext tail[-1] differs: entries="assistant:Hi!" blob="assistant:say \\"hi\\" \\u0001"',
        'display tail[-2] differs: entries="user:Hello world" blob="user:Hello world!"',
    ]
    assert result.log_line == "[entries-parity] c1 MISMATCH (2): " + " | ".join(result.mismatches)


def test_parity_compares_only_the_last_five() -> None:
    log = stored([user_message_entry({"role": "user", "content": f"m{i}"}, "t") for i in range(7)])
    blob = [{"role": "user", "content": "different"}, {"role": "user", "content": "also"}] + [
        {"role": "user", "content": f"m{i}"} for i in range(2, 7)
    ]
    assert parity_check(log, display_messages=blob).mismatches == []
    blob[2] = {"role": "user", "content": "changed"}
    assert parity_check(log, display_messages=blob).mismatches == [
        'display tail[-5] differs: entries="user:m2" blob="user:changed"'
    ]


def test_parity_display_counts_hidden_messages_out_and_applies_the_list_content_quirk() -> None:
    log = stored(
        [
            user_message_entry(
                {"role": "user", "content": "[Subagent Result] x"}, "t", hidden=True
            ),
            assistant_message_entry(
                {"role": "assistant", "content": [{"type": "text", "text": "Hi"}]}, "t", "r"
            ),
        ]
    )
    blob = [
        {"role": "user", "content": "[Subagent Result] x"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hi"}]},
    ]
    result = parity_check(log, display_messages=blob, conversation_id="cb")
    assert result.mismatches == [
        "display length 1 (entries) vs 2 (blob)",
        'display tail[-1] differs: entries="assistant:" blob="assistant:Hi"',
    ]


def test_parity_whitespace_javascript_does_not_collapse() -> None:
    blob = [USER, {"role": "assistant", "content": "Hi!\u0085"}]
    result = parity_check(LOG, harness_messages=blob, conversation_id="c1")
    assert result.mismatches == [
        'llmContext tail[-1] differs: entries="assistant:Hi!" blob="assistant:Hi!\x85"'
    ]


def test_parity_truncates_at_120_utf16_units_even_inside_an_emoji() -> None:
    # '"assistant:' is 11 code units, then 108 x's: the emoji's high surrogate is unit 120.
    long_text = "x" * 108 + "😀 and more"
    blob = [USER, {"role": "assistant", "content": long_text}]
    result = parity_check(LOG, harness_messages=blob, conversation_id="c1")
    expected_blob = '"assistant:' + "x" * 108 + "\ud83d"
    assert result.mismatches == [
        f'llmContext tail[-1] differs: entries="assistant:Hi!" blob={expected_blob}'
    ]
    # Astral characters before the cut count two units each: 11 + 2 * 2 + 105 = 120.
    blob[1]["content"] = "🧳🧳" + "x" * 105 + "é"
    quoted = parity_check(LOG, harness_messages=blob).mismatches[0].split(" blob=")[1]
    assert quoted == '"assistant:🧳🧳' + "x" * 105  # "é" and the closing quote are cut off


def test_parity_projects_the_summary_of_a_compaction() -> None:
    log = stored(
        [
            *harness_message_entries([USER, REPLY], "t"),
            compaction_entry({"role": "user", "content": "Summary"}, 2),
        ]
    )
    result = parity_check(log, harness_messages=[REPLY], conversation_id="c1")
    assert result.mismatches == ["llmContext length 2 (entries) vs 1 (blob)"]
    result = parity_check(
        log,
        harness_messages=[{"role": "system", "content": "Summary"}, REPLY],
        conversation_id="c1",
    )
    assert result.mismatches == [
        'llmContext tail[-2] differs: entries="user:Summary" blob="system:Summary"'
    ]


def test_parity_never_raises() -> None:
    broken = [
        *LOG,
        {
            "id": "z",
            "seq": 9,
            "createdAt": 0,
            "type": "assistant_message",
            "turnId": "t",
            "runId": "r",
        },
    ]
    result = parity_check(broken, display_messages=[USER], conversation_id="c1")
    assert result == (
        [],
        "[entries-parity] c1 checker threw (ignored): Cannot read properties of undefined (reading 'content')",
    )
    assert not result.ok
    assert (
        parity_check(broken, harness_messages=[USER, REPLY], conversation_id="c1").log_line
        == "[entries-parity] c1 OK"
    )


def test_project_text() -> None:
    assert (
        project_text(
            {
                "role": "tool",
                "content": [
                    {"type": "text", "text": " a\n"},
                    {"type": "file", "data": "x", "mediaType": "t"},
                    {"type": "text", "text": " b "},
                ],
            }
        )
        == "tool:a b"
    )
    assert project_text(Message.from_dict(REPLY)) == "assistant:Hi!"


@given(entry_logs(max_size=15))
def test_a_log_agrees_with_its_own_rebuild(entries: list[dict]) -> None:
    harness = build_llm_context(entries)
    display = build_display_snapshot(entries, 10**6).messages
    assert (
        parity_check(entries, harness, display, conversation_id="x").log_line
        == "[entries-parity] x OK"
    )
    extra = {"role": "user", "content": "one more"}
    result = parity_check(entries, harness, [*display, extra], conversation_id="x")
    assert (
        result.mismatches[0]
        == f"display length {len(display)} (entries) vs {len(display) + 1} (blob)"
    )
    assert result.log_line.startswith(
        f"[entries-parity] x MISMATCH ({len(result.mismatches)}): display length"
    )
