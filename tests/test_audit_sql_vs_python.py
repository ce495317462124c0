"""The SQL parity audit equals its Python twins on random logs and blobs.

For random entry logs (``tests/strategies.py``) and blobs (random message
lists, or the log's own rebuild with a message dropped, duplicated, swapped,
re-worded or only re-spaced), ``parity_at`` in ``sql/audit.sql`` must give:

1. the harness's own verdict exactly as :func:`dualwrite.parity_check` words
   it (as Node prints it: a lone surrogate left by the 120-unit cut is U+FFFD);
2. per field, the counts of :func:`audit.align` applied to what
   :func:`rebuild.rebuild_conversation` serves under each policy against the
   blob, for the ``exact``, ``text`` and a custom comparison.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import duckdb
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from poncho_replay import audit
from poncho_replay._js import printed
from poncho_replay.dualwrite import parity_check, project_text
from poncho_replay.policy import POLICIES, resolve_policy
from poncho_replay.rebuild import rebuild_conversation
from poncho_replay.sources.ingest import ensure_schema
from tests.strategies import BASE_TIME_MS, entry_logs, messages, pending_results

JsonDict = dict[str, Any]
FIELDS = (("llm", "_harnessMessages"), ("display", "messages"), ("pending", "pendingSubagentResults"))
COUNTS = ("entries", "blob", "matching", "changed", "missing_in_entries", "extra_in_entries", "first_position")
_BLOB_COLUMNS = {"_harnessMessages", "_toolResultArchive", "_continuationMessages"}


def role_only(field: str, item: Any) -> Any:
    """The custom comparison under test: messages equal by role, results by subagent id."""
    if not isinstance(item, dict):
        return item
    return item.get("subagentId") if field == "pending" else item.get("role")


@cache
def _con() -> duckdb.DuckDBPyConnection:
    """One workbench for the module, with the audit installed once (custom = role_only)."""
    con = duckdb.connect()
    ensure_schema(con)
    audit.install(con, role_only)
    return con


def load(convs: list[tuple[JsonDict, list[JsonDict]]]) -> duckdb.DuckDBPyConnection:
    """Write blobs and logs as the loader does: heavy fields in their columns, payload without seq."""
    con = _con()
    con.execute("DELETE FROM conversation_entries")
    con.execute("DELETE FROM conversations")
    for blob, log in convs:
        cid = blob["conversationId"]
        data = {k: v for k, v in blob.items() if k not in _BLOB_COLUMNS}
        harness = json.dumps(blob["_harnessMessages"]) if "_harnessMessages" in blob else None
        con.execute(
            "INSERT INTO conversations (source, id, agent_id, title, data, harness_messages, created_at, updated_at) "
            "VALUES ('s', ?, 'agent', ?, ?, ?, make_timestamp(?::BIGINT * 1000), make_timestamp(?::BIGINT * 1000))",
            [cid, blob["title"], json.dumps(data), harness, blob["createdAt"], blob["updatedAt"]],
        )
        rows = [
            [e["seq"], e["id"], cid, e["type"], json.dumps({k: v for k, v in e.items() if k not in ("seq", "createdAt")}),
             e["createdAt"], e["seq"]]
            for e in log
        ]
        if rows:
            con.executemany(
                "INSERT INTO conversation_entries (source, seq, id, agent_id, conversation_id, type, payload, created_at, ordinal) "
                "VALUES ('s', ?, ?, 'owner', ?, ?, ?, make_timestamp(?::BIGINT * 1000), ?)",
                rows,
            )
    return con


# --- strategies ------------------------------------------------------------------------------

_message_lists = st.lists(messages(), max_size=5)


@st.composite
def _perturbed(draw: st.DrawFn, items: list[Any], make: st.SearchStrategy[Any]) -> list[Any]:
    """``items`` with 0-2 edits: drop, duplicate, swap, re-word, re-space, insert a stranger."""
    out = copy.deepcopy(items)
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(("drop", "dup", "swap", "reword", "respace", "insert")))
        if op == "insert" or not out:
            out.insert(draw(st.integers(0, len(out))), draw(make))
            continue
        i = draw(st.integers(0, len(out) - 1))
        j = draw(st.integers(0, len(out) - 1))
        if op == "drop":
            del out[i]
        elif op == "dup":
            out.insert(i, copy.deepcopy(out[i]))
        elif op == "swap":
            out[i], out[j] = out[j], out[i]
        elif isinstance(out[i], dict) and isinstance(out[i].get("content"), str):
            # re-space keeps the role:text projection equal; re-word changes it
            out[i]["content"] = out[i]["content"] + (" \u3000" if op == "respace" else "!")
        elif isinstance(out[i], dict):
            out[i]["x-edited"] = op
    return out


@st.composite
def _conversation(draw: st.DrawFn, index: int) -> tuple[JsonDict, list[JsonDict]]:
    """One blob and its log; the blob is random or the log's own rebuild, perturbed."""
    cid = f"conv-{index}"
    log = draw(entry_logs(max_size=18, id_prefix=f"{cid}-e"))
    blob: JsonDict = {
        "conversationId": cid,
        "title": f"T{index}",
        "messages": [],
        "ownerId": "owner",
        "tenantId": None,
        "createdAt": BASE_TIME_MS,
        "updatedAt": BASE_TIME_MS + draw(st.integers(0, 10**7)),
    }
    try:
        rebuilt = rebuild_conversation({**blob, "_harnessMessages": [], "pendingSubagentResults": []}, log, cutover=True)
    except Exception:  # noqa: BLE001 - a malformed log: random blob then
        rebuilt = None
    derived = rebuilt is not None and draw(st.integers(0, 3)) > 0
    for field, key in FIELDS:
        make = pending_results() if field == "pending" else messages()
        if derived:
            value = draw(_perturbed(rebuilt.get(key) or [], make))
        else:
            value = draw(st.lists(make, max_size=4))
        if key == "messages" or draw(st.integers(0, 5)) > 0:  # _harnessMessages / pending sometimes absent
            blob[key] = value
    return blob, log


