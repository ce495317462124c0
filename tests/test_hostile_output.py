"""Outputs never crash on real data: half emojis, JSON nested 5,000 deep, 20 MB messages, HTML in titles.

Expected values come from the SPEC, not from the output under test:
- §5: the parity check quotes ``JSON.stringify("<role>:<text>").slice(0, 120)``;
  ``"assistant:`` is 11 UTF-16 units, so 108 ``x`` then 🤖 (U+1F916, the
  surrogates D83E DD16) leaves the high surrogate ``\\ud83e`` as unit 119.
- §9: plain text (HTML, notebook views, CLI tables) shows U+FFFD for a lone
  surrogate; JSON output escapes it as ``JSON.stringify`` does (``\\ud83e``);
  Python values keep the exact string.
The 5,000 nested arrays sit in a harness message's ``metadata.deep``, so the
payload nests 3 objects (entry, message, metadata) around them: 5,003 levels.
"""

from __future__ import annotations

import html
import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

import poncho_replay
from poncho_replay._js import json_dumps, printed
from poncho_replay.cli import cli
from poncho_replay.display.views import ConversationView
from poncho_replay.dualwrite import parity_check
from poncho_replay.errors import ReplayError
from poncho_replay.harness_layout import create_sqlite, write_sqlite
from poncho_replay.workspace import Workspace

T0 = 1772631001558
ROBOT = "\U0001f916"  # 🤖: UTF-16 D83E DD16
CUT_TEXT = "x" * 108 + ROBOT + " and the rest"
CUT = '"assistant:' + "x" * 108 + "\ud83e"
"""SPEC §5's quote of the cut projection: 120 units, the last one half of the robot."""
DEPTH = 5000
PAYLOAD_DEPTH = DEPTH + 3
BIG_CHARS = 20_000_000
HOSTILE_TITLE = "<script>alert('title')</script> & <b>bold</b>"
HOSTILE_TEXT = '<img src=x onerror="alert(1)"><script>steal()</script>'


