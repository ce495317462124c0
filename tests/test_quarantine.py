"""Quarantine (rows that cannot be parsed) and anomalies (rows that parse but break a rule)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poncho_replay
from poncho_replay.errors import BadEntryError, ReplayError
from poncho_replay.harness_layout import conversation_row, entry_row
from poncho_replay.models import parse_entry
from poncho_replay.sources.ingest import ENTRY_COLUMNS, Stager
from tests.load_data import conversation, log
from tests.strategies import entry_logs


def loose_db(path: Path) -> sqlite3.Connection:
    """Harness column names without the constraints: what a damaged dump or restore can hold."""
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE conversations (id, agent_id, tenant_id, owner_id, title, data, message_count, created_at, "
        "updated_at, tool_result_archive, harness_messages, continuation_messages, parent_conversation_id, "
        "has_pending_approvals, channel_meta, parent_message_id)"
    )
    con.execute(f"CREATE TABLE conversation_entries ({', '.join(ENTRY_COLUMNS)})")
    return con


def add_conv(con: sqlite3.Connection, conv: dict[str, Any], **override: Any) -> None:
    row = {**conversation_row(conv, agent_id="agent"), **override}
    con.execute(
        f"INSERT INTO conversations ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
        list(row.values()),
    )


def add_entry(con: sqlite3.Connection, cid: str, entry: dict[str, Any], **override: Any) -> None:
    row = {**entry_row(cid, entry, agent_id="owner-a"), **override}
    con.execute(
        f"INSERT INTO conversation_entries ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
        list(row.values()),
    )


def payload(entry: dict[str, Any], **changes: Any) -> str:
    body = {k: v for k, v in entry.items() if k not in ("seq", "createdAt")}
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return json.dumps(body)


@pytest.fixture()
def damaged(tmp_path: Path) -> Path:
    """One row per quarantine reason, in conversation c1 (seqs 10-17) and c-dup."""
    path = tmp_path / "damaged.db"
    con = loose_db(path)
    add_conv(con, conversation("c1"))
    add_conv(con, conversation("c-dup"))
    add_conv(con, conversation("c-dup"), title="second copy")  # duplicate_conversation
    add_conv(con, conversation("c-bad"), data="{not json")  # invalid_json (data)
    add_conv(con, conversation("c-cnt"), message_count="many")  # wrong_type
    good = log("c1")
    for e in good:
        add_entry(con, "c1", e)
    add_entry(con, "c1", {**good[1], "id": "q-json", "seq": 10}, payload="{broken")
    add_entry(con, "c1", {**good[1], "id": "q-type", "seq": 11, "type": "mystery"})
    add_entry(
        con, "c1", {**good[1], "id": "q-miss", "seq": 12}, payload=payload(good[1], turnId=...)
    )
    add_entry(
        con, "c1", {**good[1], "id": "q-wrong", "seq": 13}, payload=payload(good[1], turnId=7)
    )
    add_entry(con, "c1", {**good[1], "id": "q-seq", "seq": 14}, seq="fourteen")
    add_entry(con, "c1", {**good[1], "id": "q-mis", "seq": 15}, type="user_message")
    add_entry(
        con,
        "c1",
        {**good[1], "id": "q-role", "seq": 16},
        payload=payload(good[1], message={"role": "bot", "content": "x"}),
    )
    con.commit()
    con.close()
    return path


def test_every_reason_is_quarantined_with_raw_text(damaged: Path) -> None:
    ws = poncho_replay.open()
    summary = ws.load(damaged)
    assert summary.quarantined == {
        "bad_seq": 1, "duplicate_conversation": 1, "invalid_json": 2, "missing_field": 1,
        "type_mismatch": 1, "unknown_type": 1, "wrong_type": 3,
    }  # fmt: skip
    assert summary.read == {"conversations": 5, "conversation_entries": 11}
    assert summary.loaded == {"conversations": 2, "conversation_entries": 4}
    q = {
        r["row_key"]: r
        for r in ws.quarantine.to_dict("records")
        if r["table"] == "conversation_entries"
    }
    assert (
        q["q-json"]["reason"] == "invalid_json"
        and json.loads(q["q-json"]["raw"])["payload"] == "{broken"
    )
    assert (q["q-miss"]["reason"], q["q-miss"]["detail"]) == ("missing_field", "turnId")
    assert (q["q-wrong"]["reason"], q["q-wrong"]["detail"]) == ("wrong_type", "turnId")
    assert (q["q-role"]["reason"], q["q-role"]["detail"]) == ("wrong_type", "message")
    assert q["q-seq"]["reason"] == "bad_seq" and pd.isna(q["q-seq"]["seq"])
    assert q["q-wrong"]["conversation_id"] == "c1" and q["q-wrong"]["seq"] == 13
    convs = {
        r["row_key"]: r for r in ws.quarantine.to_dict("records") if r["table"] == "conversations"
    }
    assert convs["c-dup"]["reason"] == "duplicate_conversation"
    assert (
        json.loads(convs["c-dup"]["raw"])["title"] == "second copy"
    )  # the first copy is the one loaded
    assert convs["c-bad"]["reason"] == "invalid_json"
    assert (convs["c-cnt"]["reason"], convs["c-cnt"]["detail"]) == ("wrong_type", "message_count")


def test_strict_raises_on_first_bad_row_and_writes_nothing(damaged: Path) -> None:
    ws = poncho_replay.open()
    with pytest.raises(BadEntryError) as info:
        ws.load(damaged, strict=True, name="dmg")
    msg = str(info.value)
    # First bad row by table then position: the duplicate conversation c-dup.
    assert (
        "dmg" in msg
        and "conversations" in msg
        and "c-dup" in msg
        and "duplicate_conversation" in msg
    )
    assert ws.con.execute("SELECT count(*) FROM conversations").fetchone() == (0,)
    assert ws.con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_a_source_too_large_to_hold_is_staged_in_duckdb_with_the_same_result(
    damaged: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past STAGE_IN_MEMORY_BYTES the staged rows move into temp tables: same rows, same quarantine."""
    from poncho_replay.sources import ingest

    def tables(ws: poncho_replay.Workspace) -> list[list[tuple[Any, ...]]]:
        return [
            ws.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("conversations", "conversation_entries", "quarantine")
        ]

    held = poncho_replay.open()
    held_summary = held.load(damaged, name="dmg")
    monkeypatch.setattr(ingest, "STAGE_IN_MEMORY_BYTES", 0)
    spilled = poncho_replay.open()
    spills: list[int] = []
    spill = ingest.Stager._spill
    monkeypatch.setattr(ingest.Stager, "_spill", lambda self: spills.append(1) or spill(self))
    assert spilled.load(damaged, name="dmg").to_dict() == held_summary.to_dict()
    assert spills and tables(spilled) == tables(held)
    assert held_summary.quarantined  # the quarantine path was exercised on both sides
    with pytest.raises(BadEntryError):  # a strict failure after spilling leaves nothing behind
        spilled.load(damaged, name="again", strict=True)
    assert spilled.con.execute("SELECT count(*) FROM conversations WHERE source = 'again'").fetchone() == (0,)
    assert spilled.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_stage%' OR table_name LIKE '_bad%'"
    ).fetchone() == (0,)


