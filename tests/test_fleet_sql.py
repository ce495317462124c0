"""The fleet SQL rebuilds equal poncho_replay.rebuild, message by message.

Worked cases first (expected values written by hand from SPEC §3), then a
hypothesis test that generates random multi-conversation logs and compares
every SQL rebuild (whole log and replayed as of a seq) with the Python one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poncho_replay import fleet
from poncho_replay.models import ENTRY_TYPES
from poncho_replay.rebuild import (
    build_display_snapshot,
    build_llm_context,
    pending_subagent_results,
    state_at,
)

JsonDict = dict[str, Any]
Row = tuple[str, str, JsonDict]  # (source, conversation_id, entry dict with id and seq)


@cache
def _con() -> duckdb.DuckDBPyConnection:
    """One in-memory workbench for the whole module; each case empties it first."""
    con = duckdb.connect()
    fleet.install(con)
    return con


def load(rows: Sequence[Row]) -> duckdb.DuckDBPyConnection:
    """Write rows as a loader would: payload = entry minus seq/createdAt, ordinal = position."""
    con = _con()
    con.execute("DELETE FROM conversation_entries")
    dups: dict[tuple[str, str, int], int] = {}
    params = []
    for ordinal, (source, cid, entry) in enumerate(rows):
        key = (source, cid, entry["seq"])
        dup = dups.get(key, -1) + 1
        dups[key] = dup
        payload = {k: v for k, v in entry.items() if k not in ("seq", "createdAt")}
        params.append(
            [
                source,
                entry["seq"],
                entry["id"],
                "local-owner",
                cid,
                entry["type"],
                json.dumps(payload),
                dup,
                ordinal,
            ]
        )
    if not params:
        return con
    con.executemany(
        "INSERT INTO conversation_entries (source, seq, id, agent_id, conversation_id, type, payload, dup, ordinal) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params,
    )
    return con


def by_conversation(df: Any, column: str) -> dict[tuple[str, str], list[Any]]:
    """SQL output grouped per (source, conversation), values parsed from JSON, checking positions."""
    out: dict[tuple[str, str], list[Any]] = {}
    for row in df.itertuples(index=False):
        items = out.setdefault((row.source, row.conversation_id), [])
        assert row.position == len(items)
        value = getattr(row, column)
        items.append(None if value is None else json.loads(value))
    return out


def msg(role: str, content: Any, **extra: Any) -> JsonDict:
    return {"role": role, "content": content, **extra}


def entry(seq: int, kind: str, **fields: Any) -> JsonDict:
    return {
        "id": f"e{seq}",
        "seq": seq,
        "createdAt": 1_700_000_000_000 + seq,
        "type": kind,
        **fields,
    }


# --- worked cases (SPEC §3) ------------------------------------------------------


def test_layered_compactions_use_the_latest_and_its_first_kept_seq() -> None:
    log = [
        entry(1, "harness_message", message=msg("user", "h1"), turnId="t1"),
        entry(2, "harness_message", message=msg("assistant", "h2"), turnId="t1"),
        entry(3, "compaction", summaryMessage=msg("user", "S3"), firstKeptSeq=2),
        entry(4, "harness_message", message=msg("user", "h4"), turnId="t2"),
        entry(5, "harness_message", message=msg("assistant", "h5"), turnId="t2"),
        entry(6, "compaction", summaryMessage=msg("user", "S6"), firstKeptSeq=5),
        entry(7, "harness_message", message=msg("user", "h7"), turnId="t3"),
    ]
    con = load([("store", "c", e) for e in log])
    got = by_conversation(fleet.llm_context_df(con), "message")
    assert got == {("store", "c"): [msg("user", "S6"), msg("assistant", "h5"), msg("user", "h7")]}
    seqs = fleet.llm_context_df(con)["seq"].tolist()
    assert seqs == [6, 5, 7]
    # Replayed as of seq 5, the first compaction rules: S3, then h2, h4, h5.
    at5 = by_conversation(fleet.llm_context_df(con, as_of_seq=5), "message")
    assert at5 == {
        ("store", "c"): [
            msg("user", "S3"),
            msg("assistant", "h2"),
            msg("user", "h4"),
            msg("assistant", "h5"),
        ]
    }


_ABSENT = object()


@pytest.mark.parametrize(
    ("first_kept", "expected_kept"),
    [
        (99, []),  # past every message: the summary alone
        (0, ["h1", "h3"]),  # before the compaction entry
        (3, ["h3"]),
        (2.5, ["h3"]),
        (_ABSENT, []),  # seq >= undefined is false
        (None, ["h1", "h3"]),  # Number(null) is 0
        (True, ["h1", "h3"]),  # Number(true) is 1
        (" 3 ", ["h3"]),  # Number(" 3 ") is 3
        ("x", []),  # NaN
        ([3], ["h3"]),  # String([3]) is "3"
        ({}, []),  # NaN
    ],
)
def test_first_kept_seq_anywhere(first_kept: Any, expected_kept: list[str]) -> None:
    compaction = entry(2, "compaction", summaryMessage=msg("user", "S"))
    if first_kept is not _ABSENT:
        compaction["firstKeptSeq"] = first_kept
    log = [
        entry(1, "harness_message", message=msg("user", "h1"), turnId="t"),
        compaction,
        entry(3, "harness_message", message=msg("user", "h3"), turnId="t"),
    ]
    got = by_conversation(fleet.llm_context_df(load([("store", "c", e) for e in log])), "message")
    assert got == {("store", "c"): [msg("user", "S")] + [msg("user", t) for t in expected_kept]}


def test_non_string_append_text_is_coerced_like_javascript() -> None:
    log = [
        entry(1, "assistant_message", message=msg("assistant", "a"), turnId="t", runId="r"),
        *(
            entry(s, "assistant_amendment", targetEntryId="e1", appendText=v)
            for s, v in [
                (2, 5),
                (3, True),
                (4, [1, "b", None]),
                (5, {"k": 1}),
                (6, 1e-7),
                (7, False),
                (8, 0),
            ]
        ),
    ]
    df = fleet.display_messages_df(load([("store", "c", e) for e in log]))
    assert by_conversation(df, "message") == {
        ("store", "c"): [msg("assistant", "a5true1,b,[object Object]1e-7")]
    }


def test_display_hidden_list_content_and_amendments() -> None:
    meta = {"id": "m1", "sections": [{"type": "text", "content": "x"}], "_extra": None}
    log = [
        entry(
            1, "assistant_amendment", targetEntryId="e3", appendText="-early"
        ),  # before its target
        entry(2, "user_message", message=msg("user", "shown"), turnId="t"),
        entry(
            3,
            "assistant_message",
            message=msg("assistant", [{"type": "text", "text": "dropped"}], metadata=meta),
            turnId="t",
            runId="r",
        ),
        entry(
            4, "user_message", message=msg("user", "[Subagent Result] x"), turnId="t", hidden=True
        ),
        entry(5, "user_message", message=msg("user", "zero is falsy"), turnId="t", hidden=0),
        entry(6, "assistant_amendment", targetEntryId="e3", appendText=""),
        entry(7, "assistant_amendment", targetEntryId="e3"),
        entry(8, "assistant_amendment", targetEntryId="nope", appendText="lost"),
        entry(9, "assistant_amendment", targetEntryId="e3", appendText=" ünï😀"),
        entry(10, "assistant_message", message=msg("assistant", "plain"), turnId="t", runId="r"),
        entry(11, "harness_message", message=msg("user", "not displayed"), turnId="t"),
    ]
    df = fleet.display_messages_df(load([("store", "c", e) for e in log]))
    assert by_conversation(df, "message") == {
        ("store", "c"): [
            msg("user", "shown"),
            msg("assistant", "-early ünï😀", metadata=meta),
            msg("user", "zero is falsy"),
            msg("assistant", "plain"),
        ]
    }
    assert df["seq"].tolist() == [2, 3, 5, 10]


def test_pending_counts_consumed_seqs_before_and_after() -> None:
    results = {
        s: {"subagentId": f"s{s}", "task": "t", "status": "completed", "timestamp": s}
        for s in (2, 3, 5)
    }
    log = [
        entry(1, "callback_started", consumedSeqs=[3, True, "5"]),  # before the result it consumes
        *(entry(s, "subagent_result", result=r) for s, r in results.items()),
        entry(6, "callback_started", consumedSeqs=[2.0]),
    ]
    con = load([("store", "c", e) for e in log])
    assert by_conversation(fleet.pending_df(con), "result") == {("store", "c"): [results[5]]}
    assert by_conversation(fleet.pending_df(con, as_of_seq=5), "result") == {
        ("store", "c"): [results[2], results[5]]
    }


def test_duplicate_seqs_keep_row_order_and_sources_stay_apart() -> None:
    first = entry(1, "harness_message", message=msg("user", "first row"), turnId="t")
    second = {
        **entry(1, "harness_message", message=msg("user", "second row"), turnId="t"),
        "id": "e1-dup",
    }
    other = entry(1, "harness_message", message=msg("user", "other source"), turnId="t")
    con = load([("a", "c", first), ("a", "c", second), ("b", "c", other)])
    got = by_conversation(fleet.llm_context_df(con), "message")
    assert got == {
        ("a", "c"): [msg("user", "first row"), msg("user", "second row")],
        ("b", "c"): [msg("user", "other source")],
    }
    only_b = by_conversation(fleet.llm_context_df(con, source="b"), "message")
    assert list(only_b) == [("b", "c")]


def test_filters_and_per_conversation_replay() -> None:
    rows = [
        (
            "store",
            cid,
            {
                **entry(s, "harness_message", message=msg("user", f"{cid}{s}"), turnId="t"),
                "id": cid + str(s),
            },
        )
        for cid in ("x", "y", "z")
        for s in (1, 2, 3)
    ]
    con = load(rows)
    got = by_conversation(fleet.llm_context_df(con, as_of_seq={"x": 1, "y": 2}), "message")
    assert got == {
        ("store", "x"): [msg("user", "x1")],
        ("store", "y"): [msg("user", "y1"), msg("user", "y2")],
    }
    picked = fleet.llm_context_df(con, conversation_ids=["z"])
    assert picked["conversation_id"].unique().tolist() == ["z"] and len(picked) == 3


def test_failing_rebuilds_are_reported_not_guessed() -> None:
    log = [
        entry(1, "harness_message", message=msg("user", "h"), turnId="t"),
        entry(2, "assistant_message", turnId="t", runId="r"),  # no message: the JS TypeError
        entry(3, "subagent_result", result={"subagentId": "s"}),
        entry(4, "callback_started", consumedSeqs=None),
    ]
    con = load([("store", "c", e) for e in log])
    assert by_conversation(fleet.llm_context_df(con), "message") == {
        ("store", "c"): [msg("user", "h")]
    }
    assert fleet.display_messages_df(con).empty
    assert fleet.pending_df(con).empty
    errors = fleet.rebuild_errors_df(con)
    assert errors[["field", "seq"]].values.tolist() == [["display", 2], ["pending", 4]]
    with pytest.raises(TypeError):
        build_display_snapshot(log, 10)
    with pytest.raises(TypeError):
        pending_subagent_results(log)


# --- hypothesis: random logs, SQL == Python -------------------------------------

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
_json = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": _text}),
    st.fixed_dictionaries(
        {"type": st.just("file"), "data": _text, "mediaType": st.just("image/png")}
    ),
)
_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system", "tool"]),
        "content": st.one_of(_text, st.lists(_part, max_size=3)),
    },
    optional={"metadata": st.dictionaries(_text, _json, max_size=3), "extra": _json},
)
_truthiness = st.sampled_from([True, False, 0, 1, 0.0, 2.5, "", "x", None, [], {}])


def _maybe(draw: st.DrawFn, value: st.SearchStrategy[Any], absent: float = 0.2) -> Any:
    return _ABSENT if draw(st.floats(0, 1)) < absent else draw(value)


@st.composite
def _logs(draw: st.DrawFn, malformed: bool) -> list[Row]:
    """Rows for 1-3 conversations (two sources), seqs shuffled and sometimes repeated."""
    rows: list[Row] = []
    n_ids = 0
    for source, cid in draw(
        st.lists(
            st.sampled_from([("a", "c1"), ("a", "c2"), ("b", "c1")]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    ):
        n = draw(st.integers(0, 14))
        seqs = (
            draw(st.lists(st.integers(1, n + 1), min_size=n, max_size=n))
            if draw(st.booleans())
            else list(range(1, n + 1))
        )
        ids: list[str] = []
        for seq in seqs:
            n_ids += 1
            eid = f"e{n_ids}"
            kind = draw(
                st.sampled_from(ENTRY_TYPES)
            )
            e: JsonDict = {"id": eid, "seq": seq, "createdAt": seq, "type": kind}
            if kind == "user_message":
                e |= {
                    "message": draw(_message),
                    "turnId": "t",
                    "hidden": _maybe(draw, _truthiness, 0.5),
                }
            elif kind == "assistant_message":
                e |= {"message": draw(_message), "turnId": "t", "runId": "r"}
                if malformed and draw(st.integers(0, 9)) == 0:
                    e["message"] = draw(st.sampled_from([_ABSENT, None, "text", [1]]))
            elif kind == "assistant_amendment":
                target: Any = draw(
                    st.sampled_from(ids + ["unknown", f"e{n_ids + 1}"])
                    if ids
                    else st.just("unknown")
                )
                append: Any = _maybe(draw, st.one_of(_text, st.none()), 0.2)
                if malformed and draw(st.integers(0, 9)) == 0:
                    target, append = draw(
                        st.sampled_from(
                            [
                                (target, 5),
                                (target, 0.1),
                                (target, ["x", [1, None]]),
                                (target, {}),
                                ([target], "x"),
                                (5, "x"),
                            ]
                        )
                    )
                e |= {"targetEntryId": target, "appendText": append}
            elif kind == "harness_message":
                e |= {"message": draw(_message), "turnId": "t"}
            elif kind == "compaction":
                first_kept = draw(
                    st.one_of(
                        st.integers(-1, n + 3),
                        st.just(_ABSENT),
                        st.sampled_from([None, 2.5, True, "2", " 3 ", "0x2", "", "x", [1], [], {}]),
                    )
                )
                e |= {"summaryMessage": draw(_message), "firstKeptSeq": first_kept}
            elif kind == "subagent_result":
                e["result"] = draw(
                    st.fixed_dictionaries(
                        {
                            "subagentId": _text,
                            "task": _text,
                            "status": st.sampled_from(["completed", "error"]),
                            "timestamp": st.integers(0, 10**13),
                        },
                        optional={"result": _json},
                    )
                )
            else:
                consumed: Any = draw(
                    st.lists(
                        st.one_of(st.integers(0, n + 2), st.sampled_from([True, 3.0, "2", None])),
                        max_size=4,
                    )
                )
                if malformed and draw(st.integers(0, 9)) == 0:
                    consumed = draw(
                        st.sampled_from(
                            [_ABSENT, None, 7, True, "12", {"a": 1}, [1, [2]], [{"s": 1}]]
                        )
                    )
                e["consumedSeqs"] = consumed
            ids.append(eid)
            rows.append((source, cid, {k: v for k, v in e.items() if v is not _ABSENT}))
    return draw(st.permutations(rows))


def _python_side(
    entries: list[JsonDict], upto: int | None
) -> tuple[list[Any], list[Any] | None, list[Any] | None]:
    """LLM context, display transcript and pending results from rebuild.py; None where Python raises."""
    if upto is not None:  # state_at's filter; state_at itself would raise on malformed logs
        entries = [e for e in entries if e["seq"] <= upto]
    display: list[Any] | None
    pending: list[Any] | None
    try:
        display = build_display_snapshot(entries, 2**53 - 1).messages
    except (TypeError, AttributeError):
        display = None
    try:
        pending = pending_subagent_results(entries)
    except TypeError:
        pending = None
    return build_llm_context(entries), display, pending


def _check(con: duckdb.DuckDBPyConnection, rows: list[Row], as_of: Any) -> None:
    llm = by_conversation(fleet.llm_context_df(con, as_of_seq=as_of), "message")
    display = by_conversation(fleet.display_messages_df(con, as_of_seq=as_of), "message")
    pending = by_conversation(fleet.pending_df(con, as_of_seq=as_of), "result")
    errors = fleet.rebuild_errors_df(con, as_of_seq=as_of)
    failed = {(r.source, r.conversation_id, r.field) for r in errors.itertuples(index=False)}
    keys = {(s, c) for s, c, _ in rows}
    if isinstance(as_of, dict):
        keys = {k for k in keys if k[1] in as_of}
    for key in keys:
        upto = as_of[key[1]] if isinstance(as_of, dict) else as_of
        entries = [e for s, c, e in rows if (s, c) == key]
        want_llm, want_display, want_pending = _python_side(entries, upto)
        assert llm.get(key, []) == want_llm, key
        assert ((*key, "display") in failed) == (want_display is None), key
        assert display.get(key, []) == (want_display or []), key
        assert ((*key, "pending") in failed) == (want_pending is None), key
        assert pending.get(key, []) == (want_pending or []), key
        if upto is not None and want_display is not None and want_pending is not None:
            state = state_at(entries, upto)  # the replay API itself, where it does not raise
            assert (state.llm_context, state.messages, state.pending_subagent_results) == (
                llm.get(key, []),
                display.get(key, []),
                pending.get(key, []),
            )
    assert set(llm) | set(display) | set(pending) <= keys


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_logs(malformed=False), upto=st.one_of(st.none(), st.integers(0, 16)))
def test_sql_equals_python_on_random_logs(rows: list[Row], upto: int | None) -> None:
    con = load(rows)
    _check(con, rows, None)
    _check(con, rows, upto)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_logs(malformed=True), cut=st.integers(0, 16))
def test_sql_equals_python_on_malformed_logs_and_per_conversation_replay(
    rows: list[Row], cut: int
) -> None:
    con = load(rows)
    _check(con, rows, None)
    _check(con, rows, {"c1": cut})
