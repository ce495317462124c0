"""The ``poncho-replay`` command through its real entry point, in a subprocess.

Expected values come from a tiny harness database written here by hand
(SPEC §2-§4 shapes; the rebuilds worked out from SPEC §3 in the comments),
from the bundled sample's documented counts (16 conversations, 145
entries), or from the SPEC's definitions (policy ``blob`` serves the blob).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import poncho_replay
from poncho_replay.harness_layout import create_sqlite, write_sqlite

T0 = 1772631001558  # 2026-03-04T13:30:01.558Z
_SCRIPT = Path(sys.executable).with_name("poncho-replay")
ENTRY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "poncho_replay.cli"]
"""The console script the package installs (``python -m poncho_replay.cli`` when not installed)."""

SAMPLE_CONVERSATIONS = 16
SAMPLE_ENTRIES = 145
PRINTING_PRESS = "31032086-b3c1-43bb-9789-0d94ae2d096f"  # the sample's compacted conversation


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PONCHO_")}
    return subprocess.run(
        [*ENTRY, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600, check=False
    )


def assert_error(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """Exit status 2, one ``error:`` line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])


# --- a hand-written harness database ------------------------------------------------------


def msg(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": text}


def _entries(kinds: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}-e{i}", "seq": i, "createdAt": T0 + i, **kind}
        for i, kind in enumerate(kinds, 1)
    ]


SUMMARY = {"role": "user", "content": "summary of q1", "metadata": {"isCompactionSummary": True}}
# seq: 1 U(q1) 2 H(q1) 3 H(a1) 4 A(a1) 5 U(q2) 6 C(firstKeptSeq 3) 7 H(q2) 8 H(a2) 9 A(a2)
# SPEC §3: LLM context = summary + harness messages with seq >= 3 = [summary, a1, q2, a2];
# display = U1, A4, U5, A9 = [q1, a1, q2, a2]. The blob below says exactly that: a match.
# At seq 6: context = [summary, a1] (2), display = [q1, a1, q2] (3), latest compaction seq 6.
COMPACTED_LOG = [
    {"type": "user_message", "message": msg("user", "q1"), "turnId": "t1"},
    {"type": "harness_message", "message": msg("user", "q1"), "turnId": "t1"},
    {"type": "harness_message", "message": msg("assistant", "a1"), "turnId": "t1"},
    {"type": "assistant_message", "message": msg("assistant", "a1"), "turnId": "t1", "runId": "r1"},
    {"type": "user_message", "message": msg("user", "q2"), "turnId": "t2"},
    {"type": "compaction", "summaryMessage": SUMMARY, "firstKeptSeq": 3, "tokensBefore": 900},
    {"type": "harness_message", "message": msg("user", "q2"), "turnId": "t2"},
    {"type": "harness_message", "message": msg("assistant", "a2"), "turnId": "t2"},
    {"type": "assistant_message", "message": msg("assistant", "a2"), "turnId": "t2", "runId": "r2"},
]
# A plain turn in the log, but the blob also holds a callback turn the log never got:
# the 0.58 rebuild serves 2 messages where the blob has 4 (llm and display diverge).
CALLBACK_LOG = [
    {"type": "user_message", "message": msg("user", "hi"), "turnId": "t1"},
    {"type": "harness_message", "message": msg("user", "hi"), "turnId": "t1"},
    {"type": "harness_message", "message": msg("assistant", "hello"), "turnId": "t1"},
    {
        "type": "assistant_message",
        "message": msg("assistant", "hello"),
        "turnId": "t1",
        "runId": "r1",
    },
]


CALLBACK_TITLE = "Callback chat [bold]draft[/bold] :smile:"
"""Rich markup and an emoji code in data: the terminal must show them literally."""


def blob(cid: str, title: str, messages: list[dict], harness: list[dict]) -> dict[str, Any]:
    return {
        "conversationId": cid, "title": title, "messages": messages, "_harnessMessages": harness,
        "ownerId": "local-owner", "tenantId": None, "createdAt": T0, "updatedAt": T0 + 100,
    }  # fmt: skip


def write_db(path: Path, *, with_callback: bool) -> Path:
    qa = [msg("user", "q1"), msg("assistant", "a1"), msg("user", "q2"), msg("assistant", "a2")]
    convs = [blob("cmp", "Compacted chat", qa, [SUMMARY, *qa[1:]])]
    logs = {"cmp": _entries(COMPACTED_LOG, "cmp")}
    if with_callback:
        seen = [
            msg("user", "hi"),
            msg("assistant", "hello"),
            msg("user", "[Subagent Result] done"),
            msg("assistant", "ok"),
        ]
        convs.append(blob("cb", CALLBACK_TITLE, seen, seen))
        logs["cb"] = _entries(CALLBACK_LOG, "cb")
    create_sqlite(path)
    write_sqlite(path, convs, logs, agent_id="tiny-agent")
    return path


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-dbs")
    return {
        "match": write_db(root / "match.db", with_callback=False),
        "mixed": write_db(root / "mixed.db", with_callback=True),
    }


