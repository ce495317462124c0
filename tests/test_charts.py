"""Compaction DataFrames and charts on the bundled harness 0.58.0 sample.

Expected seqs are read off the sample's README and SPEC §3/§5 by hand:
"Printing press history" logs harness messages at 2, 3, 6, 7, 10, 11 before
its compaction at 14 (firstKeptSeq 10, guessed to keep the last two), then
appends the whole compacted transcript again at 15-19; the blob kept the
summary plus four messages, the first of which ("How fast did printing
spread?", metadata.id beedb837...) was first logged at seq 10: the guess was
right, the divergence is the approximate re-append.
"Thesis outline" has harness messages 2, 3, 6, 7, 10 (the first summary),
12, 13 and compactions at 9 (firstKeptSeq 6) and 15 (firstKeptSeq 10).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from poncho_replay.display import blob_first_kept_seq, compactions_df, messages_df
from poncho_replay.display.charts import compaction_chart, fleet_compaction_chart, save_chart
from tests.display_sample import (
    GARDEN,
    LOG_TRIAGE,
    MORNING,
    PRINTING_PRESS,
    THESIS,
    sample,
    sample_ids,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def datasets(chart: object) -> dict[str, list[dict]]:
    return chart.to_dict()["datasets"]  # type: ignore[attr-defined]


def test_compactions_df_printing_press() -> None:
    blob, entries = sample(PRINTING_PRESS)
    row = compactions_df(entries, blob).iloc[0].to_dict()
    assert (row["conversation_id"], row["layer"], row["seq"], row["first_kept_seq"]) == (
        PRINTING_PRESS,
        1,
        14,
        10,
    )
    assert (row["summarized_from"], row["summarized_to"], row["summarized_count"]) == (2, 7, 4)
    assert (row["kept_from"], row["kept_to"], row["kept_count"]) == (10, 19, 7)
    assert row["active_to"] == 20 and row["is_latest"]
    assert (
        row["tokens_before"] == 3060
        and pd.isna(row["tokens_after"])
        and pd.isna(row["tokens_saved"])
    )
    assert row["blob_first_kept_seq"] == 10 and row["guess_matches_blob"] is True


def test_compactions_df_layered() -> None:
    blob, entries = sample(THESIS)
    df = compactions_df(entries, blob)
    assert df["layer"].tolist() == [1, 2] and df["seq"].tolist() == [9, 15]
    assert df["first_kept_seq"].tolist() == [6, 10]
    assert df["summarized_from"].tolist() == [2, 2] and df["summarized_to"].tolist() == [3, 7]
    assert df["kept_from"].tolist() == [6, 10] and df["kept_to"].tolist() == [13, 13]
    assert df["kept_count"].tolist() == [
        5,
        3,
    ]  # 6, 7, 10, 12, 13 while the first is latest; 10, 12, 13
    assert df["active_to"].tolist() == [14, 15]
    assert df["tokens_saved"].tolist() == [35000, 44500]
    assert pd.isna(df.loc[0, "blob_first_kept_seq"]) and df.loc[1, "blob_first_kept_seq"] == 10
    assert df["guess_matches_blob"].tolist() == [None, True]


def test_blob_first_kept_seq_follows_the_first_kept_message() -> None:
    blob, entries = sample(PRINTING_PRESS)
    kept = blob["_harnessMessages"]
    stale = {**blob, "_harnessMessages": kept[:-1]}  # a later reply never written: same first kept
    assert blob_first_kept_seq(entries, stale) == 10
    shifted = {**blob, "_harnessMessages": kept[1:]}  # "By 1500 ..." (3c81aaca...) now kept first
    assert blob_first_kept_seq(entries, shifted) == 11
    only_summary = {**blob, "_harnessMessages": kept[:1]}  # nothing kept
    assert blob_first_kept_seq(entries, only_summary) is None
    unlogged = {**blob, "_harnessMessages": [kept[0], {"role": "user", "content": "x", "metadata": {"id": "nope"}}]}
    assert blob_first_kept_seq(entries, unlogged) is None
    thesis_blob, thesis_entries = sample(THESIS)
    # Its first kept message is the first summary, which has no id: matched by value at seq 10.
    assert blob_first_kept_seq(thesis_entries, thesis_blob) == 10


def test_blob_first_kept_seq_equals_the_audit_sql_on_every_fixture() -> None:
    import json
    from pathlib import Path

    import poncho_replay
    from poncho_replay import audit
    from poncho_replay.display.frames import blob_first_kept_seq as python_twin

    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    compared = 0
    for db in [poncho_replay.sample_db(), *sorted(fixtures.glob("*/harness.db"))]:
        ws = poncho_replay.open()
        ws.load(db)
        audit.install(ws.con)
        sql = dict(ws.con.execute(
            "SELECT conversation_id, blob_first_kept_seq FROM audit_item_facts('0.58') WHERE field = 'llm'"
        ).fetchall())
        for cid in ws.conversations["id"]:
            view = ws.conversation(cid)
            blob, entries = view.blob, view.entries
            has_compaction = any(e["type"] == "compaction" for e in entries)
            if has_compaction and cid in sql:
                assert python_twin(entries, blob) == sql[cid], (db, cid, json.dumps(blob.get("title")))
                compared += 1
    assert compared >= 5  # the sample's two compacted conversations and the compaction fixture's three


def test_messages_df_flags() -> None:
    _, entries = sample(PRINTING_PRESS)
    df = messages_df(entries, conversation_id=PRINTING_PRESS)
    harness = df[df["type"] == "harness_message"]
    assert harness["seq"].tolist() == [2, 3, 6, 7, 10, 11, 15, 16, 17, 18, 19]
    in_context = df.loc[df["in_llm_context"], "seq"].tolist()
    assert in_context == [
        10,
        11,
        14,
        15,
        16,
        17,
        18,
        19,
    ]  # the summary at 14 plus harness seq >= 10
    assert df.loc[df["is_compaction_summary"], "seq"].tolist() == [14, 15]
    assert (df["conversation_id"] == PRINTING_PRESS).all()

    _, morning = sample(MORNING)
    m = messages_df(morning)
    assert m.loc[m["hidden"], "seq"].tolist() == [1]


def test_compaction_chart_data_equals_the_entries_seqs() -> None:
    blob, entries = sample(PRINTING_PRESS)
    data = datasets(compaction_chart(entries, blob))
    assert [m["seq"] for m in data["messages"]] == [2, 3, 6, 7, 10, 11, 15, 16, 17, 18, 19]
    spans = [(s["lane"], s["kind"], s["start"], s["end"]) for s in data["spans"]]
    assert spans == [
        ("compaction 1 @ seq 14", "summarized", 2, 7),
        ("compaction 1 @ seq 14", "kept (logged firstKeptSeq)", 10, 19),
        ("blob _harnessMessages", "kept (blob)", 10, 19),
    ]
    (mark,) = data["compactions"]
    # The harness logged tokensBefore only: the label names the missing count, never "?".
    assert (mark["seq"], mark["first_kept_seq"], mark["label"]) == (
        14, 10, "3,060 tokens before; after unknown",
    )  # fmt: skip
    (note,) = data["blob"]
    assert note["differs"] is False and "seq 10" in note["note"] and "matches the logged guess" in note["note"]


def test_layered_compaction_chart_stacks_lanes() -> None:
    blob, entries = sample(THESIS)
    chart = compaction_chart(entries, blob)
    data = datasets(chart)
    assert [(c["lane"], c["seq"], c["label"]) for c in data["compactions"]] == [
        ("compaction 1 @ seq 9", 9, "42,000 → 7,000 tokens (saved 35,000)"),
        ("compaction 2 @ seq 15", 15, "51,000 → 6,500 tokens (saved 44,500)"),
    ]
    kept = [
        (s["lane"], s["start"], s["end"]) for s in data["spans"] if s["kind"].startswith("kept")
    ]
    assert kept == [
        ("compaction 1 @ seq 9", 6, 13),
        ("compaction 2 @ seq 15", 10, 13),
        ("blob _harnessMessages", 10, 13),
    ]
    assert data["blob"][0]["differs"] is False
    lanes = chart.to_dict()["layer"][0]["encoding"]["y"]["sort"]
    assert lanes == [
        "harness messages",
        "compaction 1 @ seq 9",
        "compaction 2 @ seq 15",
        "blob _harnessMessages",
    ]


def test_chart_without_compaction_or_entries() -> None:
    blob, entries = sample(GARDEN)
    data = datasets(compaction_chart(entries, blob))
    assert data["spans"] == [] and data["compactions"] == [] and data["blob"] == []
    assert len(data["messages"]) == 10
    assert datasets(compaction_chart([]))["messages"] == []


def fleet_frame() -> pd.DataFrame:
    frames = []
    for cid in sample_ids():
        blob, entries = sample(cid)
        frames.append(compactions_df(entries, blob).assign(title=blob["title"]))
    return pd.concat(frames, ignore_index=True)


def test_fleet_chart_per_conversation_and_causes() -> None:
    parity = pd.DataFrame(
        {
            "conversation_id": [PRINTING_PRESS, THESIS, LOG_TRIAGE],
            "causes": [
                ["guessed_first_kept_seq", "approximate_compaction_diff"],
                [],
                ["callback_turn"],
            ],
        }
    )
    data = datasets(fleet_compaction_chart(fleet_frame(), parity))
    per = {r["label"]: r for r in data["per_conversation"]}
    assert list(per) == ["Thesis outline", "Printing press history"]  # most compactions first
    assert (
        per["Thesis outline"]["compactions"] == 2 and per["Thesis outline"]["tokens_saved"] == 79500
    )
    assert per["Thesis outline"]["guess"] == "matches"
    assert (
        per["Printing press history"]["tokens_saved"] is None
        and per["Printing press history"]["guess"] == "matches"
    )
    # Tokens saved where both counts are logged, a clear "unknown" where not.
    assert per["Thesis outline"]["tokens_saved_label"] == "79,500"
    assert per["Printing press history"]["tokens_saved_label"] == "unknown (tokensAfter not logged)"
    causes = {r["cause"]: r["conversations"] for r in data["causes"]}
    assert causes == {
        "guessed_first_kept_seq": 1,
        "approximate_compaction_diff": 1,
        "callback_turn": 1,
    }
    assert "causes" not in datasets(fleet_compaction_chart(fleet_frame()))


def test_png_svg_and_html_export(tmp_path: Path) -> None:
    blob, entries = sample(PRINTING_PRESS)
    chart = compaction_chart(entries, blob)
    png = save_chart(chart, tmp_path / "press.png")
    head = png.read_bytes()
    assert head.startswith(PNG_MAGIC) and len(head) > 20_000
    svg = save_chart(chart, tmp_path / "press.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<svg") and "Printing press history" in svg
    page = save_chart(fleet_compaction_chart(fleet_frame()), tmp_path / "fleet.html").read_text(
        encoding="utf-8"
    )
    assert "<script src=" not in page  # Vega is bundled: opens offline
    with pytest.raises(ValueError, match=r"\.pdf"):
        save_chart(chart, tmp_path / "press.pdf")


def _legend_entries(spec: dict) -> list[tuple[str, list[str]]]:
    """(legend title, colour domain) of every colour encoding in a chart spec, nested views included."""
    found = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            color = node.get("encoding", {}).get("color") if isinstance(node.get("encoding"), dict) else None
            if isinstance(color, dict) and "field" in color:
                found.append((color.get("title"), color.get("scale", {}).get("domain")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return found


def test_fleet_chart_has_a_legend_for_every_colour_and_says_unknown() -> None:
    parity = pd.DataFrame({"conversation_id": [PRINTING_PRESS], "causes": [["stale_blob"]]})
    spec = fleet_compaction_chart(fleet_frame(), parity).to_dict()
    legends = dict(_legend_entries(spec))
    assert legends["logged firstKeptSeq vs blob"] == ["differs", "matches", "unknown"]
    assert legends["tokens"] == ["tokens saved (before − after)"]
    assert legends["causes"] == ["conversations with the cause"]
    # Every bar is coloured through a legend: no bar carries a bare colour.
    assert re.findall(r'"mark": \{"type": "bar"[^}]*"color"', json.dumps(spec)) == []
    # The tokens panel writes "unknown" for a conversation without tokensAfter.
    assert "unknown (tokensAfter not logged)" in json.dumps(spec["datasets"])


def test_fleet_chart_keeps_conversations_that_share_a_title_apart() -> None:
    """Two conversations titled alike (two sources, say) are two bars, never one merged bar."""
    one = fleet_frame()
    two = pd.concat(
        [one.assign(source="a"), one.assign(source="b")], ignore_index=True
    )
    per = datasets(fleet_compaction_chart(two))["per_conversation"]
    assert len(per) == 4 and len({r["label"] for r in per}) == 4
    thesis = [r for r in per if r["title"] == "Thesis outline"]
    assert [r["compactions"] for r in thesis] == [2, 2] and {r["source"] for r in thesis} == {"a", "b"}
    assert all(r["label"].endswith(("[a]", "[b]")) for r in per)
