"""The two real PostgreSQL databases the harness wrote (fixtures/harness-0.5x-postgres-sample).

Every JSONB value in them is a string scalar, as postgres.js stores it
(SPEC §4, "On PostgreSQL"). Each dump is restored into a throwaway database
on the local server. Expected values come from the samples' READMEs and
SPEC §3-§7; the row-level checks compare the kit's load with the same rows
read independently here (psycopg + ``json.loads``), lone surrogates shown
as U+FFFD as SPEC §9 says DuckDB holds them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

import poncho_replay
from poncho_replay._js import printed
from poncho_replay.rebuild import build_llm_context, rebuild_conversation
from poncho_replay.store import DuckDBStore
from tests.pg_restore import FIXTURES, restored

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.postgres

NUL = "1e21d3ff-2630-45e5-96eb-db3f0a439815"
MALFORMED = "61b948e0-b3b8-481b-8406-3591fa494e0e"
LEGACY = "6e5571a1-80c0-46f0-8b41-8c22b1e61bfc"
CALLBACK = "fec7248b-73cc-4a68-8929-a2170430ff01"
# 0.61.2 sample
UPGRADED_CHAT = "e516aa45-9e1e-40e9-87df-06a4b0162e82"
CONSUMED_BY_061 = "e464f9a3-96c9-4163-87b8-8706443863c1"
RENAMED_061 = "2b32dcb7-0716-4002-9f31-6e0e550be3c2"
THREE_RESULTS = "7132df0a-19e3-4d7e-b6ec-0a99f8911557"
IN_FLIGHT = "2941a41c-4946-4404-9f2f-c901c26d61a3"


class Sample:
    """A restored sample: its URL, the kit's workspace over it, and the rows read independently."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws = poncho_replay.open()
        self.summary = self.ws.load(url, name="sample")
        with psycopg.connect(url) as conn:
            self.blobs = {
                cid: _row_blob(data, hm, cm)
                for cid, data, hm, cm in conn.execute(
                    "SELECT id, data #>> '{}', harness_messages #>> '{}', continuation_messages #>> '{}' FROM conversations"
                )
            }
            self.typeofs = {
                r[0] for r in conn.execute("SELECT DISTINCT jsonb_typeof(payload) FROM conversation_entries")
            } | {r[0] for r in conn.execute("SELECT DISTINCT jsonb_typeof(data) FROM conversations")}
            self.entries: dict[str, list[dict[str, Any]]] = {}
            for cid, seq, created, payload in conn.execute(
                "SELECT conversation_id, seq, (extract(epoch FROM created_at) * 1000)::bigint, payload #>> '{}' "
                "FROM conversation_entries ORDER BY conversation_id, seq"
            ):
                self.entries.setdefault(cid, []).append({**json.loads(payload), "seq": seq, "createdAt": created})

    def store(self, policy: str) -> DuckDBStore:
        agent = self.ws.con.execute("SELECT any_value(agent_id) FROM conversations").fetchone()[0]
        return DuckDBStore(connection=self.ws.con, source="sample", agent_id=agent, policy=policy)

    def loaded_entries(self, cid: str) -> list[dict[str, Any]]:
        """The raw entries minus the rows the load quarantined (they take no part in rebuilds)."""
        bad = {r[0] for r in self.ws.con.execute("SELECT row_key FROM quarantine").fetchall()}
        return [fffd(e) for e in self.entries.get(cid, []) if e["id"] not in bad]


def _row_blob(data: str, hm: str | None, cm: str | None) -> dict[str, Any]:
    blob = json.loads(data)
    if hm is not None:
        blob["_harnessMessages"] = json.loads(hm)
    if cm is not None:
        blob["_continuationMessages"] = json.loads(cm)
    return blob


