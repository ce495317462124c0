"""The typed models read harness JSON and give it back exactly (SPEC §1, §2, §4).

Round trip means ``to_dict(parse(x)) == x``: absent optionals stay absent,
explicit nulls stay null, unknown keys survive at every level, and input key
order does not matter. Bad input raises ``BadEntryError`` naming the field.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import given

from poncho_replay.errors import BadEntryError, ReplayError
from poncho_replay.models import (
    AssistantAmendmentEntry,
    AssistantMessageEntry,
    CallbackStartedEntry,
    CompactionEntry,
    Conversation,
    ConversationSummary,
    DisplaySnapshot,
    HarnessMessageEntry,
    Message,
    NewAssistantMessage,
    PendingSubagentResult,
    StatusSnapshot,
    SubagentResultEntry,
    UserMessageEntry,
    entry_to_dict,
    message_text,
    parse_conversation,
    parse_entry,
    parse_new_entry,
)
from tests.strategies import as_new_entry, conversations, entry_logs, messages, pending_results

STAMP = {"seq": 4, "createdAt": 1772632201558}
USER = {"role": "user", "content": "hi"}
RESULT = {
    "subagentId": "sa-1",
    "task": "compare",
    "status": "completed",
    "result": "done",
    "timestamp": 1,
}

ONE_OF_EACH = [
    ({"id": "u", "type": "user_message", "message": USER, "turnId": "t1"}, UserMessageEntry),
    (
        {
            "id": "a",
            "type": "assistant_message",
            "message": USER | {"role": "assistant"},
            "turnId": "t1",
            "runId": "r1",
        },
        AssistantMessageEntry,
    ),
    ({"id": "m", "type": "assistant_amendment", "targetEntryId": "a"}, AssistantAmendmentEntry),
    ({"id": "h", "type": "harness_message", "message": USER, "turnId": "t1"}, HarnessMessageEntry),
    ({"id": "c", "type": "compaction", "summaryMessage": USER, "firstKeptSeq": 3}, CompactionEntry),
    ({"id": "s", "type": "subagent_result", "result": RESULT}, SubagentResultEntry),
    ({"id": "k", "type": "callback_started", "consumedSeqs": []}, CallbackStartedEntry),
]


@pytest.mark.parametrize(("new", "cls"), ONE_OF_EACH, ids=[c.__name__ for _, c in ONE_OF_EACH])
def test_each_entry_type_parses_to_its_class_and_back(new: dict, cls: type) -> None:
    stored = new | STAMP
    entry = parse_entry(stored)
    assert type(entry) is cls
    assert entry.seq == 4
    assert entry.to_dict() == stored
    assert entry_to_dict(entry) == stored
    assert parse_new_entry(new).to_dict() == new


def test_absent_optionals_stay_absent_and_nulls_stay_null() -> None:
    absent = {"id": "u", "type": "user_message", "message": USER, "turnId": "t"} | STAMP
    assert "hidden" not in parse_entry(absent).to_dict()
    null = absent | {"hidden": None}
    assert parse_entry(null).to_dict()["hidden"] is None
    comp = {"id": "c", "type": "compaction", "summaryMessage": USER, "firstKeptSeq": 1} | STAMP
    assert set(parse_entry(comp).to_dict()) == {
        "id",
        "type",
        "summaryMessage",
        "firstKeptSeq",
        "seq",
        "createdAt",
    }


def test_unknown_keys_survive_at_every_level() -> None:
    entry = {
        "id": "h",
        "type": "harness_message",
        "turnId": "t",
        "_debug": {"x": [1, None]},
        "message": {
            "role": "user",
            "content": [
                {"type": "text", "text": "a", "cacheControl": {"type": "ephemeral"}},
                {"type": "file", "data": "AAAA", "mediaType": "image/png", "width": 3},
            ],
            "metadata": {"id": "m1", "_subagentCallback": True, "subagentId": "sa-1", "task": "t"},
            "providerOptions": {},
        },
    } | STAMP
    assert parse_entry(copy.deepcopy(entry)).to_dict() == entry
    sub = {
        "id": "s",
        "type": "subagent_result",
        "result": RESULT | {"conversationId": "child"},
    } | STAMP
    assert parse_entry(sub).to_dict() == sub


def test_key_order_of_the_input_does_not_matter() -> None:
    entry = {
        "id": "a",
        "type": "assistant_message",
        "message": USER,
        "turnId": "t",
        "runId": "r",
    } | STAMP
    reordered = dict(reversed(list(entry.items())))
    assert parse_entry(reordered).to_dict() == entry
    assert parse_entry(reordered) == parse_entry(entry)


def test_message_models_and_text() -> None:
    parts = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Hello "},
            {
                "type": "file",
                "data": "poncho-upload://u/1.pdf",
                "mediaType": "application/pdf",
                "filename": "a.pdf",
            },
            {"type": "text", "text": "wörld 😀"},
        ],
    }
    assert Message.from_dict(parts).text == "Hello wörld 😀"  # no separator, files ignored
    assert Message.from_dict(USER).text == "hi"
    assert Message.from_dict({"role": "tool", "content": []}).text == ""
    assert Message.from_dict(parts).to_dict() == parts


def test_message_text_on_plain_dicts_follows_javascript_join() -> None:
    # Unvalidated dicts: a non-string text is rendered as String(text) by Array.join, null as "".
    assert (
        message_text(
            {
                "role": "user",
                "content": [{"type": "text", "text": 5}, {"type": "text", "text": None}],
            }
        )
        == "5"
    )
    assert (
        message_text(
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}
        )
        == "x"
    )


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"type": "harness_message", "message": USER}, "turnId", "required field is missing"),
        ({"type": "bogus"}, "type", "unknown entry type 'bogus'"),
        ({}, "type", "required field is missing"),
        (
            {
                "type": "harness_message",
                "message": {"role": "robot", "content": "x"},
                "turnId": "t",
            },
            "message.role",
            None,
        ),
        (
            {"type": "harness_message", "message": {"role": "user", "content": 5}, "turnId": "t"},
            "message.content",
            None,
        ),
        (
            {
                "type": "harness_message",
                "message": {"role": "user", "content": [{"type": "text"}]},
                "turnId": "t",
            },
            "message.content.0.text",
            "required field is missing",
        ),
        (
            {
                "type": "harness_message",
                "message": {"role": "user", "content": ["x", {"type": "video"}]},
                "turnId": "t",
            },
            "message.content.0",
            None,
        ),
        ({"type": "compaction", "summaryMessage": USER, "firstKeptSeq": "3"}, "firstKeptSeq", None),
        (
            {"type": "compaction", "summaryMessage": USER, "firstKeptSeq": True},
            "firstKeptSeq",
            None,
        ),
        ({"type": "callback_started", "consumedSeqs": [1, "2"]}, "consumedSeqs.1", None),
        ({"type": "subagent_result", "result": RESULT | {"status": "done"}}, "result.status", None),
        ({"type": "user_message", "message": USER, "turnId": "t", "hidden": "yes"}, "hidden", None),
    ],
)
def test_bad_entries_name_the_field_conversation_and_seq(
    data: dict, field: str, reason: str | None
) -> None:
    with pytest.raises(BadEntryError) as info:
        parse_entry({"id": "e7", "seq": 7, "createdAt": 0} | data, conversation_id="conv-1")
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, ReplayError)
    assert (err.field, err.conversation_id, err.seq) == (field, "conv-1", 7)
    assert str(err).startswith(f"conversation conv-1, seq 7: field '{field}': ")
    if reason is not None:
        assert err.reason == reason


def test_a_non_integer_seq_is_named_without_claiming_a_seq() -> None:
    with pytest.raises(BadEntryError) as info:
        parse_entry(
            {"id": "e", "seq": "5", "createdAt": 0, "type": "callback_started", "consumedSeqs": []}
        )
    assert (info.value.field, info.value.seq) == ("seq", None)
    assert str(info.value) == "field 'seq': Input should be a valid integer"


def test_new_entries_need_no_seq() -> None:
    entry = parse_new_entry(
        {"id": "a", "type": "assistant_message", "message": USER, "turnId": "t", "runId": "r"}
    )
    assert isinstance(entry, NewAssistantMessage)
    with pytest.raises(BadEntryError) as info:
        parse_new_entry(
            {"id": "a", "type": "assistant_message", "message": USER, "turnId": "t"},
            conversation_id="c",
        )
    assert info.value.field == "runId"
    with pytest.raises(BadEntryError):
        parse_entry(
            {"id": "a", "type": "assistant_message", "message": USER, "turnId": "t", "runId": "r"}
        )


BLOB = {
    "conversationId": "c1",
    "title": "🧳 Reisepläne",
    "messages": [USER],
    "ownerId": "owner-ines",
    "tenantId": None,
    "createdAt": 1,
    "updatedAt": 2,
}


def test_conversation_keeps_underscore_fields_nulls_and_unknown_keys() -> None:
    blob = BLOB | {
        "_harnessMessages": [USER],
        "_toolResultArchive": {"call-1": {"output": "x"}},
        "_continuationMessages": None,
        "pendingSubagentResults": [RESULT],
        "runStatus": None,
        "_richToolResults": [1],
    }
    conv = parse_conversation(blob)
    assert conv.harness_messages is not None and conv.harness_messages[0].text == "hi"
    assert conv.to_dict() == blob
    assert "compactedHistory" not in conv.to_dict()


def test_conversation_requires_tenant_id_even_if_null() -> None:
    blob = {k: v for k, v in BLOB.items() if k != "tenantId"}
    with pytest.raises(BadEntryError) as info:
        parse_conversation(blob)
    assert (info.value.field, info.value.conversation_id) == ("tenantId", "c1")


def test_snapshot_and_summary_models_use_the_harness_shape() -> None:
    snap = DisplaySnapshot.from_dict({"messages": [USER], "totalMessages": 3, "headSeq": None})
    assert snap.to_dict() == {"messages": [USER], "totalMessages": 3, "headSeq": None}
    status = {
        "conversationId": "c1",
        "updatedAt": 2,
        "messageCount": 1,
        "hasPendingApprovals": False,
        "hasContinuationMessages": False,
        "ownerId": "o",
        "tenantId": None,
        "runStatus": "idle",
    }
    assert StatusSnapshot.from_dict(status).to_dict() == status
    with pytest.raises(BadEntryError):
        StatusSnapshot.from_dict(status | {"runStatus": "paused"})
    summary = {
        "conversationId": "c1",
        "title": "t",
        "updatedAt": 2,
        "ownerId": "o",
        "messageCount": 1,
    }
    assert ConversationSummary.from_dict(summary).to_dict() == summary


# --- property-based round trips ------------------------------------------------------


@given(messages())
def test_messages_round_trip(message: dict) -> None:
    assert Message.from_dict(copy.deepcopy(message)).to_dict() == message


@given(pending_results())
def test_pending_results_round_trip(result: dict) -> None:
    assert PendingSubagentResult.from_dict(copy.deepcopy(result)).to_dict() == result


@given(entry_logs(max_size=12))
def test_entries_round_trip(entries: list[dict]) -> None:
    for entry in entries:
        assert parse_entry(copy.deepcopy(entry)).to_dict() == entry
        assert parse_new_entry(as_new_entry(entry)).to_dict() == as_new_entry(entry)


@given(conversations())
def test_conversations_round_trip(blob: dict) -> None:
    assert parse_conversation(copy.deepcopy(blob)).to_dict() == blob
    assert Conversation.from_dict(blob) == parse_conversation(blob)
