"""The rebuild rules of SPEC §3, quirks included, and the read cutover.

Hand-built logs with expected values written from the SPEC, then
property-based checks on random logs (``tests.strategies``) against a
straight reading of the SPEC (the ``_spec_*`` oracles below).
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poncho_replay.models import Conversation, parse_conversation, parse_entry
from poncho_replay.rebuild import (
    build_display_snapshot,
    build_llm_context,
    latest_compaction,
    pending_subagent_results,
    rebuild_conversation,
    state_at,
)
from tests.strategies import conversations, entry_logs, shuffled

LOGGER = "poncho_replay.entries-read"


# --- tiny builders for hand-written logs --------------------------------------------


def msg(text: Any, role: str = "user", **extra: Any) -> dict:
    return {"role": role, "content": text, **extra}


def hm(seq: int, text: str, role: str = "user") -> dict:
    return {
        "id": f"h{seq}",
        "seq": seq,
        "createdAt": seq,
        "type": "harness_message",
        "message": msg(text, role),
        "turnId": "t",
    }


def um(seq: int, text: str, **extra: Any) -> dict:
    return {
        "id": f"u{seq}",
        "seq": seq,
        "createdAt": seq,
        "type": "user_message",
        "message": msg(text),
        "turnId": "t",
        **extra,
    }


def am(seq: int, content: Any, **msg_extra: Any) -> dict:
    return {
        "id": f"a{seq}",
        "seq": seq,
        "createdAt": seq,
        "type": "assistant_message",
        "message": msg(content, "assistant", **msg_extra),
        "turnId": "t",
        "runId": "r",
    }


def amend(seq: int, target: str, *text: str) -> dict:
    entry = {
        "id": f"m{seq}",
        "seq": seq,
        "createdAt": seq,
        "type": "assistant_amendment",
        "targetEntryId": target,
    }
    if text:
        entry["appendText"] = text[0]
    return entry


def comp(seq: int, first_kept: Any, summary: str = "S") -> dict:
    return {
        "id": f"c{seq}",
        "seq": seq,
        "createdAt": seq,
        "type": "compaction",
        "summaryMessage": msg(summary, metadata={"isCompactionSummary": True}),
        "firstKeptSeq": first_kept,
    }


def sr(seq: int, subagent_id: str) -> dict:
    result = {
        "subagentId": subagent_id,
        "task": f"task {seq}",
        "status": "completed",
        "result": f"r{seq}",
        "timestamp": seq,
    }
    return {
        "id": f"s{seq}",
        "seq": seq,
        "createdAt": seq,
        "type": "subagent_result",
        "result": result,
    }


def cb(seq: int, consumed: Any) -> dict:
    return {
        "id": f"k{seq}",
        "seq": seq,
        "createdAt": seq,
        "type": "callback_started",
        "consumedSeqs": consumed,
    }


def texts(messages: list[dict]) -> list[str]:
    return [m["content"] for m in messages]


# --- LLM context ----------------------------------------------------------------------


def test_llm_context_without_compaction_is_every_harness_message_only() -> None:
    log = [
        um(1, "user says"),
        hm(2, "h2"),
        am(3, "bubble"),
        hm(4, "h4", "assistant"),
        sr(5, "x"),
        cb(6, [5]),
    ]
    assert build_llm_context(log) == [msg("h2"), msg("h4", "assistant")]
    assert build_llm_context([]) == []


def test_llm_context_keeps_harness_messages_before_and_after_the_compaction() -> None:
    log = [hm(1, "h1"), hm(2, "h2"), hm(3, "h3"), comp(4, 2), hm(5, "h5")]
    assert texts(build_llm_context(log)) == ["S", "h2", "h3", "h5"]
    assert build_llm_context(log)[0] == log[3]["summaryMessage"]


def test_llm_context_first_kept_seq_after_the_compaction_entry() -> None:
    log = [hm(1, "h1"), comp(2, 4), hm(3, "h3"), hm(4, "h4"), hm(5, "h5")]
    assert texts(build_llm_context(log)) == ["S", "h4", "h5"]


def test_llm_context_first_kept_seq_past_every_harness_message_keeps_only_the_summary() -> None:
    log = [hm(1, "h1"), hm(2, "h2"), comp(3, 10)]
    assert texts(build_llm_context(log)) == ["S"]


def test_layered_compactions_only_the_latest_counts() -> None:
    # The first summary was re-appended as a harness message, and the second
    # compaction's firstKeptSeq points at it (the sample DB's "Thesis outline").
    log = [
        hm(1, "h1"),
        hm(2, "h2"),
        comp(3, 2, "S1"),
        hm(4, "S1"),
        hm(5, "h5"),
        comp(6, 4, "S2"),
        hm(7, "h7"),
    ]
    assert texts(build_llm_context(log)) == ["S2", "S1", "h5", "h7"]
    assert latest_compaction(log) == log[5]
    # ... even when the latest compaction keeps more than the earlier one did.
    log[5]["firstKeptSeq"] = 1
    assert texts(build_llm_context(log)) == ["S2", "h1", "h2", "S1", "h5", "h7"]


def test_unsorted_input_is_sorted_by_seq_first() -> None:
    log = [hm(3, "h3"), comp(2, 1, "S"), hm(1, "h1"), hm(4, "h4")]
    assert texts(build_llm_context(log)) == ["S", "h1", "h3", "h4"]


def test_first_kept_seq_coercions_on_unvalidated_dicts_follow_javascript() -> None:
    log = [hm(1, "h1"), hm(2, "h2"), hm(3, "h3"), comp(4, None)]
    assert texts(build_llm_context(log)) == ["S", "h1", "h2", "h3"]  # seq >= null: null is 0
    del log[3]["firstKeptSeq"]
    assert texts(build_llm_context(log)) == ["S"]  # seq >= undefined is always false
    log[3]["firstKeptSeq"] = "3"
    assert texts(build_llm_context(log)) == ["S", "h3"]  # the string is compared as a number


# --- display snapshot -----------------------------------------------------------------


def test_display_shows_visible_user_and_assistant_messages_only() -> None:
    log = [
        um(1, "visible"),
        um(2, "reminder", hidden=True),
        um(3, "hidden false", hidden=False),
        um(4, "hidden null", hidden=None),
        hm(5, "model only"),
        am(6, "answer"),
        comp(7, 1),
        sr(8, "x"),
        cb(9, [8]),
    ]
    snap = build_display_snapshot(log, 100)
    assert texts(snap.messages) == ["visible", "hidden false", "hidden null", "answer"]
    assert (snap.total_messages, snap.head_seq) == (4, 1)
    assert snap.to_dict() == {"messages": snap.messages, "totalMessages": 4, "headSeq": 1}


def test_assistant_list_content_becomes_empty_string_but_user_list_content_stays() -> None:
    parts = [{"type": "text", "text": "lost"}]
    log = [um(1, parts), am(2, copy.deepcopy(parts), metadata={"id": "msg-2", "runId": "r"})]
    snap = build_display_snapshot(log, 10)
    assert snap.messages[0] == msg(parts)
    assert snap.messages[1] == {
        "role": "assistant",
        "content": "",
        "metadata": {"id": "msg-2", "runId": "r"},
    }
    assert log[1]["message"]["content"] == parts  # the entry itself is not touched


def test_amendments_append_in_seq_order_and_only_to_their_target() -> None:
    log = [
        amend(1, "a3", "early "),  # before its target: still applied
        um(2, "q"),
        am(3, "Hello"),
        amend(4, "a3", ", world"),
        amend(5, "a3"),  # no appendText: adds nothing
        amend(6, "a3", ""),  # empty appendText: adds nothing
        amend(7, "nowhere", "lost"),  # unknown id: ignored
        amend(8, "u2", "lost"),  # targets a user message: ignored
        am(9, [{"type": "text", "text": "x"}]),
        amend(10, "a9", "only this"),
        amend(11, "a3", "!"),
    ]
    assert texts(build_display_snapshot(log, 10).messages) == [
        "q",
        "Helloearly , world!",
        "only this",
    ]
    assert texts(build_display_snapshot(list(reversed(log)), 10).messages) == [
        "q",
        "Helloearly , world!",
        "only this",
    ]


def test_a_non_string_append_text_is_coerced_like_javascript_plus_equals() -> None:
    log = [am(1, "n="), amend(2, "a1", "x"), amend(3, "a1", "y")]
    log[1]["appendText"] = 5
    log[2]["appendText"] = [1, None]
    assert texts(build_display_snapshot(log, 1).messages) == ["n=51,"]


@pytest.mark.parametrize(
    ("tail_n", "expected", "head"),
    [
        (0, [], None),
        (-1, [], None),
        (1, ["a4"], 4),
        (2, ["u3", "a4"], 3),
        (3, ["a2", "u3", "a4"], 2),
        (4, ["u1", "a2", "u3", "a4"], 1),
        (99, ["u1", "a2", "u3", "a4"], 1),
    ],
)
def test_display_tail(tail_n: int, expected: list[str], head: int | None) -> None:
    log = [um(1, "u1"), am(2, "a2"), um(3, "u3"), am(4, "a4"), hm(5, "h")]
    snap = build_display_snapshot(log, tail_n)
    assert texts(snap.messages) == expected
    assert (snap.total_messages, snap.head_seq) == (4, head)


def test_display_of_an_empty_log() -> None:
    snap = build_display_snapshot([], 0)
    assert (snap.messages, snap.total_messages, snap.head_seq) == ([], 0, None)


# --- pending subagent results ---------------------------------------------------------


def test_pending_results_are_the_unconsumed_ones_in_seq_order() -> None:
    log = [sr(1, "a"), sr(2, "b"), cb(3, [1]), sr(4, "c")]
    assert [r["subagentId"] for r in pending_subagent_results(log)] == ["b", "c"]
    assert pending_subagent_results(log)[0] == log[1]["result"]


def test_consumed_seqs_count_wherever_the_callback_sits() -> None:
    log = [cb(1, [3]), sr(2, "a"), sr(3, "b")]  # the callback comes before the result it names
    assert [r["subagentId"] for r in pending_subagent_results(log)] == ["a"]


def test_consumption_is_by_seq_not_by_subagent_id() -> None:
    log = [
        sr(1, "a"),
        sr(2, "a"),
        cb(3, [2, 2, 99, 3]),
    ]  # repeats, unknown and non-result seqs are harmless
    assert [r["task"] for r in pending_subagent_results(log)] == ["task 1"]
    assert pending_subagent_results([]) == []


def test_only_numbers_consume_on_unvalidated_dicts() -> None:
    log = [
        sr(1, "a"),
        sr(2, "b"),
        sr(3, "c"),
        cb(4, ["1", True, [3], 2.0]),
    ]  # "1" !== 1, true !== 1
    assert [r["subagentId"] for r in pending_subagent_results(log)] == ["a", "c"]


# --- read cutover (rebuild_conversation) ------------------------------------------------

BLOB_RESULT = {"subagentId": "blob", "task": "t", "status": "completed", "timestamp": 0}


def blob(**extra: Any) -> dict:
    return {
        "conversationId": "c1",
        "title": "t",
        "messages": [msg("blob user"), msg("blob reply", "assistant")],
        "_harnessMessages": [msg("blob harness")],
        "_continuationMessages": [msg("continuation")],
        "pendingApprovals": [{"approvalId": "ap1"}],
        "pendingSubagentResults": [BLOB_RESULT],
        "ownerId": "local-owner",
        "tenantId": None,
        "createdAt": 1,
        "updatedAt": 2,
        **extra,
    }


LOG = [
    um(1, "q"),
    hm(2, "q"),
    hm(3, "ans", "assistant"),
    am(4, "ans"),
    sr(5, "x"),
    sr(6, "y"),
    cb(7, [5]),
]


def test_cutover_replaces_the_three_fields_and_nothing_else() -> None:
    out = rebuild_conversation(blob(), LOG)
    assert out["_harnessMessages"] == [msg("q"), msg("ans", "assistant")]
    assert out["messages"] == [msg("q"), msg("ans", "assistant")]
    assert out["pendingSubagentResults"] == [LOG[5]["result"]]
    untouched = {
        k: v
        for k, v in blob().items()
        if k not in ("_harnessMessages", "messages", "pendingSubagentResults")
    }
    assert {k: out[k] for k in untouched} == untouched


def test_cutover_works_on_models_and_returns_a_model() -> None:
    conv = parse_conversation(blob())
    out = rebuild_conversation(conv, [parse_entry(e) for e in LOG])
    assert isinstance(out, Conversation) and out is not conv
    assert out.to_dict() == rebuild_conversation(blob(), LOG)


def test_cutover_sets_pending_results_even_when_the_blob_had_none() -> None:
    data = blob()
    del data["pendingSubagentResults"]
    assert rebuild_conversation(data, [um(1, "q")])["pendingSubagentResults"] == []


@pytest.mark.parametrize("value", ["1", "", "false", "00", " 0"])
def test_only_exactly_zero_switches_the_cutover_off(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PONCHO_READ_ENTRIES", value)
    assert rebuild_conversation(blob(), LOG)["messages"] == [msg("q"), msg("ans", "assistant")]


def test_kill_switch_and_cutover_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONCHO_READ_ENTRIES", "0")
    assert rebuild_conversation(blob(), LOG) == blob()
    assert rebuild_conversation(blob(), LOG, cutover=True)["_harnessMessages"] == [
        msg("q"),
        msg("ans", "assistant"),
    ]
    monkeypatch.delenv("PONCHO_READ_ENTRIES")
    assert rebuild_conversation(blob(), LOG, cutover=False) == blob()


def test_no_entries_falls_back_to_the_blob_silently(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert rebuild_conversation(blob(), []) == blob()
        assert rebuild_conversation(parse_conversation(blob()), []).to_dict() == blob()
    assert caplog.records == []


def test_policies() -> None:
    only_pending = rebuild_conversation(blob(), LOG, policy="0.59.0")
    assert only_pending == blob() | {"pendingSubagentResults": [LOG[5]["result"]]}
    assert rebuild_conversation(blob(), LOG, policy="blob") == blob()
    with pytest.raises(ValueError):
        rebuild_conversation(blob(), LOG, policy="0.59")  # type: ignore[arg-type]


@pytest.mark.parametrize(("message", "word"), [("absent", "undefined"), (None, "null")])
def test_partial_rebuild_when_an_assistant_entry_has_no_message(
    caplog: pytest.LogCaptureFixture, message: Any, word: str
) -> None:
    broken = am(4, "ans")
    if message == "absent":
        del broken["message"]
    else:
        broken["message"] = message
    log = [*LOG[:3], broken, *LOG[4:]]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = rebuild_conversation(blob(), log)
    assert out["_harnessMessages"] == [
        msg("q"),
        msg("ans", "assistant"),
    ]  # assigned before the error
    assert out["messages"] == blob()["messages"]  # the blob's
    assert out["pendingSubagentResults"] == [BLOB_RESULT]  # the blob's
    assert caplog.messages == [
        f"[entries-read] c1 rebuild failed, using blob: Cannot read properties of {word} (reading 'content')"
    ]


def test_partial_rebuild_on_a_model_conversation(caplog: pytest.LogCaptureFixture) -> None:
    log = [*LOG[:3], {k: v for k, v in am(4, "x").items() if k != "message"}]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = rebuild_conversation(parse_conversation(blob()), log)
    assert [m.text for m in out.harness_messages or []] == ["q", "ans"]
    assert [m.text for m in out.messages] == ["blob user", "blob reply"]
    assert len(caplog.messages) == 1


def test_broken_consumed_seqs_keeps_the_blob_pending_results(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = rebuild_conversation(blob(), [*LOG, cb(8, None)])
    assert out["messages"] == [msg("q"), msg("ans", "assistant")]
    assert out["pendingSubagentResults"] == [BLOB_RESULT]
    assert caplog.messages == [
        "[entries-read] c1 rebuild failed, using blob: e.consumedSeqs is not iterable"
    ]


# --- state_at (replay) -------------------------------------------------------------------


def test_state_at_uses_only_entries_up_to_the_seq() -> None:
    log = [um(1, "q"), hm(2, "h2"), hm(3, "h3"), sr(4, "x"), comp(5, 3), cb(6, [4]), am(7, "a")]
    at4 = state_at(log, 4)
    assert (texts(at4.llm_context), texts(at4.messages), at4.latest_compaction) == (
        ["h2", "h3"],
        ["q"],
        None,
    )
    assert [r["subagentId"] for r in at4.pending_subagent_results] == ["x"]
    at6 = state_at(log, 6)
    assert texts(at6.llm_context) == ["S", "h3"]
    assert at6.pending_subagent_results == []
    assert at6.latest_compaction == log[4]
    assert texts(state_at(log, 7).messages) == ["q", "a"]
    assert [e["seq"] for e in state_at(list(reversed(log)), 3).entries] == [1, 2, 3]
    empty = state_at(log, 0)
    assert (empty.llm_context, empty.display.total_messages, empty.pending_subagent_results) == (
        [],
        0,
        [],
    )


# --- property-based: the SPEC read plainly, on random logs -------------------------------


def _by_seq(entries: list[dict]) -> list[dict]:
    return sorted(entries, key=lambda e: e["seq"])


def _spec_llm(entries: list[dict]) -> list[dict]:
    ordered = _by_seq(entries)
    harness = [e for e in ordered if e["type"] == "harness_message"]
    compactions = [e for e in ordered if e["type"] == "compaction"]
    if not compactions:
        return [e["message"] for e in harness]
    latest = compactions[-1]
    return [
        latest["summaryMessage"],
        *(e["message"] for e in harness if e["seq"] >= latest["firstKeptSeq"]),
    ]


def _spec_display(entries: list[dict]) -> list[tuple[int, dict]]:
    ordered = _by_seq(entries)
    out = []
    for e in ordered:
        if e["type"] == "user_message" and not e.get("hidden"):
            out.append((e["seq"], e["message"]))
        elif e["type"] == "assistant_message":
            content = e["message"]["content"] if isinstance(e["message"]["content"], str) else ""
            for a in ordered:
                if (
                    a["type"] == "assistant_amendment"
                    and a["targetEntryId"] == e["id"]
                    and a.get("appendText")
                ):
                    content += a["appendText"]
            out.append((e["seq"], {**e["message"], "content": content}))
    return out


def _spec_pending(entries: list[dict]) -> list[dict]:
    consumed = {s for e in entries if e["type"] == "callback_started" for s in e["consumedSeqs"]}
    return [
        e["result"]
        for e in _by_seq(entries)
        if e["type"] == "subagent_result" and e["seq"] not in consumed
    ]


@given(shuffled(entry_logs()))
def test_rebuilds_match_the_spec_on_random_logs(entries: list[dict]) -> None:
    assert build_llm_context(entries) == _spec_llm(entries)
    full = build_display_snapshot(entries, 100_000)
    assert full.messages == [m for _, m in _spec_display(entries)]
    assert pending_subagent_results(entries) == _spec_pending(entries)


@given(entry_logs(max_size=15))
def test_models_and_dicts_rebuild_the_same(entries: list[dict]) -> None:
    models = [parse_entry(e) for e in entries]
    assert build_llm_context(models) == build_llm_context(entries)
    assert build_display_snapshot(models, 7) == build_display_snapshot(entries, 7)
    assert pending_subagent_results(models) == pending_subagent_results(entries)


@given(entry_logs())
def test_display_tail_is_consistent_for_every_tail_n(entries: list[dict]) -> None:
    expected = _spec_display(entries)
    total = len(expected)
    for tail_n in range(-1, total + 3):
        snap = build_display_snapshot(entries, tail_n)
        kept = expected[max(total - tail_n, 0) :] if tail_n > 0 else []
        assert snap.total_messages == total
        assert snap.messages == [m for _, m in kept]
        assert snap.head_seq == (kept[0][0] if kept else None)


@given(entry_logs(), st.data())
def test_state_at_max_seq_is_the_full_rebuild_and_prefixes_agree(
    entries: list[dict], data: st.DataObject
) -> None:
    max_seq = max((e["seq"] for e in entries), default=0)
    state = state_at(entries, max_seq)
    assert state.llm_context == build_llm_context(entries)
    assert state.display == build_display_snapshot(entries, 100_000)
    assert state.pending_subagent_results == pending_subagent_results(entries)
    seq = data.draw(st.integers(0, max_seq + 1))
    prefix = [e for e in entries if e["seq"] <= seq]
    at = state_at(entries, seq)
    assert at.llm_context == _spec_llm(prefix)
    assert at.pending_subagent_results == _spec_pending(prefix)
    assert at.display.total_messages == len(_spec_display(prefix))


@given(
    conversations(),
    entry_logs(max_size=12),
    st.sampled_from(["0.58", "0.59.0", "blob"]),
    st.booleans(),
)
def test_rebuild_conversation_never_mutates_its_input(
    conv: dict, entries: list[dict], policy: str, as_model: bool
) -> None:
    conv_before, entries_before = copy.deepcopy(conv), copy.deepcopy(entries)
    source = parse_conversation(conv) if as_model else conv
    out = rebuild_conversation(source, entries, policy=policy)  # type: ignore[arg-type]
    assert conv == conv_before and entries == entries_before
    if as_model:
        assert source.to_dict() == conv_before  # type: ignore[union-attr]
        out = out.to_dict()  # type: ignore[union-attr]
    if not entries or policy == "blob":
        assert out == conv_before
        return
    assert out["pendingSubagentResults"] == _spec_pending(entries)
    if policy == "0.58":
        assert out["_harnessMessages"] == _spec_llm(entries)
        assert out["messages"] == [m for _, m in _spec_display(entries)]
    else:
        assert out["messages"] == conv_before["messages"]
    # Mutating the output must not reach the input either.
    out["messages"].append({"role": "user", "content": "later"})
    assert conv == conv_before


class _Capture(logging.Handler):
    """Collects the read path's warnings inside a hypothesis example (no fixtures there)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@given(conversations(conversation_id="c-prop"), entry_logs(min_size=1, max_size=12))
