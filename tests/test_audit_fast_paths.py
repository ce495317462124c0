"""The shortcuts that make the audit fast must not change its answers.

* the SQL display rebuild keeps a message's keys where they were (JavaScript's
  spread), so equal values give equal JSON text;
* the exact comparison decides most pairs natively (text hash, fingerprint)
  and only the rest in Python: equal JSON values in another key order still
  match, different ones still differ; the fingerprint proves a string
  unlike a list but proves nothing about a key permutation;
* an unamended assistant message is served as logged (no re-serialization);
* sample previews are made in SQL: role:text projections, cut at 160;
* the loader joins its checks back to the staged rows by its own row id, so
  an export's repeated ordinals neither multiply nor lose rows.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa

import poncho_replay
from poncho_replay import audit
from poncho_replay.sources.ingest import Stager

JsonDict = dict[str, Any]


def _workspace(blob: JsonDict, log: list[JsonDict]) -> poncho_replay.Workspace:
    """One conversation written straight into the workbench tables (payload keys kept in order)."""
    ws = poncho_replay.open()
    data = {k: v for k, v in blob.items() if k != "_harnessMessages"}
    ws.con.execute(
        "INSERT INTO conversations (source, id, agent_id, title, data, harness_messages) VALUES ('s', 'c1', 'a', 't', ?, ?)",
        [json.dumps(data), json.dumps(blob["_harnessMessages"])],
    )
    for seq, entry in enumerate(log, start=1):
        ws.con.execute(
            "INSERT INTO conversation_entries (source, seq, id, agent_id, conversation_id, type, payload, ordinal) "
            "VALUES ('s', ?, ?, 'o', 'c1', ?, ?, ?)",
            [seq, entry["id"], entry["type"], json.dumps(entry), seq],
        )
    return ws


def _row(ws: poncho_replay.Workspace) -> dict[str, Any]:
    report = ws.parity("0.58", "exact")
    assert len(report) == 1
    return report.iloc[0].to_dict()


def test_display_rebuild_keeps_each_key_in_place() -> None:
    bubble = {"metadata": {"id": "m1"}, "content": "a", "role": "assistant", "extra": 1}
    bare = {"role": "assistant", "metadata": {"id": "m2"}}
    log = [
        {"id": "e1", "type": "assistant_message", "turnId": "t", "runId": "r", "message": bubble},
        {"id": "e2", "type": "assistant_amendment", "targetEntryId": "e1", "appendText": "b"},
        {"id": "e3", "type": "assistant_message", "turnId": "t", "runId": "r", "message": bare},
    ]
    ws = _workspace({"conversationId": "c1", "messages": [], "_harnessMessages": []}, log)
    audit.install(ws.con)
    texts = [
        r[0]
        for r in ws.con.execute(
            "SELECT message::VARCHAR FROM display_messages_at() ORDER BY position"
        ).fetchall()
    ]
    # {...message, content}: content replaced where it stood; appended last when absent.
    assert texts == [
        '{"metadata":{"id":"m1"},"content":"ab","role":"assistant","extra":1}',
        '{"role":"assistant","metadata":{"id":"m2"},"content":""}',
    ]


def _harness(message: JsonDict, i: int) -> JsonDict:
    return {"id": f"h{i}", "type": "harness_message", "turnId": "t", "message": message}


def test_equal_values_match_even_when_their_text_differs() -> None:
    logged = [
        {
            "role": "user",
            "content": "hi",
            "metadata": {"id": "a", "step": 1, "sections": [{"type": "text", "content": "x"}]},
        },
        {"role": "assistant", "content": "same", "metadata": {"id": "c"}},
    ]
    # The same JSON values with their keys in another order, at the top and nested.
    blob_llm = [
        {
            "metadata": {"sections": [{"content": "x", "type": "text"}], "step": 1, "id": "a"},
            "content": "hi",
            "role": "user",
        },
        {"content": "same", "role": "assistant", "metadata": {"id": "c"}},
    ]
    ws = _workspace(
        {"conversationId": "c1", "messages": [], "_harnessMessages": blob_llm},
        [_harness(m, i) for i, m in enumerate(logged)],
    )
    row = _row(ws)
    assert (row["llm_entries"], row["llm_blob"], row["llm_matching"], row["llm_changed"]) == (
        2,
        2,
        2,
        0,
    )
    assert "llm" not in list(row["diverged_fields"])


def test_different_values_still_differ_on_every_path() -> None:
    logged = [
        {"role": "user", "content": "one", "metadata": {"id": "a"}},
        {
            "role": "user",
            "content": "two",
            "metadata": {"id": "b"},
        },  # content differs: fingerprint decides
        {
            "role": "user",
            "content": "three",
            "metadata": {"id": "c", "n": 1},
        },  # nested value differs: Python decides
        {"role": "user", "content": "four", "metadata": {"id": "d"}},
    ]
    blob_llm = [
        logged[0],
        {"role": "user", "content": "TWO", "metadata": {"id": "b"}},
        {"metadata": {"n": 2, "id": "c"}, "role": "user", "content": "three"},
        logged[3],
    ]
    ws = _workspace(
        {"conversationId": "c1", "messages": [], "_harnessMessages": blob_llm},
        [_harness(m, i) for i, m in enumerate(logged)],
    )
    row = _row(ws)
    # Prefix 1 (position 0), suffix 1 (position 3), positions 1 and 2 changed.
    assert (row["llm_matching"], row["llm_changed"], row["llm_first_position"]) == (2, 2, 1)
    assert list(row["diverged_fields"]) == ["llm"]


def _entry_rows(ordinals: list[int], payloads: list[str]) -> pa.Table:
    n = len(ordinals)
    return pa.table(
        {
            "ordinal": pa.array(ordinals, pa.int64()),
            "seq": [str(i + 1) for i in range(n)],
            "id": [f"e{i}" for i in range(n)],
            "agent_id": ["o"] * n,
            "tenant_id": ["__default__"] * n,
            "conversation_id": ["c1"] * n,
            "type": ["harness_message"] * n,
            "payload": payloads,
            "created_at": [None] * n,
        }
    )


def test_repeated_export_ordinals_neither_multiply_nor_lose_rows() -> None:
    con = duckdb.connect()
    stager = Stager(con)
    good = json.dumps(
        {
            "id": "x",
            "type": "harness_message",
            "turnId": "t",
            "message": {"role": "user", "content": "hi"},
        }
    )
    # Rows from two sources exported together share ordinals 0 and 1; the third row is broken.
    stager.add("conversation_entries", _entry_rows([0, 1, 0, 1], [good, good, "{not json", good]))
    summary = stager.finish("export", "jsonl")
    assert summary.read["conversation_entries"] == 4
    assert summary.loaded["conversation_entries"] == 3
    assert summary.quarantined == {"invalid_json": 1}
    ids = [r[0] for r in con.execute("SELECT id FROM conversation_entries ORDER BY id").fetchall()]
    assert ids == ["e0", "e1", "e3"]
    assert con.execute("SELECT row_key FROM quarantine").fetchall() == [("e2",)]


def _sql_value(con: duckdb.DuckDBPyConnection, expr: str, *params: Any) -> Any:
    return con.execute(f"SELECT {expr}", list(params)).fetchone()[0]  # type: ignore[index]


def test_fingerprints_prove_a_string_unlike_a_list_and_nothing_for_a_key_permutation() -> None:
    con = poncho_replay.open().con
    audit.install(con)
    as_text = '{"role":"user","content":"hi","metadata":{"id":"m"}}'
    as_parts = '{"role":"user","content":[{"type":"text","text":"hi"}],"metadata":{"id":"m"}}'
    parts_reordered = '{"metadata":{"id":"m"},"content":[{"text":"hi","type":"text"}],"role":"user"}'
    differ = "audit_fp_differ(audit_fingerprint(?::JSON), audit_fingerprint(?::JSON))"
    assert _sql_value(con, differ, as_text, as_parts) is True
    assert _sql_value(con, differ, as_parts, parts_reordered) is False  # left to the canonical form
    other_id = as_text.replace('"m"', '"n"')
    assert _sql_value(con, differ, as_text, other_id) is True
    eq = "audit_eq('exact', 'llm', ?::JSON, ?::JSON)"
    assert _sql_value(con, eq, as_parts, parts_reordered) is True
    assert _sql_value(con, eq, as_text, as_parts) is False


def test_an_unamended_assistant_message_is_served_as_logged() -> None:
    odd_order = {"metadata": {"id": "m1", "step": 2}, "content": "caf\u00e9 \U0001f9ed", "role": "assistant"}
    log = [{"id": "e1", "type": "assistant_message", "turnId": "t", "runId": "r", "message": odd_order}]
    ws = _workspace({"conversationId": "c1", "messages": [], "_harnessMessages": []}, log)
    audit.install(ws.con)
    (text,) = ws.con.execute("SELECT message::VARCHAR FROM display_messages_at()").fetchone()  # type: ignore[misc]
    assert text == '{"metadata":{"id":"m1","step":2},"content":"café 🧭","role":"assistant"}'


def test_sample_previews_are_projections_cut_at_160_characters() -> None:
    con = poncho_replay.open().con
    audit.install(con)
    preview = "audit_preview(?, ?::JSON)"
    assert _sql_value(con, preview, "llm", '{"role":"user","content":"a  b\\n c "}') == "user:a b c"
    parts = '{"role":"assistant","content":[{"type":"text","text":"hi"},{"type":"file","data":"u://f"}]}'
    assert _sql_value(con, preview, "display", parts) == "assistant:hi"
    long = _sql_value(con, preview, "llm", json.dumps({"role": "user", "content": "x" * 200}))
    assert long == "user:" + "x" * 154 + "\u2026" and len(long) == 160
    assert _sql_value(con, preview, "pending", '{"subagentId":"s","result":1}') == '{"subagentId":"s","result":1}'
    assert _sql_value(con, preview, "llm", "null") is None
    assert _sql_value(con, preview, "llm", None) is None
    # the Python side (diff_df) shows the same item the same way, before the cut
    assert audit._preview("pending", {"subagentId": "s", "result": 1}) == '{"subagentId":"s","result":1}'
