"""The parity audit on every committed fixture equals the hand-written answer.

Each ``fixtures/<class>/expected.json`` (and
``fixtures/harness-0.58-sample/expected.json`` for the bundled real-harness
sample) holds, per conversation title, an ``"audit"`` entry written by hand
from the scenario script (``poncho_replay/simulate/scenarios.py``) or the
sample's README, and SPEC §3/§5/§6: verdict, the harness's verdict, causes,
and per field (``llm``, ``display``, ``pending``) the full-sequence counts.
Also here: policy comparison, the aligned diff, the custom comparison,
the report's HTML and the ``reproduce`` query.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import poncho_replay
from poncho_replay.audit import ParityReport
from poncho_replay.bundled import sample_db
from poncho_replay.workspace import Workspace

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SAMPLE = "harness-0.58-sample"
CLASSES = ["chat", "resume", "compaction", "subagents", "threads", "faults", SAMPLE]
FIELDS = ("llm", "display", "pending")
COUNTS = ("entries", "blob", "matching", "changed", "missing_in_entries", "extra_in_entries", "first_position")


def _db(cls: str) -> Path:
    return sample_db() if cls == SAMPLE else FIXTURES / cls / "harness.db"


@cache
def workspace(cls: str) -> Workspace:
    ws = poncho_replay.open()
    ws.load(_db(cls), name=cls, progress=False)
    return ws


@cache
def report(cls: str) -> dict[str, dict[str, Any]]:
    return {r["title"]: r for r in workspace(cls).parity().to_dict("records")}


def _expected(cls: str) -> dict[str, Any]:
    return json.loads((FIXTURES / cls / "expected.json").read_text(encoding="utf-8"))


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _cases() -> list[tuple[str, str]]:
    return [(cls, title) for cls in CLASSES for title in _expected(cls)]


@pytest.mark.parametrize("cls", CLASSES)
def test_every_conversation_has_a_hand_written_audit(cls: str) -> None:
    expected = _expected(cls)
    assert set(report(cls)) == set(expected)
    assert all("audit" in v for v in expected.values())


@pytest.mark.parametrize(("cls", "title"), _cases())
def test_audit_equals_the_hand_written_answer(cls: str, title: str) -> None:
    want = _expected(cls)[title]["audit"]
    row = report(cls)[title]
    got = {
        "verdict": row["verdict"],
        "harness_verdict": row["harness_verdict"],
        "causes": list(row["causes"]),
        **{f: {k: _int(row[f"{f}_{k}"]) for k in COUNTS} for f in FIELDS},
    }
    assert got == want
    # every cause carries its evidence; a divergence always has a cause
    assert sorted(row["evidence"]) == sorted(c for c in row["causes"] if c != "unexplained")
    assert (row["verdict"] == "diverged") == any(want[f]["first_position"] is not None for f in FIELDS)


def test_sample_summary_counts_conversations_by_verdict_and_cause() -> None:
    summary = workspace(SAMPLE).parity_summary()
    counts = {(r.verdict, r.harness_verdict, r.cause): r.conversations for r in summary.itertuples()}
    assert counts == {
        ("match", "OK", "(none)"): 7,
        ("match", "OK", "blob_overwritten_by_rebuild"): 2,
        ("match", "MISMATCH", "pre_dual_write"): 1,
        ("diverged", "MISMATCH", "resume_not_captured"): 2,
        ("diverged", "MISMATCH", "approximate_finalize_diff"): 1,
        ("diverged", "MISMATCH", "compaction_moved_history"): 1,
        ("diverged", "MISMATCH", "callback_turn_not_captured"): 1,
        ("diverged", "MISMATCH", "stale_blob"): 1,
        ("diverged", "MISMATCH", "thread_copy_not_captured"): 1,
    }


def test_compare_policies_on_the_sample() -> None:
    ws = workspace(SAMPLE)
    full = ws.compare_policies("0.58", "blob")
    got = dict(zip(full["title"], (list(f) for f in full["fields_that_differ"]), strict=True))
    # the conversations the 0.58 cutover serves differently from their blob (exact JSON)
    assert got == {
        "Database backup approval": ["display", "llm"],
        "Certificate renewal": ["llm"],
        "Printing press history": ["display", "llm"],
        "Log triage": ["display", "llm"],
        "Unit conversions": ["display", "llm"],
        "Thread: flaky networks talk": ["display"],
    }
    # 0.59.0 rebuilds only the pending results, and they agree with the blob everywhere
    assert ws.compare_policies("0.59.0", "blob").empty
    assert ws.compare_policies("0.58", "0.59.0")["title"].tolist() == full["title"].tolist()
    # under 0.59.0 the transcript is the blob's: nothing diverges
    assert set(ws.parity("0.59.0")["verdict"]) == {"match"}
    with pytest.raises(ValueError, match="'0.59' is ambiguous"):
        ws.compare_policies("0.59", "blob")
    with pytest.raises(ValueError, match="never shipped.*'0.59.0'"):
        ws.compare_policies("0.58.1", "blob")


def test_diff_aligns_the_resumed_bubble() -> None:
    ws = workspace("resume")
    cid = report("resume")["Backup approval"]["conversation_id"]
    diff = ws.conversation(cid).diff()
    llm = diff[diff.field == "llm"]
    # log: the turn's 4 harness messages; blob: those plus the resumed message (never logged)
    assert llm["status"].tolist() == ["match"] * 4 + ["missing_in_entries"]
    assert llm["entries_position"].tolist()[:4] == [0, 1, 2, 3] and llm["blob_position"].tolist() == [0, 1, 2, 3, 4]
    assert llm["blob"].iloc[-1].startswith("assistant:") and "Done (38 GB)." in llm["blob"].iloc[-1]
    display = diff[diff.field == "display"]
    # the amended bubble: same text, but the blob's copy gained a section (exact differs)
    assert display["status"].tolist() == ["match", "changed"]
    assert display["entries"].iloc[1] == display["blob"].iloc[1] == "assistant:Needs approval. Done (38 GB)."
    assert diff[diff.field == "pending"].empty
    # by the harness's text projection the bubble matches
    text = ws.conversation(cid).diff(compare="text")
    assert text[text.field == "display"]["status"].tolist() == ["match", "match"]


def test_diff_orders_prefix_changes_leftovers_suffix() -> None:
    ws = workspace("faults")
    cid = report("faults")["Upgraded mid-way"]["conversation_id"]
    display = ws.conversation(cid).diff().query("field == 'display'")
    # blob: Before, Old., After, New.; log: After, New. (the upgrade came mid-way)
    assert display["status"].tolist() == ["missing_in_entries", "missing_in_entries", "match", "match"]
    assert display["blob_position"].tolist() == [0, 1, 2, 3]
    assert display["entries_position"].tolist()[2:] == [0, 1]
    assert display["blob"].tolist() == ["user:Before", "assistant:Old.", "user:After", "assistant:New."]


def test_text_and_custom_comparisons() -> None:
    ws = workspace("resume")
    by_text = {r["title"]: r for r in ws.parity(compare="text").to_dict("records")}
    # the amended bubble's projection equals the blob's: only llm diverges
    assert list(by_text["Backup approval"]["diverged_fields"]) == ["llm"]
    assert (by_text["Backup approval"]["display_matching"], by_text["Backup approval"]["display_changed"]) == (2, 0)

    seen: list[str] = []

    def roles(field: str, item: Any) -> Any:
        seen.append(field)
        return item.get("role") if field != "pending" else item.get("subagentId")

    by_role = {r["title"]: r for r in ws.parity(compare=roles).to_dict("records")}
    lost = by_role["Lost bubble"]
    # Lost bubble display: log [user] vs blob [user, assistant]: still one missing, roles equal otherwise
    assert (lost["display_matching"], lost["display_missing_in_entries"]) == (1, 1)
    assert list(by_role["Certificate renewal"]["diverged_fields"]) == ["llm"]
    assert {"llm", "display"} <= set(seen)
    with pytest.raises(ValueError, match="unknown comparison"):
        ws.parity(compare="fuzzy")  # type: ignore[arg-type]


def test_samples_are_capped_and_truncated() -> None:
    row = report("compaction")["Printing press"]
    samples = row["samples"]
    assert 0 < len(samples) <= 3 * len(row["diverged_fields"])
    assert {s["field"] for s in samples} == set(row["diverged_fields"])
    for s in samples:
        for side in ("entries", "blob"):
            assert s[side] is None or len(s[side]) <= 160
    # the first llm sample is the first divergence: position 3, the summary's copy at seq 15
    first = next(s for s in samples if s["field"] == "llm")
    assert (first["position"], first["seq"]) == (3, 15)
    assert first["entries"].startswith("user:[CONTEXT COMPACTION]") and first["blob"] == "user:Recap."


def test_reproduce_returns_the_same_row() -> None:
    ws = workspace("faults")
    rows = ws.parity().to_dict("records")
    for row in rows:
        again = ws.sql(row["reproduce"])
        assert len(again) == 1
        (got,) = again.to_dict("records")
        for key in ("conversation_id", "verdict", "harness_log_line"):
            assert got[key] == row[key]
        for key in (f"{f}_{k}" for f in FIELDS for k in COUNTS):
            assert _int(got[key]) == _int(row[key]), key
        assert list(got["causes"]) == list(row["causes"])


def test_report_html_never_raises() -> None:
    full = workspace("faults").parity()
    assert isinstance(full, ParityReport)
    html = full._repr_html_()
    assert isinstance(html, str) and "Old notes" in html
    assert isinstance(full[["title"]]._repr_html_(), str)  # a slice without the audit columns
    assert isinstance(full.iloc[0:0]._repr_html_(), str)  # no rows
    broken = full.copy()
    broken["causes"] = None  # a column of the wrong shape: falls back, never raises
    assert isinstance(broken._repr_html_(), str)