def msg(role: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": text, **extra}


def blob(cid: str, title: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "conversationId": cid, "title": title, "messages": messages, "_harnessMessages": messages,
        "ownerId": "local-owner", "tenantId": None, "createdAt": T0, "updatedAt": T0 + 100,
    }  # fmt: skip


def turn(cid: str, question: dict[str, Any], answer: str) -> list[dict[str, Any]]:
    """One logged turn (SPEC §5): U, H(question), H(answer), A(answer) at seqs 1-4."""
    kinds = [
        {"type": "user_message", "message": msg("user", question["content"]), "turnId": "t1"},
        {"type": "harness_message", "message": question, "turnId": "t1"},
        {"type": "harness_message", "message": msg("assistant", answer), "turnId": "t1"},
        {"type": "assistant_message", "message": msg("assistant", answer), "turnId": "t1", "runId": "r1"},
    ]  # fmt: skip
    return [
        {"id": f"{cid}-e{i}", "seq": i, "createdAt": T0 + i, **k} for i, k in enumerate(kinds, 1)
    ]


def with_title(report: pd.DataFrame, cid: str, title: str) -> pd.DataFrame:
    """The audit with one title replaced by a Python-side string (object dtype: Arrow strings refuse surrogates)."""
    out = report.copy()
    titles = [title if c == cid else t for c, t in zip(out["conversation_id"], out["title"])]
    out["title"] = pd.Series(titles, index=out.index, dtype=object)
    return out


@pytest.fixture(scope="module")
def text_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """plain (matches), emoji (log and blob differ past the 120-unit cut), hostile (HTML in title and text)."""
    path = tmp_path_factory.mktemp("hostile") / "text.db"
    q = msg("user", "q")
    convs = [
        blob("plain", "Plain chat", [q, msg("assistant", "a")]),
        blob("emoji", "Emoji chat", [q, msg("assistant", CUT_TEXT + " (blob)")]),
        # the blob lacks the answer: diverged, so in the report's worst list
        blob("hostile", HOSTILE_TITLE, [q]),
    ]
    logs = {
        "plain": turn("plain", q, "a"),
        "emoji": turn("emoji", q, CUT_TEXT + " (log)"),
        "hostile": turn("hostile", q, HOSTILE_TEXT),
    }
    create_sqlite(path)
    write_sqlite(path, convs, logs, agent_id="hostile-agent")
    return path


@pytest.fixture(scope="module")
def odd_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """plain (matches), deep (5,000 nested arrays in a logged message), big (a 20 MB answer); both odd ones diverge."""
    path = tmp_path_factory.mktemp("odd") / "odd.db"
    q = msg("user", "q")
    convs = [
        blob("plain", "Plain chat", [q, msg("assistant", "a")]),
        blob("deep", "Deep chat", [q, msg("assistant", "blob answer")]),
        blob("big", "Big chat", [q, msg("assistant", "short blob answer")]),
    ]
    logs = {
        "plain": turn("plain", q, "a"),
        "deep": turn("deep", msg("user", "q", metadata={"deep": "DEEP"}), "log answer"),
        "big": turn("big", q, "B" * BIG_CHARS),
    }
    create_sqlite(path)
    write_sqlite(path, convs, logs, agent_id="odd-agent")
    # json.dumps cannot write 5,000 levels either: splice the text in, as another writer would have.
    with sqlite3.connect(path) as con:
        con.execute(
            "UPDATE conversation_entries SET payload = replace(payload, '\"DEEP\"', ?) WHERE id = 'deep-e2'",
            ["[" * DEPTH + "]" * DEPTH],
        )
    return path


@pytest.fixture(scope="module")
def text_ws(text_db: Path) -> Workspace:
    ws = poncho_replay.open()
    ws.load(text_db)
    return ws


@pytest.fixture(scope="module")
def odd_ws(odd_db: Path) -> Workspace:
    ws = poncho_replay.open()
    ws.load(odd_db)
    return ws


# --- the rule itself (poncho_replay._js) ----------------------------------------------------


def test_json_dumps_escapes_lone_surrogates_as_json_stringify_does() -> None:
    # JSON.stringify({t: "a\ud83e", k: "é"}) === '{"t":"a\\ud83e","k":"é"}'
    text = json_dumps({"t": "a\ud83e", "k": "é"}, separators=(",", ":"))
    assert text == '{"t":"a\\ud83e","k":"é"}'
    text.encode("utf-8")  # nothing UTF-8 cannot hold
    assert json.loads(text)["t"] == "a\ud83e"


def test_a_pair_held_as_two_code_points_is_one_character() -> None:
    split = "\ud83e\udd16"  # the robot's two halves, as Python can hold them
    assert printed(f"a{split}\ud83e") == f"a{ROBOT}\ufffd"
    assert json.loads(json_dumps(f"a{split}")) == f"a{ROBOT}"


# --- lone surrogates through every output ----------------------------------------------------


def test_the_parity_cut_leaves_half_an_emoji_in_python(text_ws: Workspace) -> None:
    """The data really exercises SPEC §5's cut, and Python keeps JavaScript's exact string."""
    view = text_ws.conversation("emoji")
    check = parity_check(view.entries, view.blob["_harnessMessages"], view.blob["messages"])
    assert f"display tail[-1] differs: entries={CUT} blob={CUT}" in check.mismatches


def test_conversation_view_prints_the_cut_emoji_as_replacement(text_ws: Workspace) -> None:
    page = text_ws.conversation("emoji")._repr_html_()
    page.encode("utf-8")
    assert html.escape(f"entries={CUT[:-1]}\ufffd") in page


def test_python_side_lone_surrogates_in_title_and_text_render(text_ws: Workspace) -> None:
    source = text_ws.conversation("plain")
    title, text = "Half \ud83e title", "text \udd16 end"
    entries = [dict(e) for e in source.entries]
    entries[3] = {**entries[3], "message": msg("assistant", text)}
    view = ConversationView({**source.blob, "title": title}, entries)
    page = view._repr_html_()
    page.encode("utf-8")
    assert "<h3>Half \ufffd title</h3>" in page and "text \ufffd end" in page
    assert repr(view).startswith("Conversation 'Half \ufffd title' (plain)")
    step = view.at(4)._repr_html_()
    assert "text \ufffd end" in step
    assert view.blob["title"] == title  # in memory: the exact JavaScript string


def test_report_writes_lone_surrogates_as_replacement(text_ws: Workspace, tmp_path: Path) -> None:
    parity = with_title(text_ws.parity(), "emoji", "Emoji \ud83e chat")
    path = text_ws.report(tmp_path / "report.html", parity=parity)
    page = path.read_text(encoding="utf-8")  # strict: a raw surrogate could not have been written
    assert "Emoji \ufffd chat" in page
    assert html.escape(f"entries={CUT[:-1]}\ufffd") in page


@pytest.fixture
def surrogate_title(monkeypatch: pytest.MonkeyPatch) -> str:
    """Workspace.parity returns the emoji conversation under a title that holds a lone surrogate."""
    title = "Emoji \ud83e chat"
    real = Workspace.parity

    def parity(self: Workspace, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return with_title(real(self, *args, **kwargs), "emoji", title)

    monkeypatch.setattr(Workspace, "parity", parity)
    return title


def test_cli_audit_json_escapes_lone_surrogates(text_db: Path, surrogate_title: str) -> None:
    result = CliRunner().invoke(cli, ["audit", str(text_db), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    assert '"Emoji \\ud83e chat"' in result.stdout
    rows = {r["conversation_id"]: r for r in json.loads(result.stdout)["conversations"]}
    assert rows["emoji"]["title"] == surrogate_title


def test_cli_audit_tables_and_html_print_replacement(
    text_db: Path, surrogate_title: str, tmp_path: Path
) -> None:
    out = tmp_path / "audit.html"
    result = CliRunner().invoke(cli, ["audit", str(text_db), "--html", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Emoji \ufffd chat" in result.stdout
    page = out.read_text(encoding="utf-8")
    assert "Emoji \ufffd chat" in page
    assert html.escape(f"entries={CUT[:-1]}\ufffd") in page


def test_cli_show_tables_print_replacement(
    text_db: Path, text_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = text_ws.conversation("plain")
    entries = [dict(e) for e in source.entries]
    entries[2] = {**entries[2], "message": msg("assistant", "half \ud83e here")}
    view = ConversationView(source.blob, entries)
    monkeypatch.setattr(Workspace, "conversation", lambda self, *a, **k: view)
    result = CliRunner().invoke(cli, ["show", "plain", "--at", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "half \ufffd here" in result.stdout  # the LLM-context table's row for seq 3


# --- odd but valid data: one conversation's card, the rest renders ----------------------------


def test_audit_is_unaffected_by_deep_and_big_values(odd_ws: Workspace) -> None:
    parity = odd_ws.parity()
    verdicts = dict(zip(parity["conversation_id"], parity["verdict"]))
    assert verdicts == {"plain": "match", "deep": "diverged", "big": "diverged"}


def test_deep_conversation_is_a_card_not_an_error(odd_ws: Workspace) -> None:
    view = odd_ws.conversation("deep")
    assert view.problem is not None and f"nested {PAYLOAD_DEPTH:,} levels deep" in view.problem
    page = view._repr_html_()
    assert "Deep chat" in page and "could not be shown" in page
    assert "could not be shown" in repr(view)
    with pytest.raises(ReplayError, match=f"{PAYLOAD_DEPTH:,} levels"):
        view.at(1)


def test_report_shows_the_card_and_renders_the_rest(odd_ws: Workspace, tmp_path: Path) -> None:
    page = odd_ws.report(tmp_path / "odd.html", worst=10).read_text(encoding="utf-8")
    deep = page[page.index('id="conv-deep"') :]
    deep = deep[: deep.index("</section>")]
    assert f"could not be shown: its JSON is nested {PAYLOAD_DEPTH:,} levels deep" in deep
    big = page[page.index('id="conv-big"') :]
    big = big[: big.index("</section>")]
    assert "Log as a chat" in big and "BBBB" in big  # rendered normally, its text cut
    assert len(page) < BIG_CHARS // 10
    assert "Plain chat" in page  # the matching conversation is in the parity table


@pytest.fixture(scope="module")
def odd_workspace_file(odd_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("odd-cli") / "work.duckdb"
    result = CliRunner().invoke(cli, ["load", str(odd_db), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    return db


def test_cli_show_deep_is_one_clear_line(odd_workspace_file: Path) -> None:
    result = CliRunner().invoke(cli, ["show", "deep", "--db", str(odd_workspace_file)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: conversation deep could not be shown")
    assert f"nested {PAYLOAD_DEPTH:,} levels deep" in lines[0]
    assert "Traceback" not in result.output


def test_cli_show_big_message(odd_workspace_file: Path) -> None:
    result = CliRunner().invoke(cli, ["show", "big", "--at", "4", "--db", str(odd_workspace_file)])
    assert result.exit_code == 0, result.output
    assert "BBBB" in result.stdout and len(result.stdout) < 100_000


# --- hostile text stays text ---------------------------------------------------------------------


def assert_escaped(page: str) -> None:
    """The hostile title and message appear as text: escaped, never as live markup."""
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert html.escape(HOSTILE_TEXT) in page


def test_report_escapes_hostile_text(text_ws: Workspace, tmp_path: Path) -> None:
    page = text_ws.report(tmp_path / "hostile.html", worst=10).read_text(encoding="utf-8")
    assert_escaped(page)
    assert html.escape(HOSTILE_TITLE) in page


def test_notebook_views_escape_hostile_text(text_ws: Workspace) -> None:
    view = text_ws.conversation("hostile")
    page = view._repr_html_()
    assert_escaped(page)
    assert f"<h3>{html.escape(HOSTILE_TITLE)}</h3>" in page
    assert_escaped(view.at(4)._repr_html_())


def test_replay_escapes_hostile_text(text_ws: Workspace) -> None:
    view = text_ws.conversation("hostile")
    assert_escaped(view.replay(widget=False)._repr_html_())
    widget = view.replay(widget=True)
    assert_escaped(widget.page.value)


def test_a_blob_not_in_the_harness_shape_shows_a_card(tmp_path: Path) -> None:
    """`messages` that is not a list: the loader keeps the row (valid JSON); the view explains instead of raising."""
    from poncho_replay.simulate import fleet

    db = tmp_path / "odd.db"
    fleet(3, seed=1).to_sqlite(db)
    con = sqlite3.connect(db)
    cid = con.execute("SELECT id FROM conversations WHERE rowid = 1").fetchone()[0]
    con.execute("UPDATE conversations SET data = json_set(data, '$.messages', 5) WHERE rowid = 1")
    con.commit()
    con.close()
    ws = poncho_replay.open()
    ws.load(db)
    view = ws.conversation(cid)
    assert view.problem is not None and "not in the harness's shape" in view.problem
    assert "could not be shown" in view._repr_html_()
    assert len(ws.parity()) == 3  # the audit still covers it