# --- load, audit --------------------------------------------------------------------------


def test_load_writes_a_workspace_and_prints_the_counts(
    tmp_path: Path, dbs: dict[str, Path]
) -> None:
    r = run("load", str(dbs["mixed"]), "--db", "work.duckdb", "--name", "tiny", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "work.duckdb").is_file()
    rows = {tuple(line.split("│")[1:4]) for line in r.stdout.splitlines() if line.count("│") == 4}
    counts = {(s.strip(), w.strip()): int(n.strip().replace(",", "")) for s, w, n in rows}
    assert counts[("loaded", "conversations")] == 2
    assert counts[("loaded", "conversation_entries")] == len(COMPACTED_LOG) + len(CALLBACK_LOG)


def test_audit_json_names_the_diverged_conversation(tmp_path: Path, dbs: dict[str, Path]) -> None:
    r = run("audit", str(dbs["mixed"]), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert (report["policy"], report["conversations_total"], report["diverged"]) == ("0.58", 2, 1)
    rows = {c["conversation_id"]: c for c in report["conversations"]}
    assert rows["cmp"]["verdict"] == "match" and rows["cmp"]["harness_verdict"] == "OK"
    assert rows["cb"]["verdict"] == "diverged" and rows["cb"]["harness_verdict"] == "MISMATCH"
    assert sorted(rows["cb"]["diverged_fields"]) == ["display", "llm"]
    # served 2 items, blob 4, the first two equal: two missing on the log side, from position 2
    assert (
        rows["cb"]["llm_entries"],
        rows["cb"]["llm_blob"],
        rows["cb"]["llm_missing_in_entries"],
    ) == (2, 4, 2)
    assert rows["cb"]["display_first_position"] == 2


def test_audit_under_the_blob_policy_serves_the_blob(tmp_path: Path, dbs: dict[str, Path]) -> None:
    r = run("audit", str(dbs["mixed"]), "--json", "--policy", "blob", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["diverged"] == 0


def test_audit_tables_and_fail_on_divergence(tmp_path: Path, dbs: dict[str, Path]) -> None:
    diverged = run("audit", str(dbs["mixed"]), "--fail-on-divergence", cwd=tmp_path)
    assert diverged.returncode == 1, diverged.stderr
    assert "2 conversations: 1 served differently" in diverged.stdout
    cb_row = next(line for line in diverged.stdout.splitlines() if "Callback chat" in line)
    assert "diverged" in cb_row and "MISMATCH" in cb_row
    assert CALLBACK_TITLE in cb_row
    assert "1 conversation(s) diverged" in diverged.stderr
    clean = run("audit", str(dbs["match"]), "--fail-on-divergence", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert "1 conversations: 0 served differently" in clean.stdout


def test_audit_of_a_saved_workspace_with_html_report(tmp_path: Path, dbs: dict[str, Path]) -> None:
    assert run("load", str(dbs["mixed"]), "--db", "w.duckdb", "-q", cwd=tmp_path).returncode == 0
    r = run("audit", "--db", "w.duckdb", "--html", "out/report.html", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["conversations_total"] == 2
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and "Callback chat" in page
    assert f"report written to {tmp_path / 'out' / 'report.html'}" in r.stderr


def test_memory_limit_caps_duckdb_and_gives_the_same_audit(tmp_path: Path, dbs: dict[str, Path]) -> None:
    assert run("load", str(dbs["mixed"]), "--db", "w.duckdb", "-q", cwd=tmp_path).returncode == 0
    plain = run("audit", "--db", "w.duckdb", "--json", "-q", cwd=tmp_path)
    capped = run("--memory-limit", "300MB", "audit", "--db", "w.duckdb", "--json", "-q", cwd=tmp_path)
    assert plain.returncode == 0 and capped.returncode == 0, capped.stderr
    assert json.loads(capped.stdout) == json.loads(plain.stdout)
    bad = run("audit", "--db", "w.duckdb", "--memory-limit", "lots", cwd=tmp_path)
    assert bad.returncode == 2 and "memory" in bad.stderr.lower() and len(bad.stderr.strip().splitlines()) <= 2


def test_audit_without_a_source_reads_the_bundled_sample(tmp_path: Path) -> None:
    r = run("audit", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["conversations_total"] == SAMPLE_CONVERSATIONS
    assert "bundled harness 0.58.0 sample" in r.stderr


def test_quiet_leaves_stderr_empty(tmp_path: Path) -> None:
    r = run("audit", "--json", "--quiet", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""
    group_level = run("-q", "audit", "--json", cwd=tmp_path)
    assert group_level.returncode == 0 and group_level.stderr == ""


# --- show, compaction ---------------------------------------------------------------------


def test_show_prints_the_log_and_the_divergence(tmp_path: Path, dbs: dict[str, Path]) -> None:
    assert run("load", str(dbs["mixed"]), "--db", "w.duckdb", "-q", cwd=tmp_path).returncode == 0
    r = run("show", "cb", "--db", "w.duckdb", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"Conversation {CALLBACK_TITLE!r} (cb): 4 blob messages" in r.stdout
    assert "4 entries" in r.stdout
    # llm and display: 2 items each only in the blob
    assert "Served vs blob: 4 of 8 aligned items differ" in r.stdout
    assert "[Subagent Result] done" in r.stdout


def test_show_at_a_seq_replays_the_log(tmp_path: Path, dbs: dict[str, Path]) -> None:
    assert run("load", str(dbs["match"]), "--db", "w.duckdb", "-q", cwd=tmp_path).returncode == 0
    r = run("show", "cmp", "--at", "6", "--db", "w.duckdb", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (
        "State at seq 6: 6 entries, 3 displayed, 2 in LLM context, 0 pending, latest compaction seq 6"
        in r.stdout
    )
    assert "LLM context (2)" in r.stdout and "Display transcript (3)" in r.stdout
    assert "summary of q1" in r.stdout


def test_show_past_the_last_seq_says_so(tmp_path: Path, dbs: dict[str, Path]) -> None:
    assert run("load", str(dbs["match"]), "--db", "w.duckdb", "-q", cwd=tmp_path).returncode == 0
    r = run("show", "cmp", "--at", "50", "--db", "w.duckdb", cwd=tmp_path)
    assert r.returncode == 0 and "past the last entry (seq 9)" in r.stderr
    assert "State at seq 50: 9 entries, 4 displayed, 4 in LLM context" in r.stdout


def test_compaction_writes_a_png(tmp_path: Path) -> None:
    r = run("compaction", PRINTING_PRESS, "--png", "charts/c.png", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "charts" / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote charts/c.png" in r.stdout


# --- export, simulate, demo ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_export_round_trips_through_load(tmp_path: Path, dbs: dict[str, Path], fmt: str) -> None:
    assert run("load", str(dbs["mixed"]), "--db", "w.duckdb", "-q", cwd=tmp_path).returncode == 0
    r = run("export", "--db", "w.duckdb", "--format", fmt, "exp", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (tmp_path / "exp").iterdir()} == {
        f"conversations.{fmt}",
        f"entries.{fmt}",
    }
    if fmt == "jsonl":
        lines = (tmp_path / "exp" / "entries.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(COMPACTED_LOG) + len(CALLBACK_LOG)
    back = run("audit", "exp", "--json", cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["diverged"] == 1


def test_a_damaged_jsonl_line_is_quarantined_not_fatal(
    tmp_path: Path, dbs: dict[str, Path]
) -> None:
    assert run("load", str(dbs["match"]), "--db", "w.duckdb", "-q", cwd=tmp_path).returncode == 0
    assert run("export", "--db", "w.duckdb", "exp", "-q", cwd=tmp_path).returncode == 0
    with (tmp_path / "exp" / "entries.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"seq": 10, "id": "cut-off\n')
    r = run("load", "exp", "--db", "w2.duckdb", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "warning: rows quarantined" in r.stderr


def test_simulate_writes_a_harness_database_that_audits(tmp_path: Path) -> None:
    r = run("simulate", "--conversations", "3", "--seed", "5", "--out", "sim.sqlite", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("wrote 3 conversations")
    with sqlite3.connect(tmp_path / "sim.sqlite") as con:
        assert con.execute("SELECT count(*) FROM conversations").fetchall() == [(3,)]
    audited = run("audit", "sim.sqlite", "--json", cwd=tmp_path)
    assert json.loads(audited.stdout)["conversations_total"] == 3
    assert_error(
        run("simulate", "--conversations", "3", "--out", "sim.sqlite", cwd=tmp_path),
        "already exists",
        "--force",
    )


def test_demo_audits_the_bundled_data_and_writes_the_report(tmp_path: Path) -> None:
    r = run("demo", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = tmp_path / "report.html"
    assert f"report written to {report}" in r.stdout
    assert report.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    assert "By era, verdict and cause" in r.stdout and "Per conversation" in r.stdout
    # the sample's uncaptured callback turn (its README) and its pre-dual-write conversation
    log_triage = next(
        line for line in r.stdout.splitlines() if "Log triage" in line and "sample" in line
    )
    assert "diverged" in log_triage and "callback_turn_not_captured" in log_triage
    old_notes = next(
        line for line in r.stdout.splitlines() if "Old notes" in line and "sample" in line
    )
    assert "pre_dual_write" in old_notes
    # in a source checkout the scenario fixtures are loaded too
    assert "fixtures/subagents" in r.stdout


# --- errors: one line, exit status 2 ------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert_error(run("audit", "nope.db", cwd=tmp_path), "no such source: nope.db", "Check the path")


def test_a_sqlite_file_that_is_not_a_harness_database(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "other.db") as con:
        con.execute("CREATE TABLE notes (x)")
    assert_error(
        run("load", "other.db", "--db", "w.duckdb", cwd=tmp_path),
        "not a harness database",
        "conversation_entries",
    )
    assert not (tmp_path / "w.duckdb").exists(), (
        "a failed load must not leave an empty workspace behind"
    )
    assert_error(
        run("show", "x", "--db", "other.db", cwd=tmp_path),
        "SQLite file, not a DuckDB workspace",
        "Load it as a SOURCE",
    )


def test_unreachable_postgresql(tmp_path: Path) -> None:
    r = run("audit", "postgresql://postgres:secret@127.0.0.1:1/test", cwd=tmp_path)
    assert_error(
        r,
        "cannot connect to postgresql://postgres:***@127.0.0.1:1/test",
        "Check that the server is running",
    )
    assert "secret" not in r.stderr


def test_corrupt_export_folder(tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "conversations.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "exp" / "entries.parquet").write_bytes(b"PAR1 truncated")
    assert_error(
        run("audit", "exp", cwd=tmp_path),
        "cannot read",
        "write it again with `poncho-replay export`",
    )
    (tmp_path / "empty").mkdir()
    assert_error(
        run("load", "empty", "--db", "w.duckdb", cwd=tmp_path),
        "no conversations/entries",
        "export folder",
    )


def test_unknown_conversation_id(tmp_path: Path) -> None:
    assert_error(
        run("show", "no-such-id", "-q", cwd=tmp_path),
        "no conversation no-such-id",
        "poncho-replay audit",
    )
    assert_error(
        run("compaction", "no-such-id", "--png", "c.png", "-q", cwd=tmp_path),
        "no conversation no-such-id",
    )


def test_missing_workspace(tmp_path: Path) -> None:
    assert_error(
        run("audit", "--db", "missing.duckdb", cwd=tmp_path),
        "no workspace at missing.duckdb",
        "poncho-replay load",
    )
    assert not (tmp_path / "missing.duckdb").exists()


def test_strict_load_stops_at_the_bad_row(tmp_path: Path, dbs: dict[str, Path]) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(dbs["match"].read_bytes())
    with sqlite3.connect(bad) as con:
        con.execute(
            "UPDATE conversation_entries SET payload = '{broken' WHERE conversation_id = 'cmp' AND seq = 2"
        )
    assert_error(
        run("load", "bad.db", "--db", "w.duckdb", "--strict", cwd=tmp_path),
        "conversation cmp",
        "seq 2",
        "without --strict",
    )
    lenient = run("load", "bad.db", "--db", "w.duckdb", cwd=tmp_path)
    assert lenient.returncode == 0 and "rows quarantined" in lenient.stderr


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["audit", "--policy", "0.58.1"], "'0.58.1' never shipped: the pending-results-only read shipped as '0.59.0'"),
        (["audit", "--policy", "0.59"], "'0.59' is ambiguous"),
        (["export", "out", "--format", "xml"], "'xml' is not one of 'jsonl', 'parquet'"),
        (["simulate", "--out", "s.sqlite", "--faults", "lost=2"], "between 0 and 1"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], phrase: str) -> None:
    assert_error(run(*args, cwd=tmp_path), phrase, "--help")


def test_debug_prints_the_traceback_then_the_line(tmp_path: Path) -> None:
    r = run("audit", "nope.db", "--debug", cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" in r.stderr and "SourceError" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: no such source")


def test_a_bare_call_prints_the_help(tmp_path: Path) -> None:
    r = run(cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("Usage: poncho-replay") and "Commands:" in r.stderr
    assert "Example: poncho-replay demo" in r.stderr


# --- long tables and the overwrite rule (DESIGN, "Files the kit writes") -------------------


def _table_rows(stdout: str) -> list[str]:
    """The body rows of the "Per conversation" table (rich draws them between │ bars)."""
    table = stdout[stdout.index("Per conversation") :]
    return [line for line in table.splitlines() if line.startswith("│")]


def test_a_long_audit_table_is_capped_most_diverged_first(tmp_path: Path) -> None:
    from poncho_replay.cli_render import TABLE_ROWS

    made = run("simulate", "--conversations", str(TABLE_ROWS + 20), "--seed", "3", "--out", "fleet.sqlite",
               "--faults", "lost=0.05,writeback", "-q", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert run("load", "fleet.sqlite", "--db", "w.duckdb", "-q", cwd=tmp_path).returncode == 0
    audit = json.loads(run("audit", "--db", "w.duckdb", "--json", cwd=tmp_path).stdout)
    n = audit["conversations_total"]  # the simulated threads are conversations too
    assert len(audit["conversations"]) == n > TABLE_ROWS  # --json: never capped
    diverged = audit["diverged"]
    assert 0 < diverged < n

    capped = run("audit", "--db", "w.duckdb", cwd=tmp_path)
    rows = [r for r in _table_rows(capped.stdout) if "-" in r]  # rows that hold an id
    ids = [c["conversation_id"] for c in audit["conversations"]]
    shown = [i for i in ids if i in capped.stdout]
    assert len(shown) == TABLE_ROWS and len(rows) >= TABLE_ROWS
    assert f"showing {TABLE_ROWS} of {n} conversations, the most diverged first" in capped.stdout
    assert "--all lists every one" in capped.stdout
    verdict = {c["conversation_id"]: c["verdict"] for c in audit["conversations"]}
    first = [line for line in rows if any(i in line for i in ids)]
    first_ids = [next(i for i in ids if i in line) for line in first]
    # the diverged come first (all of them, when they fit)
    head = first_ids[: min(diverged, TABLE_ROWS)]
    assert all(verdict[i] == "diverged" for i in head)

    everything = run("audit", "--db", "w.duckdb", "--all", cwd=tmp_path)
    assert all(i in everything.stdout for i in ids) and "showing" not in everything.stdout


def test_reading_outputs_are_replaced_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "report.html").write_text("old", encoding="utf-8")
    r = run("audit", "--html", "report.html", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "replacing report.html" in r.stderr
    assert (tmp_path / "report.html").read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    (tmp_path / "c.png").write_bytes(b"old")
    r = run("compaction", PRINTING_PRESS, "--png", "c.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "replacing c.png" in r.stderr and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_data_is_refused_unless_force(tmp_path: Path) -> None:
    assert run("export", "out", "-q", cwd=tmp_path).returncode == 0
    before = (tmp_path / "out" / "entries.jsonl").read_bytes()
    assert_error(run("export", "out", "--format", "parquet", cwd=tmp_path), "export folder out already exists", "--force")
    assert (tmp_path / "out" / "entries.jsonl").read_bytes() == before  # untouched
    r = run("export", "out", "--format", "parquet", "--force", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # --force replaces the export: no file of the older one (the other format) stays to be loaded instead
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["conversations.parquet", "entries.parquet"]
    (tmp_path / "empty").mkdir()
    assert run("export", "empty", "-q", cwd=tmp_path).returncode == 0  # an empty folder holds no data


def test_audit_json_is_the_same_object_whatever_the_chunk_size() -> None:
    """``--json`` is written a few thousand rows at a time; the pieces join into one object, in row order."""
    from poncho_replay import cli_render

    ws = poncho_replay.open()
    ws.load(poncho_replay.sample_db())
    report = ws.parity()
    whole = "".join(cli_render.parity_json(report, "0.58", "exact", chunk=len(report) + 1))
    for chunk in (1, 3, len(report)):
        assert "".join(cli_render.parity_json(report, "0.58", "exact", chunk=chunk)) == whole
    parsed = json.loads(whole)
    assert parsed["conversations_total"] == len(parsed["conversations"]) == len(report) == 16
    assert [c["conversation_id"] for c in parsed["conversations"]] == list(report["conversation_id"])
    assert parsed["diverged"] == int((report["verdict"] == "diverged").sum())
    empty = json.loads("".join(cli_render.parity_json(report.iloc[:0], "0.58", "exact")))
    assert (empty["conversations_total"], empty["conversations"]) == (0, [])