def test_strict_names_entry_seq(tmp_path: Path) -> None:
    con = loose_db(tmp_path / "s.db")
    add_conv(con, conversation("c1"))
    good = log("c1")
    add_entry(con, "c1", good[0])
    add_entry(con, "c1", good[1], payload=payload(good[1], turnId=None))
    con.commit()
    with pytest.raises(ReplayError) as info:
        poncho_replay.open().load(tmp_path / "s.db", strict=True, name="s")
    assert (info.value.conversation_id, info.value.seq) == ("c1", 2)
    assert "wrong_type" in str(info.value) and "conversation_entries" in str(info.value)


def test_every_anomaly_kind(tmp_path: Path) -> None:
    con = loose_db(tmp_path / "a.db")
    add_conv(con, conversation("c1"))
    add_conv(con, conversation("lonely"))
    e = log("c1")
    add_entry(con, "c1", e[0])
    add_entry(con, "c1", {**e[1], "id": "dup-seq"}, seq=1)  # duplicate_seq at 1
    add_entry(con, "c1", e[1])
    add_entry(con, "c1", {**e[3], "seq": 5})  # seqs 3..4 missing
    add_entry(con, "c1", {**e[2], "id": e[3]["id"], "seq": 6})  # duplicate_id
    add_entry(con, "ghost", log("ghost")[0])  # orphan_entries
    con.commit()
    ws = poncho_replay.open()
    summary = ws.load(tmp_path / "a.db")
    assert summary.quarantined == {}
    assert summary.loaded["conversation_entries"] == 6  # anomalies still load
    assert summary.anomalies == {
        "duplicate_id": 1,
        "duplicate_seq": 1,
        "no_entries": 1,
        "orphan_entries": 1,
        "seq_gap": 1,
    }
    found = {(r["kind"], r["conversation_id"], r["seq"]) for r in ws.anomalies.to_dict("records")}
    assert ("duplicate_seq", "c1", 1) in found and ("seq_gap", "c1", 3) in found
    assert ("orphan_entries", "ghost", None) in {(k, c, None) for k, c, _ in found}
    assert ws.anomalies.query("kind == 'seq_gap'")["detail"].tolist() == ["seqs 3..4 missing"]
    # The second holder of a seq or an id keeps a unique positive dup; first holders keep 0.
    dups = dict(ws.con.execute("SELECT id, dup FROM conversation_entries WHERE dup > 0").fetchall())
    assert dups == {"dup-seq": 1, e[3]["id"]: 2}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(1, 7), max_size=8), min_size=1, max_size=5))
