"""Policies named by harness release (SPEC §7), worked by hand at each boundary: 0.57 / 0.58.0 / 0.59.0 / 0.59.3."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from poncho_replay.policy import PolicyError, resolve_policy
from poncho_replay.rebuild import rebuild_conversation

U1 = {"role": "user", "content": "hi", "metadata": {"id": "u1"}}
A1 = {"role": "assistant", "content": "hello", "metadata": {"id": "a1"}}
A1_LOGGED = {"role": "assistant", "content": "hello (as logged)", "metadata": {"id": "a1"}}
R_BLOB = {"subagentId": "s0", "task": "old", "status": "completed", "timestamp": 1}
R1 = {"subagentId": "s1", "task": "one", "status": "completed", "timestamp": 2}
R2 = {"subagentId": "s2", "task": "two", "status": "error", "timestamp": 3}

BLOB = {
    "conversationId": "c",
    "title": "t",
    "messages": [U1, A1],
    "_harnessMessages": [U1, A1],
    "pendingSubagentResults": [R_BLOB],
    "ownerId": "o",
    "tenantId": None,
    "createdAt": 0,
    "updatedAt": 0,
}


def entry(seq: int, type_: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"e{seq}", "seq": seq, "createdAt": seq, "type": type_, **fields}


TRANSCRIPT = [
    entry(1, "user_message", message=U1, turnId="t1"),
    entry(2, "harness_message", message=U1, turnId="t1"),
    entry(3, "harness_message", message=A1_LOGGED, turnId="t1"),
    entry(4, "assistant_message", message=A1_LOGGED, turnId="t1", runId="r"),
]
QUEUE = [
    entry(5, "subagent_result", result=R1),
    entry(6, "callback_started", consumedSeqs=[5]),
    entry(7, "subagent_result", result=R2),
]


def served(policy: str, log: list[dict[str, Any]]) -> dict[str, Any]:
    return rebuild_conversation(BLOB, log, policy=policy, cutover=True)


@pytest.mark.parametrize("policy", ["blob", "0.57", "0.57.3", "0.56.0"])
def test_up_to_057_serves_the_blob(policy: str) -> None:
    assert served(policy, TRANSCRIPT + QUEUE) == BLOB


@pytest.mark.parametrize("policy", ["0.58", "0.58.0"])
def test_058_rebuilds_all_three_fields(policy: str) -> None:
    got = served(policy, TRANSCRIPT)
    assert got["_harnessMessages"] == [U1, A1_LOGGED]
    assert got["messages"] == [U1, A1_LOGGED]
    assert got["pendingSubagentResults"] == []  # the log holds no result: none pending
    assert served(policy, TRANSCRIPT + QUEUE)["pendingSubagentResults"] == [R2]


@pytest.mark.parametrize("policy", ["0.59.0", "0.59.1", "0.59.2"])
def test_0590_to_0592_read_pending_from_any_entry(policy: str) -> None:
    got = served(policy, TRANSCRIPT)
    assert got["messages"] == [U1, A1] and got["_harnessMessages"] == [U1, A1]  # the blob's
    assert got["pendingSubagentResults"] == []  # any entry makes the log authoritative
    assert served(policy, TRANSCRIPT + QUEUE)["pendingSubagentResults"] == [R2]
    assert served(policy, [])["pendingSubagentResults"] == [R_BLOB]  # no entries: blob fallback


@pytest.mark.parametrize("policy", ["0.59.3", "0.60.0", "0.61", "0.61.2", "0.61.9", "current"])
def test_0593_and_later_read_pending_from_the_queue_only(policy: str) -> None:
    assert served(policy, TRANSCRIPT) == BLOB  # transcript entries only: the blob's value stands
    got = served(policy, TRANSCRIPT + QUEUE)
    assert got["pendingSubagentResults"] == [R2]
    assert got["messages"] == [U1, A1]
    assert served(policy, QUEUE[:2])["pendingSubagentResults"] == []  # queue entries, all consumed


def test_read_failure_warnings_are_each_releases_own(caplog: pytest.LogCaptureFixture) -> None:
    broken = [*TRANSCRIPT, entry(5, "callback_started", consumedSeqs=7)]
    caplog.set_level(logging.WARNING, logger="poncho_replay.entries-read")
    served("0.58", broken)
    served("0.59.0", broken)
    served("current", broken)
    assert [r.getMessage() for r in caplog.records] == [
        "[entries-read] c rebuild failed, using blob: e.consumedSeqs is not iterable",
        "[entries-read] c pendingSubagentResults rebuild failed, using blob: e.consumedSeqs is not iterable",
        "[entries-read] c pendingSubagentResults rebuild failed, using blob: e.consumedSeqs is not iterable",
    ]


def test_kill_switch_turns_the_log_off_under_every_release(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONCHO_READ_ENTRIES", "0")
    for policy in ("0.58", "0.59.0", "current"):
        assert rebuild_conversation(BLOB, TRANSCRIPT + QUEUE, policy=policy) == BLOB


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("0.58.1", "'0.58.1' never shipped: the pending-results-only read shipped as '0.59.0'"),
        ("0.59", "'0.59' is ambiguous"),
        ("0.59.3-rc.1", "pre-release policy"),
        ("latest", "unknown policy 'latest'"),
    ],
)
def test_refused_policies_say_what_to_ask_for(policy: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as info:
        resolve_policy(policy)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_a_newer_release_is_served_as_current_with_one_warning() -> None:
    with pytest.warns(UserWarning, match="newer than the newest release modelled") as record:
        read = resolve_policy("0.62.0")
    assert len(record) == 1 and read.reads == "pending_queue"


def test_reports_show_the_string_asked_and_its_behaviour() -> None:
    assert resolve_policy("current").describe() == (
        "policy 0.61.2, asked as 'current': pending results only, from subagent_result/callback_started entries"
    )
    assert resolve_policy("0.58").release == "0.58.0"
