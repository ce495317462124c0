"""Stored messages -> model requests: SPEC §8, the providers' documented shapes, the SDKs' own types.

Expected values come from SPEC §8 (what the harness sends) and the
providers' documented request formats (Anthropic Messages: tool_use /
tool_result blocks, alternating roles; OpenAI Chat Completions: tool_calls
with JSON-text arguments, one ``tool`` message per result). Every request
built from the fixtures, the bundled sample and random simulated fleets is
checked against the official ``anthropic`` / ``openai`` request param types.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("anthropic")
pytest.importorskip("openai")

import poncho_replay
from poncho_replay.model_requests import build_request, conversation_requests, llm_request_pair
from poncho_replay.requests import (
    RequestValidationError,
    to_anthropic,
    to_model_messages,
    to_openai,
    validate_request,
)
from poncho_replay.simulate import Faults, fleet

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [str(poncho_replay.sample_db()), *sorted(str(p) for p in (ROOT / "fixtures").glob("*/harness.db"))]


def _tool(items: object) -> dict:
    return {"role": "tool", "content": json.dumps(items)}


CALL = '{"text":"Looking.","tool_calls":[{"id":"toolu_1","name":"search","input":{"q":"x"}},{"id":"toolu_2","name":"read","input":{}}]}'
RESULTS = [
    {"type": "tool_result", "tool_use_id": "toolu_1", "tool_name": "search", "content": '{"hits":2}'},
    {"type": "tool_result", "tool_use_id": "toolu_2", "tool_name": "read", "content": "Tool error: denied"},
]


def test_tool_results_follow_spec_8() -> None:
    model = to_model_messages([_tool(RESULTS + [{"tool_use_id": 3, "tool_name": "x", "content": "y"}])])
    assert model == [
        {
            "role": "tool",
            "content": [
                {"type": "tool-result", "toolCallId": "toolu_1", "toolName": "search", "output": {"type": "json", "value": {"hits": 2}}},
                {"type": "tool-result", "toolCallId": "toolu_2", "toolName": "read", "output": {"type": "text", "value": "Tool error: denied"}},
            ],
        }
    ]
    dropped = to_model_messages([{"role": "tool", "content": '{"not": "an array"}'}, _tool([{"tool_use_id": "a"}])])
    assert dropped == [] and len(dropped.notes) == 2


def test_assistant_steps_follow_spec_8() -> None:
    model = to_model_messages(
        [
            {"role": "assistant", "content": CALL},
            {"role": "assistant", "content": '{"tool_calls": "nope", "text": "t"}'},  # not an array: the whole text
            {"role": "assistant", "content": '{"text": "", "tool_calls": [{"id": 1}]}'},  # nothing left: dropped
            {"role": "assistant", "content": "  \n"},  # blank: dropped
            {"role": "assistant", "content": "42"},  # JSON but not an object: text
        ]
    )
    assert model == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking."},
                {"type": "tool-call", "toolCallId": "toolu_1", "toolName": "search", "input": {"q": "x"}},
                {"type": "tool-call", "toolCallId": "toolu_2", "toolName": "read", "input": {}},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": '{"tool_calls": "nope", "text": "t"}'}]},
        {"role": "assistant", "content": [{"type": "text", "text": "42"}]},
    ]


def test_user_files_follow_spec_8() -> None:
    parts = [
        {"type": "text", "text": "see"},
        {"type": "file", "data": "data:image/png;base64,iVBORw0KGgo=", "mediaType": "image/png"},
        {"type": "file", "data": "upload://inv-7.pdf", "mediaType": "application/pdf", "filename": "inv-7.pdf"},
        {"type": "file", "data": "aGVsbG8=", "mediaType": "text/plain", "filename": "a.txt"},
        {"type": "file", "data": "AAAA", "mediaType": "application/zip", "filename": "b.zip"},
    ]
    (message,) = to_model_messages([{"role": "user", "content": parts}])
    content = message["content"]
    assert content[0] == {"type": "text", "text": "see"}
    assert content[1] == {"type": "file", "mediaType": "image/png", "data": "iVBORw0KGgo="}
    assert content[2]["type"] == "text" and "not in the database" in content[2]["text"] and "upload://inv-7.pdf" in content[2]["text"]
    assert content[3] == {"type": "text", "text": "[File: a.txt]\nhello"}
    assert content[4] == {
        "type": "text",
        "text": "[Attached file: b.zip (application/zip) — this format is not supported by the model and was skipped]",
    }


def test_provider_mappings() -> None:
    context = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": CALL},
        _tool(RESULTS),
        {"role": "user", "content": "and?"},
        {"role": "assistant", "content": "done"},
    ]
    anthropic = to_anthropic(context, system="S", model="m", max_tokens=5)
    assert anthropic["system"] == "S" and anthropic["max_tokens"] == 5
    # tool results and the next user message share one user turn: roles alternate
    assert [t["role"] for t in anthropic["messages"]] == ["user", "assistant", "user", "assistant"]
    assert anthropic["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"hits":2}'},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "Tool error: denied"},
        {"type": "text", "text": "and?"},
    ]
    assert anthropic["messages"][1]["content"][1] == {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "x"}}
    openai = to_openai(context, system="S", model="m")
    assert [m["role"] for m in openai["messages"]] == ["system", "user", "assistant", "tool", "tool", "user", "assistant"]
    assert openai["messages"][2]["tool_calls"][0] == {
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "search", "arguments": '{"q":"x"}'},
    }
    assert openai["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": '{"hits":2}'}
    for request, fmt in ((anthropic, "anthropic"), (openai, "openai")):
        validate_request(request, fmt)


def test_validation_rejects_what_the_sdk_types_reject() -> None:
    good = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}
    validate_request(good, "anthropic")
    with pytest.raises(RequestValidationError):  # an unknown key, which a TypedDict would ignore
        validate_request({**good, "messages": [{"role": "user", "content": [{"type": "text", "text": "x", "junk": 1}]}]}, "anthropic")
    with pytest.raises(RequestValidationError):  # a bad block inside a lazily validated Iterable
        validate_request({**good, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}, "anthropic")
    with pytest.raises(RequestValidationError):
        validate_request({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "openai")  # no tool_call_id


def _check_conversation(blob: dict, entries: list, policies: tuple[str, ...]) -> int:
    checked = 0
    for policy in policies:
        for tc, _reason in conversation_requests(blob, entries, policy=policy, hidden=True):
            if tc is None:
                continue
            for fmt in ("anthropic", "openai"):
                request, _notes = build_request(tc.context, fmt, system="You are poncho.")
                validate_request(json.loads(json.dumps(request)), fmt)
                checked += 1
    return checked


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: Path(p).parent.name)
def test_every_fixture_request_is_of_the_sdk_types(source: str) -> None:
    ws = poncho_replay.open()
    ws.load(source)
    checked = 0
    for cid in ws.conversations["id"]:
        view = ws.conversation(cid)
        checked += _check_conversation(view.blob, view.entries, ("0.58", "blob"))
    assert checked > 0


@pytest.mark.parametrize("seed", [1])
def test_random_fleet_requests_are_of_the_sdk_types(seed: int) -> None:
    data = fleet(12, seed=seed, faults=Faults(lost=0.05, reorder=0.1, writeback=True, seed=seed))
    kinds = {e["type"] for log in data.entries.values() for e in log}
    assert {"compaction", "callback_started"} & kinds  # the fleet exercises compactions or callbacks
    checked = sum(_check_conversation(blob, data.entries.get(blob["conversationId"], []), ("0.58", "current")) for blob in data.conversations)
    assert checked > 0


def test_tool_results_answer_calls_sent_earlier() -> None:
    """In every OpenAI request of a random fleet, each tool message answers a tool call sent before it."""
    data = fleet(10, seed=3)
    seen_tool = False
    for blob in data.conversations:
        for tc, _ in conversation_requests(blob, data.entries.get(blob["conversationId"], []), policy="0.58"):
            if tc is None or any((m.get("metadata") or {}).get("isCompactionSummary") for m in tc.context):
                continue  # a compaction's kept window can start between a call and its result (known gap)
            calls: set[str] = set()
            for message in build_request(tc.context, "openai")[0]["messages"]:
                calls |= {c["id"] for c in message.get("tool_calls", [])}
                if message["role"] == "tool":
                    seen_tool = True
                    assert message["tool_call_id"] in calls
    assert seen_tool


def test_counterfactual_pair_on_a_diverged_conversation() -> None:
    ws = poncho_replay.open()
    ws.load(str(poncho_replay.sample_db()))
    report = ws.parity(policy="0.58")
    found = False
    for cid in report[report["verdict"] == "diverged"]["conversation_id"]:
        view = ws.conversation(cid)
        for tc, _ in conversation_requests(view.blob, view.entries, policy="blob"):
            if tc is None or tc.turn is None:
                continue
            pair = view.llm_request_pair(tc.turn.seq, a="0.58", b="blob", format="openai")
            assert pair.a.metadata["context_source"] == "log" and pair.b.metadata["context_source"] == "blob"
            assert pair.b.metadata["dated_by"]  # the blob's context was placed in time by the log
            if pair.first_difference is not None:
                a, b = pair.a.request["messages"], pair.b.request["messages"]
                i = pair.first_difference
                assert a[:i] == b[:i] and (i >= min(len(a), len(b)) or a[i] != b[i])
                found = True
    assert found
    same = llm_request_pair({"conversationId": "c"}, [
        {"id": "e1", "seq": 1, "type": "user_message", "turnId": "t", "message": {"role": "user", "content": "hi"}},
    ], 1, a="0.58", b="0.58")
    assert same.same and same.a.metadata["system_prompt"].startswith("not stored")