def test_seq_gaps_are_every_missing_run_before_each_logs_last_seq(logs: list[list[int]]) -> None:
    """The view ranks only logs that are not 1..n; a repeated seq (1, 1, 3: n rows, max n) is not 1..n."""
    ws = poncho_replay.open()
    rows = [(f"c{i}", seq, f"c{i}-{j}", j) for i, seqs in enumerate(logs) for j, seq in enumerate(seqs)]
    for cid, seq, eid, dup in rows:
        ws.con.execute(
            "INSERT INTO conversation_entries (seq, id, agent_id, conversation_id, type, payload, dup) "
            "VALUES (?, ?, 'a', ?, 'harness_message', '{}', ?)",
            [seq, eid, cid, dup],
        )
    expected = set()
    for i, seqs in enumerate(logs):
        prev = 0
        for seq in sorted(set(seqs)):
            if seq > prev + 1:
                expected.add((f"c{i}", prev + 1, seq - 1))
            prev = seq
    found = ws.con.execute(
        "SELECT conversation_id, seq, detail FROM anomalies WHERE kind = 'seq_gap'"
    ).fetchall()
    as_runs = {
        (cid, first, first if d.startswith("seq ") else int(d.split("..")[1].split()[0])) for cid, first, d in found
    }
    assert len(found) == len(as_runs) and as_runs == expected


# --- the SQL rules agree with the models ------------------------------------------


def _sql_verdict(ws: poncho_replay.Workspace, entries: list[dict[str, Any]]) -> list[bool]:
    """Which entries the set-based checks accept, in order."""
    stager = Stager(ws.con)
    rows = [entry_row("c", e, agent_id="o") for e in entries]
    stager.add("conversation_entries", pa.table({c: [str(r[c]) for r in rows] for c in ENTRY_COLUMNS}))
    stager.finish("agree", "test")
    bad = {
        r[0]
        for r in ws.con.execute("SELECT row_key FROM quarantine WHERE source = 'agree'").fetchall()
    }
    return [r["id"] not in bad for r in rows]