def fffd(value: Any) -> Any:
    """A JSON value with every lone surrogate as U+FFFD (how DuckDB holds it, SPEC §9)."""
    if isinstance(value, str):
        return printed(value)
    if isinstance(value, list):
        return [fffd(v) for v in value]
    if isinstance(value, dict):
        return {printed(k): fffd(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def s058() -> Iterator[Sample]:
    with restored(FIXTURES / "harness-0.58-postgres-sample" / "poncho-pg.sql") as url:
        yield Sample(url)


@pytest.fixture(scope="module")
def s061() -> Iterator[Sample]:
    with restored(FIXTURES / "harness-0.61-postgres-sample" / "poncho-pg.sql") as url:
        yield Sample(url)


def test_the_dumps_hold_string_scalars_only(s058: Sample, s061: Sample) -> None:
    assert s058.typeofs == {"string"} and s061.typeofs == {"string"}


def test_058_loads_everything_but_the_one_malformed_entry(s058: Sample) -> None:
    s = s058.summary
    assert s.read == {"conversations": 12, "conversation_entries": 88}
    assert s.loaded == {"conversations": 12, "conversation_entries": 87}
    assert s.quarantined == {"missing_field": 1}
    row = s058.ws.quarantine.iloc[0]
    assert (row["conversation_id"], row["reason"], row["detail"]) == (MALFORMED, "missing_field", "message")
    assert json.loads(json.loads(row["raw"])["payload"])["type"] == "assistant_message"
    assert s.anomalies == {"no_entries": 1}  # the blob-only legacy chat


def test_061_loads_everything(s061: Sample) -> None:
    s = s061.summary
    assert s.read == s.loaded == {"conversations": 7, "conversation_entries": 47}
    assert s.quarantined == {}


@pytest.mark.parametrize("sample", ["s058", "s061"])
def test_every_row_is_the_json_the_harness_wrote(sample: str, request: pytest.FixtureRequest) -> None:
    """The kit's tables equal the rows parsed independently (client-side json.loads of the unwrapped text)."""
    s: Sample = request.getfixturevalue(sample)
    con = s.ws.con
    for cid, data, hm, cm in con.execute(
        "SELECT id, data, harness_messages, continuation_messages FROM conversations"
    ).fetchall():
        assert _row_blob(data, hm, cm) == fffd(s.blobs[cid])
    loaded = {}
    for cid, seq, eid, payload, created in con.execute(
        "SELECT conversation_id, seq, id, payload, epoch_ms(created_at) FROM conversation_entries"
    ).fetchall():
        loaded[eid] = {**json.loads(payload), "seq": seq, "createdAt": created}
    raw = {e["id"]: fffd(e) for log in s.entries.values() for e in log}
    assert {k: v for k, v in raw.items() if k in loaded} == loaded
    assert len(raw) - len(loaded) == sum(s.summary.quarantined.values())


def test_nul_and_lone_surrogate_text_loads(s058: Sample) -> None:
    con = s058.ws.con
    content = con.execute(
        "SELECT data -> 'messages' -> 0 ->> 'content' FROM conversations WHERE id = ?", [NUL]
    ).fetchone()[0]
    assert content == "nul:\x00:end lone:\ufffd:end"
    # the independent read keeps JavaScript's exact string
    assert s058.blobs[NUL]["messages"][0]["content"] == "nul:\x00:end lone:\ud800:end"
    # data, harness_messages and the four entries of that conversation held one
    assert s058.summary.repaired == {"lone_surrogate_to_fffd": 6}


def test_derived_columns_come_from_the_blob(s061: Sample) -> None:
    channel = s061.ws.con.execute("SELECT channel_meta FROM conversations WHERE id = ?", [IN_FLIGHT]).fetchone()[0]
    assert json.loads(channel) == s061.blobs[IN_FLIGHT]["channelMeta"]
    assert s061.store("current").get_status_snapshot(IN_FLIGHT).run_status == "running"


@pytest.mark.parametrize("policy", ["0.57", "0.58.0", "0.59.0", "0.59.2", "0.59.3", "0.61.2", "current", "blob"])
@pytest.mark.parametrize("sample", ["s058", "s061"])
def test_get_serves_what_the_release_served(sample: str, policy: str, request: pytest.FixtureRequest) -> None:
    """DuckDBStore.get over the loaded sample equals SPEC §3/§7's rebuild of the rows read independently."""
    s: Sample = request.getfixturevalue(sample)
    store = s.store(policy)
    for cid, blob in s.blobs.items():
        want = rebuild_conversation(fffd(blob), s.loaded_entries(cid), policy=policy, cutover=True)
        got = store.get(cid).to_dict()
        for key in ("_harnessMessages", "messages", "pendingSubagentResults"):
            assert got.get(key) == want.get(key), (cid, key)


def test_061_pending_results_by_release(s061: Sample) -> None:
    """SPEC §7 by hand: what each release's get() serves as pendingSubagentResults."""
    def pending(policy: str, cid: str) -> list[str] | None:
        served = s061.store(policy).get(cid).to_dict().get("pendingSubagentResults")
        return None if served is None else [r["task"] for r in served]

    # 0.61.2 appended the result, then get() served it from the queue and appendSubagentResult pushed it again
    assert [r["task"] for r in s061.blobs[THREE_RESULTS]["pendingSubagentResults"]] == ["Vendor C", "Vendor C"]
    assert pending("current", THREE_RESULTS) == ["Vendor C"]
    assert pending("0.61.2", CALLBACK) == ["Check release notes"]
    assert pending("current", CONSUMED_BY_061) == []  # consumed by the 0.61.2 callback_started
    # transcript entries only: 0.59.3+ keeps the blob's value, 0.59.0 serves the log's (empty) set
    assert pending("current", NUL) is None and "pendingSubagentResults" not in s061.blobs[NUL]
    assert pending("0.59.0", NUL) == []
    assert pending("0.59.0", RENAMED_061) == pending("blob", RENAMED_061)  # no entries at all: the blob
    # 0.58 rebuilds the transcript from the log too: the blob-only 0.61.2 turn is not in it
    assert len(s061.store("0.58").get(UPGRADED_CHAT).messages) == 6
    assert len(s061.blobs[UPGRADED_CHAT]["messages"]) == 8


def test_061_rename_set_the_title_inside_the_string_scalar(s061: Sample) -> None:
    title = s061.ws.con.execute("SELECT title FROM conversations WHERE id = ?", [RENAMED_061]).fetchone()[0]
    assert title == s061.blobs[RENAMED_061]["title"] == "Australia facts 🦘"


def test_058_malformed_entry_is_a_partial_rebuild_in_python(
    s058: Sample, caplog: pytest.LogCaptureFixture
) -> None:
    """Handed the raw entries (the quarantined one included), the Python rebuild reproduces SPEC §3's quirk."""
    blob = {**fffd(s058.blobs[MALFORMED]), "messages": [], "pendingSubagentResults": ["blob's"]}
    log = fffd(s058.entries[MALFORMED])
    caplog.set_level(logging.WARNING, logger="poncho_replay.entries-read")
    served = rebuild_conversation(blob, log, policy="0.58", cutover=True)
    assert served["_harnessMessages"] == build_llm_context(log)  # assigned before the throw
    assert served["messages"] == [] and served["pendingSubagentResults"] == ["blob's"]  # the blob's
    assert caplog.messages == [
        f"[entries-read] {MALFORMED} rebuild failed, using blob: Cannot read properties of undefined (reading 'content')"
    ]


def test_061_audit_under_current_reports_the_pending_sets(s061: Sample) -> None:
    report = s061.ws.parity("current")
    by_id = report.set_index("conversation_id")
    assert sorted(report.loc[report.verdict == "diverged", "conversation_id"]) == sorted([THREE_RESULTS, CALLBACK])
    for cid in (THREE_RESULTS, CALLBACK):
        row = by_id.loc[cid]
        assert list(row["diverged_fields"]) == ["pending"]
        assert list(row["served_from_log"]) == ["pending"]
        assert list(row["causes"]) == ["result_delivered_twice"]
        assert (row["pending_entries"], row["pending_blob"]) == (1, 2)
    assert list(by_id.loc[UPGRADED_CHAT, "served_from_log"]) == []  # transcript only: the blob's value
    eras = report.groupby("era").size().to_dict()
    assert eras == {"queue": 2, "mixed": 2, "transcript": 2, "blob": 1}
    summary = report.summary()
    assert summary.loc[summary.era == "mixed", "conversations"].sum() == 2


def test_058_audit_under_058(s058: Sample) -> None:
    report = s058.ws.parity("0.58").set_index("conversation_id")
    causes = {cid: list(c) for cid, c in report["causes"].items() if report.loc[cid, "verdict"] == "diverged"}
    assert causes == {
        "5e009056-7389-4685-b7a1-d0cd008d2be4": ["stale_blob"],
        MALFORMED: ["quarantined_entries"],
        "7e2b2c47-bfc1-428a-9d5f-ac92fa84b130": [
            "approximate_finalize_diff", "guessed_first_kept_seq_off", "compaction_moved_history"],
        "bc04015d-97f4-41cf-bee3-becb1a23ecee": ["resume_not_captured"],
        CALLBACK: ["callback_turn_not_captured"],
    }  # fmt: skip
    assert list(report.loc["b53582a3-cf02-4843-97a5-c93dae6c1b27", "causes"]) == ["blob_overwritten_by_rebuild"]
    assert report.loc[LEGACY, "era"] == "blob" and report.loc[LEGACY, "verdict"] == "match"