_fleets = st.integers(1, 3).flatmap(lambda n: st.tuples(*(_conversation(i) for i in range(n))))


# --- the Python side -------------------------------------------------------------------------


def _eq(mode: str, field: str) -> Callable[[Any, Any], bool]:
    if mode == "text" and field != "pending":
        return lambda a, b: project_text(a) == project_text(b)
    if mode == "custom":
        return lambda a, b: role_only(field, a) == role_only(field, b)
    return lambda a, b: a == b


def _expected_counts(blob: JsonDict, log: list[JsonDict], policy: str, mode: str) -> dict[str, Any]:
    served = rebuild_conversation(blob, log, policy=policy, cutover=True)
    out: dict[str, Any] = {}
    for field, key in FIELDS:
        a = audit.align(served.get(key) or [], blob.get(key) or [], _eq(mode, field))
        for name in COUNTS:
            out[f"{field}_{name}"] = getattr(a, name)
    return out


def _sql_rows(con: duckdb.DuckDBPyConnection, policy: str, mode: str) -> dict[str, dict[str, Any]]:
    df = con.execute("SELECT * FROM parity_at(?, ?)", [resolve_policy(policy).reads, mode]).df()
    return {r["conversation_id"]: r for r in df.to_dict("records")}


def _none(value: Any) -> Any:
    """pandas shows a missing integer as NaN/NA: None for comparison."""
    try:
        return None if value is None or pd.isna(value) else int(value)
    except TypeError:
        return None


# --- the tests -------------------------------------------------------------------------------