def _model_verdict(entry: dict[str, Any]) -> bool:
    try:
        parse_entry(entry)
        return True
    except BadEntryError:
        return False


BREAKS = st.sampled_from(
    [None, 5, 5.0, "5", True, [], {}, [1, "x"], {"role": "user"}, {"role": "user", "content": [{"type": "x"}]},
     {"role": "user", "content": "x", "metadata": {"tokenCount": "3"}}, {"role": "tool", "content": [], "metadata": None}]
)  # fmt: skip


@settings(max_examples=60)
@given(log=entry_logs(), data=st.data())
def test_sql_checks_agree_with_models(log: list[dict[str, Any]], data: st.DataObject) -> None:
    mutated = []
    for i, entry in enumerate(log):
        entry = {**entry, "id": f"e{i}"}
        keys = [k for k in entry if k not in ("id", "seq", "createdAt", "type")]
        if keys and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(keys))
            if data.draw(st.booleans()):
                entry.pop(key)
            else:
                entry[key] = data.draw(BREAKS)
        mutated.append(entry)
    ws = poncho_replay.open()
    assert _sql_verdict(ws, mutated) == [_model_verdict(e) for e in mutated]


# --- hostile SQLite values, row by row (issue 17, item 2) ----------------------------------

HOSTILE_CONVERSATIONS: dict[str, tuple[dict[str, Any], tuple[str, str] | None]] = {
    # id -> (column overrides, expected (reason, field) or None when the row must load)
    "c-ok": ({}, None),
    # U+0000 is a JavaScript string character the harness stores as is (better-sqlite3
    # binds text with its length): a title holding one is data, and loads exactly.
    "c-nul-title": ({"title": "ti\x00tle"}, None),
    "c-utf8": ({"title": b"caf\xe9 \xff"}, ("invalid_utf8", "title")),  # cast to TEXT below
    "c-blob": ({"title": b"a title as a BLOB"}, ("blob_value", "title")),
    "c-blob-bad": ({"data": b"\x00\xff\xfe{"}, ("blob_value", "data")),
    "c-blob-count": ({"message_count": b"2"}, ("blob_value", "message_count")),
    "c-nul-data": ({"data": '{"conversationId":"c-nul-data","title":"t\x00","messages":[]}'},
                   ("invalid_json", "data")),  # a raw NUL is a control character: not JSON
    "c-null-owner": ({"owner_id": None}, ("missing_field", "owner_id")),
    "c-null-data": ({"data": None}, ("missing_field", "data")),
}  # fmt: skip
HOSTILE_ENTRIES: dict[str, tuple[dict[str, Any], tuple[str, str] | None]] = {
    "e-seq-text": ({"seq": "3.5"}, ("bad_seq", "seq")),
    "e-seq-real": ({"seq": 3.5}, ("bad_seq", "seq")),
    "e-seq-word": ({"seq": "x"}, ("bad_seq", "seq")),
    "e-seq-null": ({"seq": None}, ("bad_seq", "seq")),
    "e-seq-blob": ({"seq": b"7"}, ("blob_value", "seq")),
    "e-payload-blob": ({"payload": b"{}"}, ("blob_value", "payload")),
    "e-payload-utf8": ({"payload": b'{"type":"harness_message","x":"\xc3\x28"}'}, ("invalid_utf8", "payload")),
    "e-payload-nul": ({"payload": '{"type":"harness_message","turnId":"t\x00"}'}, ("invalid_json", "payload")),
    "e-agent-null": ({"agent_id": None}, ("missing_field", "agent_id")),
    "e-conv-null": ({"conversation_id": None}, ("missing_field", "conversation_id")),
    "e-type-blob": ({"type": b"harness_message"}, ("blob_value", "type")),
}  # fmt: skip
TEXT_BYTES = {"c-utf8", "e-payload-utf8"}
"""Rows whose bytes are stored as TEXT (not BLOB): what a C writer can leave in a TEXT column."""


