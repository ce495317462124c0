"""The audit's precomputed columns read what the rules they replace read.

``audit_entry_facts`` parses each log payload once and ``audit_item_columns``
reads each item's identity and text digest once; both are written from the
SPEC's fields by hand here, so a faster parse cannot change a fact.
"""

from __future__ import annotations

import json
from typing import Any

import poncho_replay
from poncho_replay import audit

JsonDict = dict[str, Any]


def _log(entries: list[JsonDict]) -> poncho_replay.Workspace:
    ws = poncho_replay.open()
    for seq, entry in enumerate(entries, start=1):
        ws.con.execute(
            "INSERT INTO conversation_entries (source, seq, id, agent_id, conversation_id, type, payload, ordinal) "
            "VALUES ('s', ?, ?, 'o', 'c1', ?, ?, ?)",
            [seq, entry["id"], entry["type"], json.dumps(entry), seq],
        )
    audit.install(ws.con)
    return ws


def test_entry_facts_read_message_ids_turns_and_flags() -> None:
    ws = _log(
        [
            {
                "id": "e1",
                "type": "user_message",
                "turnId": "t1",
                "hidden": True,
                "message": {"role": "user", "content": "x", "metadata": {"id": "u1"}},
            },
            {
                "id": "e2",
                "type": "compaction",
                "firstKeptSeq": 1,
                "summaryMessage": {"role": "user", "content": "s", "metadata": {"id": "sum"}},
            },
            # a message key, even null, wins over summaryMessage (coalesce of the two keys)
            {
                "id": "e3",
                "type": "assistant_message",
                "turnId": "t1",
                "message": None,
                "summaryMessage": {"metadata": {"id": "not-this"}},
            },
            {"id": "e4", "type": "assistant_amendment", "targetEntryId": "e3"},
            {
                "id": "e5",
                "type": "harness_message",
                "turnId": "t2",
                "message": {
                    "role": "user",
                    "content": "s",
                    "metadata": {"id": "h1", "isCompactionSummary": True},
                },
            },
            {"id": "e6", "type": "assistant_message", "turnId": "t2"},
        ]
    )
    rows = ws.con.execute(
        "SELECT id, turn_id, msg_id, hidden, target, message_kind, summary_flag, first_kept "
        "FROM audit_entry_facts ORDER BY seq"
    ).fetchall()
    assert rows == [
        ("e1", "t1", "u1", True, None, None, False, None),
        ("e2", None, "sum", False, None, None, False, "1"),
        ("e3", "t1", None, False, None, "NULL", False, None),
        ("e4", None, None, False, "e3", None, False, None),
        ("e5", "t2", "h1", False, None, None, True, None),
        ("e6", "t2", None, False, None, None, False, None),
    ]


def test_item_columns_are_the_key_and_the_text_digest() -> None:
    ws = _log([])
    item = '{"subagentId":"sa","timestamp":17,"result":"r"}'
    got = ws.con.execute(
        "SELECT audit_item_columns('pending', ?::JSON), audit_item_columns('llm', ?::JSON), hash(?), strlen(?)",
        [item, '{"metadata":{"id":"m9"}}', item, item],
    ).fetchall()[0]
    assert got[0]["item_key"] == "sa@17"
    assert (got[0]["item_hash"], got[0]["item_len"]) == (got[2], got[3]) and got[3] == len(item)
    assert got[1]["item_key"] == "m9"