@settings(max_examples=40)
@given(_fleets)
def test_harness_verdict_equals_parity_check(fleet: tuple[tuple[JsonDict, list[JsonDict]], ...]) -> None:
    con = load(list(fleet))
    rows = _sql_rows(con, "0.58", "exact")
    assert set(rows) == {blob["conversationId"] for blob, _ in fleet}
    for blob, log in fleet:
        cid = blob["conversationId"]
        want = parity_check(log, blob.get("_harnessMessages"), blob["messages"], conversation_id=cid)
        row = rows[cid]
        assert row["harness_log_line"] == printed(want.log_line), cid
        assert [str(m) for m in row["harness_mismatches"]] == [printed(m) for m in want.mismatches], cid
        verdict = "threw" if " checker threw " in want.log_line else ("OK" if want.ok else "MISMATCH")
        assert row["harness_verdict"] == verdict, cid


_CASES = [(p, m) for p in POLICIES for m in ("exact", "text")] + [("0.58", "custom")]


# Each fleet is checked under three of the cases, drawn: one ``parity_at`` costs about a
# second of DuckDB planning whatever the data, and every case still meets ~10 fleets a run.
@settings(max_examples=40)
@given(_fleets, st.lists(st.sampled_from(_CASES), min_size=3, max_size=3, unique=True))
def test_counts_equal_align_for_every_policy_and_comparison(
    fleet: tuple[tuple[JsonDict, list[JsonDict]], ...], cases: list[tuple[str, str]]
) -> None:
    con = load(list(fleet))
    for policy, mode in cases:
        rows = _sql_rows(con, policy, mode)
        for blob, log in fleet:
            cid = blob["conversationId"]
            want = _expected_counts(blob, log, policy, mode)
            got = {k: _none(rows[cid][k]) for k in want}
            assert got == want, (policy, mode, cid)
            diverged = [f for f, _ in FIELDS if want[f"{f}_first_position"] is not None]
            assert list(rows[cid]["diverged_fields"]) == diverged, (policy, mode, cid)
            assert rows[cid]["verdict"] == ("diverged" if diverged else "match")
            if diverged:  # nothing hides: a divergence always names a cause, if only 'unexplained'
                assert len(rows[cid]["causes"]) > 0, (policy, mode, cid)


def test_lone_surrogate_cut_is_printed_as_replacement_character() -> None:
    """A 120-unit cut through an emoji: Python keeps the lone surrogate, SQL and Node print U+FFFD."""
    text = "x" * 113 + "😀😀"  # `"user:` is 6 units: the cut at 120 falls inside the first emoji
    log = [{"id": "e1", "seq": 1, "createdAt": BASE_TIME_MS, "type": "harness_message", "turnId": "t",
            "message": {"role": "user", "content": text}}]
    blob = {"conversationId": "c", "title": "T", "messages": [], "ownerId": "o", "tenantId": None,
            "createdAt": BASE_TIME_MS, "updatedAt": BASE_TIME_MS, "_harnessMessages": [{"role": "user", "content": "y"}]}
    con = load([(blob, log)])
    row = _sql_rows(con, "0.58", "exact")["c"]
    want = parity_check(log, blob["_harnessMessages"], blob["messages"], conversation_id="c")
    assert "\ud83d" in want.log_line  # Python's line holds the lone high surrogate
    assert "\ud83d" not in row["harness_log_line"] and "\ufffd" in row["harness_log_line"]
    assert row["harness_log_line"] == printed(want.log_line)


def test_null_blob_message_makes_the_checker_throw() -> None:
    blob = {"conversationId": "c", "title": "T", "messages": [None], "ownerId": "o", "tenantId": None,
            "createdAt": BASE_TIME_MS, "updatedAt": BASE_TIME_MS}
    log = [{"id": "e1", "seq": 1, "createdAt": BASE_TIME_MS, "type": "user_message", "turnId": "t",
            "message": {"role": "user", "content": "hi"}}]
    row = _sql_rows(load([(blob, log)]), "0.58", "exact")["c"]
    assert row["harness_verdict"] == "threw"
    assert list(row["harness_mismatches"]) == []
    assert row["harness_log_line"] == (
        "[entries-parity] c checker threw (ignored): Cannot read properties of undefined (reading 'role')"
    )