def hostile_db(path: Path, only: str | None = None) -> Path:
    """A loose harness file: good rows, plus each hostile row (or only the one named ``only``)."""
    con = loose_db(path)
    for cid, (override, _) in HOSTILE_CONVERSATIONS.items():
        if only is None or cid in (only, "c-ok") or override == {}:
            add_conv(con, conversation(cid), **override)
    good = log("c-ok")
    for e in good:
        add_entry(con, "c-ok", e)
    for n, (eid, (override, _)) in enumerate(HOSTILE_ENTRIES.items(), start=10):
        if only is None or eid == only:
            add_entry(con, "c-ok", {**good[1], "id": eid, "seq": n}, **override)
    for key in TEXT_BYTES:  # SQLite keeps any bytes it is given as TEXT
        column = "title" if key.startswith("c-") else "payload"
        table = "conversations" if key.startswith("c-") else "conversation_entries"
        con.execute(f"UPDATE {table} SET {column} = CAST({column} AS TEXT) WHERE id = ?", (key,))
    con.commit()
    con.close()
    return path


def quarantined_per_table(ws: poncho_replay.Workspace) -> dict[str, int]:
    return dict(ws.con.execute('SELECT "table", count(*) FROM quarantine GROUP BY 1').fetchall())


def test_hostile_values_quarantined_row_by_row(tmp_path: Path) -> None:
    path = hostile_db(tmp_path / "hostile.db")
    check = sqlite3.connect(path)
    assert check.execute("SELECT typeof(title) FROM conversations WHERE id = 'c-utf8'").fetchone() == ("text",)
    assert check.execute("SELECT typeof(seq) FROM conversation_entries WHERE id = 'e-seq-real'").fetchone() == ("real",)
    check.close()
    ws = poncho_replay.open()
    summary = ws.load(path)
    expected = {
        ("conversations", k): v[1] for k, v in HOSTILE_CONVERSATIONS.items() if v[1] is not None
    } | {("conversation_entries", k): v[1] for k, v in HOSTILE_ENTRIES.items()}
    rows = ws.quarantine.to_dict("records")
    assert {(r["table"], r["row_key"]): (r["reason"], r["detail"]) for r in rows} == expected
    # Every row is accounted for, per table, and every other row loaded.
    per_table = quarantined_per_table(ws)
    for table in ("conversations", "conversation_entries"):
        assert summary.loaded[table] + per_table[table] == summary.read[table]
    assert sorted(ws.conversations["id"]) == ["c-nul-title", "c-ok"]
    assert sorted(ws.entries["id"]) == [e["id"] for e in log("c-ok")]
    assert ws.con.execute("SELECT title FROM conversations WHERE id = 'c-nul-title'").fetchone() == ("ti\x00tle",)
    # Raw values are shown safely: JSON text, UTF-8, no raw NUL; bytes that are not
    # UTF-8 appear escaped (\xNN), never dropped or replaced.
    for r in rows:
        assert "\x00" not in r["raw"] and r["raw"].encode("utf-8")
        json.loads(r["raw"])
    raw = {r["row_key"]: json.loads(r["raw"]) for r in rows}
    assert raw["c-utf8"]["title"] == "caf\\xe9 \\xff"
    assert raw["c-blob-bad"]["data"] == "\x00\\xff\\xfe{"  # NUL travels escaped (\u0000) in the JSON text
    assert raw["c-blob"]["title"] == "a title as a BLOB"
    assert raw["e-payload-utf8"]["payload"] == '{"type":"harness_message","x":"\\xc3("}'
    assert raw["e-seq-real"]["seq"] == "3.5" and raw["e-seq-null"]["seq"] is None
    assert raw["e-seq-blob"]["seq"] == "7"