def test_kill_switch_and_cutover_argument_on_random_conversations(
    conv: dict, entries: list[dict]
) -> None:
    rebuilt = rebuild_conversation(conv, entries)
    assert rebuild_conversation(conv, entries, cutover=False) == conv
    with mock.patch.dict(os.environ, {"PONCHO_READ_ENTRIES": "0"}):
        assert rebuild_conversation(conv, entries) == conv
        assert rebuild_conversation(conv, entries, cutover=True) == rebuilt
    assert rebuilt["_harnessMessages"] == _spec_llm(entries)


@given(conversations(conversation_id="c-prop"), entry_logs(max_size=12), st.data())
def test_partial_rebuild_on_random_logs(
    conv: dict, entries: list[dict], data: st.DataObject
) -> None:
    broken = {"id": "broken", "seq": data.draw(st.integers(1, len(entries) + 1)), "createdAt": 0}
    broken |= {"type": "assistant_message", "turnId": "t", "runId": "r"}
    log = [*entries, broken]
    capture = _Capture()
    logging.getLogger(LOGGER).addHandler(capture)
    try:
        out = rebuild_conversation(conv, log)
    finally:
        logging.getLogger(LOGGER).removeHandler(capture)
    assert out["_harnessMessages"] == _spec_llm(log)
    assert out["messages"] == conv["messages"]
    assert out.get("pendingSubagentResults", "absent") == conv.get(
        "pendingSubagentResults", "absent"
    )
    assert capture.messages == [
        "[entries-read] c-prop rebuild failed, using blob: Cannot read properties of undefined (reading 'content')"
    ]
