"""Fleet-level DataFrames of the Workspace: rebuilt messages and compactions."""

from __future__ import annotations

import json

import pytest

import poncho_replay
from poncho_replay import rebuild


@pytest.fixture(scope="module")
def ws() -> poncho_replay.Workspace:
    workspace = poncho_replay.open()
    workspace.load(poncho_replay.sample_db())
    return workspace


def _entries(ws: poncho_replay.Workspace, cid: str) -> list[dict]:
    rows = ws.con.execute(
        "SELECT id, seq, payload FROM conversation_entries WHERE conversation_id = ? ORDER BY seq", [cid]
    ).fetchall()
    return [{**json.loads(p), "id": i, "seq": s, "createdAt": 0} for i, s, p in rows]


def test_messages_are_the_python_rebuild_of_every_conversation(ws: poncho_replay.Workspace) -> None:
    frame = ws.messages
    for cid in ws.conversations["id"]:
        entries = _entries(ws, cid)
        mine = frame[frame.conversation_id == cid]
        llm = [json.loads(m) for m in mine[mine.field == "llm"].sort_values("position").message]
        display = [json.loads(m) for m in mine[mine.field == "display"].sort_values("position").message]
        assert llm == rebuild.build_llm_context(entries)
        assert display == rebuild.build_display_snapshot(entries, rebuild.MAX_SAFE_INTEGER).messages


def test_compactions_match_the_sample_description(ws: poncho_replay.Workspace) -> None:
    # The sample's README: one orchestrator compaction in "Printing press history",
    # two layered ones in "Thesis outline" (the second keeps from the first's summary).
    titles = dict(zip(ws.conversations["id"], ws.conversations["title"], strict=True))
    frame = ws.compactions
    found = sorted((titles[c], layer) for c, layer in zip(frame.conversation_id, frame.layer, strict=True))
    assert found == [("Printing press history", 1), ("Thesis outline", 1), ("Thesis outline", 2)]
    thesis = frame[frame.conversation_id.map(titles) == "Thesis outline"].sort_values("layer")
    first, second = thesis.iloc[0], thesis.iloc[1]
    entries = _entries(ws, thesis.conversation_id.iloc[0])
    summary = next(e for e in entries if e["seq"] == first.seq)["summaryMessage"]
    summary_seqs = [e["seq"] for e in entries if e["type"] == "harness_message" and e["message"] == summary]
    assert summary_seqs and second.first_kept_seq == summary_seqs[0]