@pytest.mark.parametrize(
    "bad", [k for k, v in HOSTILE_CONVERSATIONS.items() if v[1] is not None] + list(HOSTILE_ENTRIES)
)
def test_strict_names_each_hostile_row(tmp_path: Path, bad: str) -> None:
    """``strict=True`` stops at the one bad row, names its reason and conversation, writes nothing."""
    path = hostile_db(tmp_path / "one.db", only=bad)
    reason, field = (HOSTILE_CONVERSATIONS.get(bad) or HOSTILE_ENTRIES[bad])[1]  # type: ignore[misc]
    ws = poncho_replay.open()
    with pytest.raises(BadEntryError) as info:
        ws.load(path, strict=True, name="one")
    assert reason in str(info.value) and info.value.field == field
    if bad.startswith("c-"):
        assert info.value.conversation_id == bad and "table conversations" in str(info.value)
    elif bad != "e-conv-null":
        assert info.value.conversation_id == "c-ok" and "conversation_entries" in str(info.value)
    assert ws.con.execute("SELECT count(*) FROM conversations").fetchone() == (0,)
    # Without strict the same file loads everything else.
    summary = poncho_replay.open().load(path)
    assert summary.quarantined == {reason: 1}
    assert sum(summary.loaded.values()) + 1 == sum(summary.read.values())


def test_integer_overflow_is_a_wrong_type_not_a_failed_load(tmp_path: Path) -> None:
    """Digits that do not fit the INTEGER columns quarantine their row (they used to abort the load)."""
    con = loose_db(tmp_path / "big.db")
    add_conv(con, conversation("c-ok"))
    add_conv(con, conversation("c-count"), message_count="99999999999999999")
    add_conv(con, conversation("c-flag"), has_pending_approvals=2**40)
    con.commit()
    con.close()
    ws = poncho_replay.open()
    summary = ws.load(tmp_path / "big.db")
    assert summary.loaded["conversations"] == 1
    assert sorted(ws.quarantine[["row_key", "reason", "detail"]].values.tolist()) == [
        ["c-count", "wrong_type", "message_count"],
        ["c-flag", "wrong_type", "has_pending_approvals"],
    ]


def test_export_lines_that_are_not_utf8_cost_one_row(tmp_path: Path) -> None:
    """A JSONL export with a non-UTF-8 line: that line is quarantined (bytes escaped), the rest loads."""
    db = tmp_path / "f.db"
    con = loose_db(db)
    add_conv(con, conversation("c1"))
    for e in log("c1"):
        add_entry(con, "c1", e)
    con.commit()
    con.close()
    ws = poncho_replay.open()
    ws.load(db)
    out = ws.export(tmp_path / "out", format="jsonl")
    entries = (out / "entries.jsonl").read_bytes().splitlines()
    entries[1] = entries[1].replace(b'"turnId":"t1"', b'"turnId":"t\xff1"')
    (out / "entries.jsonl").write_bytes(b"\n".join(entries) + b"\n")
    ws2 = poncho_replay.open()
    summary = ws2.load(out)
    assert summary.read["conversation_entries"] == 4 and summary.loaded["conversation_entries"] == 3
    (row,) = ws2.quarantine.to_dict("records")
    assert (row["reason"], row["detail"]) == ("invalid_utf8", "payload")
    assert "t\\xff1" in json.loads(row["raw"])["payload"]


def test_parquet_export_with_a_bad_ordinal_still_loads(tmp_path: Path) -> None:
    """``ordinal`` is the kit's own column: a value that is not an integer must not refuse the file."""
    db = tmp_path / "f.db"
    con = loose_db(db)
    add_conv(con, conversation("c1"))
    for e in log("c1"):
        add_entry(con, "c1", e)
    con.commit()
    con.close()
    ws = poncho_replay.open()
    ws.load(db)
    out = ws.export(tmp_path / "out", format="parquet")
    table = pq.read_table(out / "entries.parquet")
    index = table.schema.get_field_index("ordinal")
    table = table.set_column(index, "ordinal", pa.array(["x", "1", None, "2.5"]))
    pq.write_table(table, out / "entries.parquet")
    summary = poncho_replay.open().load(out)
    assert summary.loaded == summary.read == {"conversations": 1, "conversation_entries": 4}
