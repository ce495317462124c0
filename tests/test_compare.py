"""One meaning of "equal": the SQL audit, Python's align/diff, the view and the first-kept rule agree."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poncho_replay
from poncho_replay import audit
from poncho_replay.compare import align, items_equal
from poncho_replay.rebuild import rebuild_conversation
from poncho_replay.simulate import Faults, fleet
from poncho_replay.sources.ingest import ensure_schema
from tests.test_audit_fixtures import CLASSES, workspace

# Values where Python's == and JSON disagree: 1 vs 1.0, True vs 1, 0 vs False vs 0.0.
EDGE_SCALARS = st.sampled_from([0, 1, 1.0, 0.0, -1, True, False, None, "1", "", 2**60, 1e16, 0.5])
JSON_VALUES = st.recursive(
    EDGE_SCALARS | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abcd"), inner, max_size=3),
    max_leaves=8,
)


def _twin(value: Any, rng: random.Random) -> Any:
    """The same value with its keys reordered, and sometimes one edge scalar swapped for its Python-equal."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _twin(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_twin(v, rng) for v in value]
    if rng.random() < 0.3 and isinstance(value, bool):
        return int(value)
    if rng.random() < 0.3 and type(value) is int and value in (0, 1):
        return float(value)
    if rng.random() < 0.3 and type(value) is float and value in (0.0, 1.0):
        return int(value)
    return value


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    ensure_schema(c)
    audit.install(c)
    return c


@settings(max_examples=150, deadline=None)
@given(a=JSON_VALUES, seed=st.integers(0, 1000))
def test_sql_and_python_agree_on_exact_equality(con: duckdb.DuckDBPyConnection, a: Any, seed: int) -> None:
    b = _twin(a, random.Random(seed))
    sql = con.execute(
        "SELECT audit_eq('exact', 'pending', ?::JSON, ?::JSON)", [json.dumps(a), json.dumps(b)]
    ).fetchone()[0]
    assert sql == items_equal("pending", a, b)


def test_the_edge_values_are_told_apart_and_key_order_is_not() -> None:
    assert items_equal("llm", {"a": 1, "b": [True]}, {"b": [True], "a": 1})
    assert not items_equal("llm", {"n": 1}, {"n": 1.0})
    assert not items_equal("llm", {"n": True}, {"n": 1})
    assert not items_equal("llm", {"n": 0}, {"n": False})
    # text: the harness's role:text projection, whitespace collapsed
    assert items_equal("display", {"role": "user", "content": "a  b"}, {"role": "user", "content": "a b", "x": 1}, "text")
    assert not items_equal("pending", {"content": "a  b"}, {"content": "a b"}, "text")  # pending: always exact
    assert align([{"n": 1}], [{"n": 1.0}]).first_position == 0  # align's default is exact, never ==


def _fields_the_view_calls_different(blob: dict[str, Any], entries: list[Any]) -> set[str]:
    page = poncho_replay.display.html.conversation_html(blob, entries)
    agree = {
        "display": "display transcript (messages): blob and rebuild agree",
        "llm": "LLM context (_harnessMessages): blob and rebuild agree",
        "pending": "pending subagent results agree",
    }
    return {field for field, text in agree.items() if text not in page}


def _check_agreement(ws: poncho_replay.Workspace) -> int:
    report = ws.parity("0.58")
    diverged = 0
    for row in report.itertuples():
        view = ws.conversation(row.conversation_id, source=row.source)
        by_parity = set(row.diverged_fields)
        diff = view.diff("0.58")
        by_diff = set(diff.loc[diff["status"] != "match", "field"])
        assert by_diff == by_parity, (row.title, by_diff, by_parity)
        served = rebuild_conversation(view.blob, view.entries, policy="0.58", cutover=True)
        if view.entries:  # the view compares a rebuild only when there is a log
            assert _fields_the_view_calls_different(view.blob, view.entries) == by_parity, row.title
            assert served is not None
        diverged += bool(by_parity)
    return diverged


@pytest.mark.parametrize("cls", CLASSES)
def test_view_diff_and_parity_agree_on_every_fixture(cls: str) -> None:
    _check_agreement(workspace(cls))


def test_view_diff_and_parity_agree_on_a_random_fleet(tmp_path: Path) -> None:
    data = fleet(30, seed=21, faults=Faults(lost=0.05, reorder=0.1, duplicate=0.02, writeback=True, seed=21))
    data.to_sqlite(tmp_path / "fleet.db")
    ws = poncho_replay.open()
    ws.load(tmp_path / "fleet.db")
    assert _check_agreement(ws) > 0


def _first_kept_twins(ws: poncho_replay.Workspace) -> int:
    """The SQL's blob_first_kept_seq (audit_item_facts) against display.frames.blob_first_kept_seq, per conversation."""
    from poncho_replay.display import blob_first_kept_seq

    audit.install(ws.con)
    sql = dict(
        ws.con.execute(
            "SELECT conversation_id, blob_first_kept_seq FROM audit_item_facts('full') WHERE field = 'llm'"
        ).fetchall()
    )
    checked = 0
    for (cid,) in ws.con.execute("SELECT id FROM conversations").fetchall():
        view = ws.conversation(cid)
        if view.problem is None:
            assert blob_first_kept_seq(view.entries, view.blob) == sql.get(cid), cid
            checked += sql.get(cid) is not None
    return checked


def test_the_first_kept_rule_is_the_same_in_sql_and_python(tmp_path: Path) -> None:
    kept = sum(_first_kept_twins(workspace(cls)) for cls in CLASSES)
    data = fleet(40, seed=3, faults=Faults(reorder=0.2, duplicate=0.05, seed=3))
    data.to_sqlite(tmp_path / "fleet.db")
    ws = poncho_replay.open()
    ws.load(tmp_path / "fleet.db")
    kept += _first_kept_twins(ws)
    assert kept > 3  # compacted conversations were really compared
