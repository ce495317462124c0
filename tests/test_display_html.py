"""HTML views on the bundled harness 0.58.0 sample (what each conversation holds is in its README).

Expected texts are written from the sample's README and SPEC §3, not from
the renderer's output.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from poncho_replay.audit import ParityReport
from poncho_replay.display import (
    ConversationView,
    HtmlRepr,
    ParityRowView,
    Rendered,
    conversation_html,
    entries_html,
    parity_row_html,
    parity_table_html,
    state_html,
    summary_html,
    views,
)
from poncho_replay.errors import SeqError
from poncho_replay.rebuild import state_at
from tests.display_sample import (
    BACKUP,
    INVOICE,
    LOG_TRIAGE,
    MORNING,
    OLD_NOTES,
    PRINTING_PRESS,
    THESIS,
    VENDORS,
    sample,
)

EVIL = "<script>alert('x')</script>"


def bubbles(page: str) -> list[str]:
    """The chat bubbles of a page, each as its raw HTML."""
    return re.findall(r'<div class="pr-msg [^"]*">.*?</div>(?:.*?)</div>', page, flags=re.DOTALL)


def bubble_with(page: str, text: str) -> str:
    found = [b for b in bubbles(page) if text in b]
    assert len(found) == 1, f"expected one bubble holding {text!r}, found {len(found)}"
    return found[0]


def test_hidden_user_message_is_marked_and_display_agrees() -> None:
    blob, entries = sample(MORNING)
    page = conversation_html(blob, entries)
    hidden = bubble_with(page, "[reminder:morning_checkin] Greet the user")
    assert "pr-hidden" in hidden and "hidden: not displayed" in hidden
    visible = bubble_with(page, "Move the dentist to Thursday.")
    assert "pr-role-user" in visible and "pr-hidden" not in visible
    # The reminder is hidden, so the display rebuild gives the blob's 3 messages.
    assert "harness parity OK" in page
    assert "display transcript (messages): blob and rebuild agree (3 messages)" in page


def test_amendment_is_shown_inside_its_assistant_bubble() -> None:
    blob, entries = sample(BACKUP)
    page = conversation_html(blob, entries)
    bubble = bubble_with(page, "Taking a production snapshot needs your approval.")
    assert "pr-role-assistant" in bubble and "seq 6" in bubble
    assert (
        '<span class="pr-amend" title="assistant_amendment seq 7"> Snapshot snap-0419 completed (38 GB).</span>'
        in bubble
    )
    assert "amended @ seq 7" in bubble
    # The amended bubble has the blob's text but not its JSON (the resume rewrote the bubble's
    # metadata): parity() counts display as diverged (1 changed), and so does the view. The
    # resumed turn wrote no harness messages: the LLM context is one message short.
    assert "display transcript (messages): blob and rebuild agree" not in page
    assert "blob 2 vs rebuild 2 messages, 1 changed" in page
    assert "LLM context (_harnessMessages): " in page and "blob 5 vs rebuild 4 messages" in page


def test_compaction_summary_is_marked_and_blob_vs_rebuild_side_by_side() -> None:
    blob, entries = sample(PRINTING_PRESS)
    page = conversation_html(blob, entries)
    summary = bubble_with(page, "seq 14 · compaction")
    assert "pr-summary" in summary and "compaction summary" in summary
    assert "keeps harness seq ≥ 10" in summary and "tokens 3,060 → unknown" in summary
    assert "harness parity MISMATCH" in page
    # Display: the rebuild has all 8 turns' messages, the blob only the compacted 5.
    assert "blob 5 vs rebuild 8 messages" in page
    rows = re.findall(r'<tr class="pr-row-diff">(.*?)</tr>', page, flags=re.DOTALL)
    # Aligned as parity() counts (common prefix and suffix, the middle by position, exact JSON):
    # the last two messages match; the blob's first three face the rebuild's first three
    # (the kept "By 1500" answer differs in its metadata); the rebuild's next three have no
    # blob counterpart. Parity says the same: 2 matching, 3 changed, 3 extra in entries.
    assert "blob 5 vs rebuild 8 messages, 3 changed" in page
    assert "[CONTEXT COMPACTION]" in rows[0] and "When did Gutenberg build his press?" in rows[0]
    assert "How fast did printing spread?" in rows[1] and "Around 1440 in Mainz." in rows[1]
    assert [("(absent)" in r) for r in rows[:6]] == [False] * 3 + [True] * 3
    assert "The Gutenberg Bible" in rows[3]
    same = re.findall(
        r'<tr class="pr-row-eq">(.*?)</tr>',
        page.split("LLM context (_harnessMessages)")[0],
        flags=re.DOTALL,
    )
    assert len(same) == 2 and "Give me a one-paragraph recap." in same[0]
    # LLM context from the log: the seq 14 summary, then harness seqs 10, 11, 15-19.
    context = page.split("LLM context rebuilt from the log")[1].split("</table>")[0]
    assert re.findall(r"<tr class=\"\"><td>\d+</td><td>(\d+)</td>", context) == [
        "14",
        "10",
        "11",
        "15",
        "16",
        "17",
        "18",
        "19",
    ]


def test_layered_compactions_each_marked_with_their_tokens() -> None:
    blob, entries = sample(THESIS)
    page = conversation_html(blob, entries)
    first, second = (
        bubble_with(page, "seq 9 · compaction"),
        bubble_with(page, "seq 15 · compaction"),
    )
    assert "keeps harness seq ≥ 6" in first and "tokens 42,000 → 7,000" in first
    assert "keeps harness seq ≥ 10" in second and "tokens 51,000 → 6,500" in second


def test_file_parts_are_named_not_inlined() -> None:
    blob, entries = sample(INVOICE)
    page = conversation_html(blob, entries)
    assert "Does the total on this invoice match the photo of the receipt?" in page
    assert page.count("📎") >= 2 and "(application/pdf)" in page and "(image/png)" in page
    assert "base64," not in page


def test_subagent_results_consumed_and_pending() -> None:
    blob, entries = sample(VENDORS)
    page = conversation_html(blob, entries)
    assert "consumed" in bubble_with(page, "seq 7 · subagent_result")
    assert "pending" in bubble_with(page, "seq 11 · subagent_result")
    assert "callback turn" in bubble_with(page, "seq 8 · callback_started")


def test_uncaptured_callback_turn_shows_the_divergence() -> None:
    blob, entries = sample(LOG_TRIAGE)
    page = conversation_html(blob, entries)
    assert "harness parity MISMATCH" in page
    injected = [b for b in bubbles(page) if "[Subagent Result]" in b]
    assert injected and all("pr-hidden" in b for b in injected)
    assert 'class="pr-row-diff"' in page


def test_pre_dual_write_conversation_shows_the_blob() -> None:
    blob, entries = sample(OLD_NOTES)
    page = conversation_html(blob, entries)
    assert "no entries: pre-dual-write" in page
    first_user = next(m for m in blob["messages"] if m["role"] == "user")
    assert first_user["content"][:40] in page


def test_everything_from_data_is_escaped() -> None:
    msg = {"role": "user", "content": EVIL}
    blob = {
        "conversationId": EVIL,
        "title": EVIL,
        "ownerId": EVIL,
        "messages": [msg],
        "_harnessMessages": [msg],
    }
    entries = [
        {"id": "a", "seq": 1, "createdAt": 0, "type": "user_message", "message": msg, "turnId": EVIL},
        {"id": "b", "seq": 2, "createdAt": 0, "type": "assistant_message", "turnId": EVIL, "runId": "r",
         "message": {"role": "assistant", "content": EVIL}},
        {"id": "c", "seq": 3, "createdAt": 0, "type": "assistant_amendment", "targetEntryId": "b", "appendText": EVIL},
        {"id": "d", "seq": 4, "createdAt": 0, "type": "compaction", "summaryMessage": msg, "firstKeptSeq": 1},
    ]  # fmt: skip
    pages = [
        conversation_html(blob, entries),
        entries_html(entries),
        state_html(state_at(entries, 4)),
        parity_row_html(
            {
                "conversation_id": EVIL,
                "verdict": EVIL,
                "causes": [EVIL],
                "harness_log_line": EVIL,
                EVIL: EVIL,
            }
        ),
        summary_html({EVIL: EVIL}, title=EVIL),
    ]
    for page in pages:
        assert "<script>" not in page
        assert "&lt;script&gt;" in page


def test_entries_table_rows() -> None:
    _, entries = sample(BACKUP)
    page = entries_html(entries, highlight_seq=7)
    rows = re.findall(r"<tr(?: class=\"pr-row-step\")?><td>(\d+)</td>", page)
    assert rows == [str(s) for s in range(1, 8)]
    amendment = re.search(
        r'<tr class="pr-row-step"><td>7</td>(.*?)</tr>', page, flags=re.DOTALL
    ).group(1)
    assert "assistant_amendment" in amendment and "→ seq 6" in amendment
    assert "Snapshot snap-0419 completed (38 GB)." in amendment

    _, morning = sample(MORNING)
    first = re.search(r"<tr><td>1</td>(.*?)</tr>", entries_html(morning), flags=re.DOTALL).group(1)
    assert "user_message" in first and ">hidden<" in first

    _, press = sample(PRINTING_PRESS)
    limited = entries_html(press, max_rows=5)
    assert "firstKeptSeq 10" in entries_html(press) and "15 more entries not shown" in limited


def test_state_at_a_compaction_step() -> None:
    _, entries = sample(PRINTING_PRESS)
    page = state_html(state_at(entries, 14))
    # At seq 14: the summary plus harness messages with 10 <= seq <= 14 (10 and 11).
    assert "State at seq 14" in page and "3 LLM-context messages" in page
    assert "7 displayed messages" in page  # users at 1, 5, 9, 13; assistants at 4, 8, 12
    step = [b for b in bubbles(page) if "pr-step" in b]
    assert len(step) == 1 and "seq 14 · compaction" in step[0]
    assert "seq 20" not in page


def test_conversation_view_replays_seqs() -> None:
    blob, entries = sample(VENDORS)
    view = ConversationView(blob, entries)
    assert view.seqs == list(range(1, 12))
    before = view.at(7).state
    assert before.pending_subagent_results[0]["subagentId"] == "sub-vendors-a1"
    assert view.at(8).state.pending_subagent_results == []  # consumed by the callback at seq 8
    assert [r["subagentId"] for r in view.at(11).state.pending_subagent_results] == [
        "sub-vendors-b2"
    ]
    assert "State at seq 8" in view.at(8)._repr_html_()
    assert repr(view).startswith("Conversation 'Vendor comparison'")


@pytest.mark.parametrize(
    ("verdict", "cls"),
    [("mismatch", "pr-bad"), ("diverged", "pr-bad"), ("ok", "pr-ok"), ("match", "pr-ok"), ("partial", "pr-warn"),
     ("blob_only", "pr-muted"), ("no_entries", "pr-muted")],
)  # fmt: skip
def test_parity_row_verdict_colour(verdict: str, cls: str) -> None:
    page = parity_row_html({"conversation_id": "c1", "verdict": verdict, "causes": []})
    assert f'<span class="pr-badge {cls}">{verdict}</span>' in page


def test_parity_rows_cause_badges_keep_their_colour() -> None:
    rows = [
        {"conversation_id": "c1", "verdict": "mismatch", "causes": ["callback_turn", "guessed_first_kept_seq"],
         "harness_log_line": "[entries-parity] c1 MISMATCH (1): x", "first_seq": 9},
        {"conversation_id": "c2", "verdict": "mismatch", "causes": ["callback_turn"], "harness_log_line": None},
    ]  # fmt: skip
    page = parity_table_html(rows)
    styles = re.findall(r'<span class="pr-badge" style="([^"]+)">callback_turn</span>', page)
    assert len(styles) == 2 and styles[0] == styles[1]
    assert "guessed_first_kept_seq</span>" in page and "first_seq=9" in page
    assert "[entries-parity] c1 MISMATCH (1): x" in page
    assert repr(ParityRowView(rows[0])) == "mismatch c1 [callback_turn, guessed_first_kept_seq]"


class Broken(HtmlRepr):
    def __init__(self, text_fails: bool) -> None:
        self.text_fails = text_fails

    def _html(self) -> str:
        raise ValueError("no html")

    def _text(self) -> str:
        if self.text_fails:
            raise KeyError("no text")
        return EVIL


def test_repr_html_falls_back_to_escaped_text() -> None:
    page = Broken(text_fails=False)._repr_html_()
    assert "HTML view failed (ValueError: no html)" in page
    assert "&lt;script&gt;" in page and "<script>" not in page
    both = Broken(text_fails=True)
    assert "text view failed: KeyError" in both._repr_html_() and "text view failed" in repr(both)
    assert Rendered(lambda: "<b>ok</b>", lambda: "ok")._repr_html_() == "<b>ok</b>"


def test_conversation_view_falls_back_when_rendering_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> str:
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(views.views_html, "conversation_html", boom)
    blob, entries = sample(BACKUP)
    page = ConversationView(blob, entries)._repr_html_()
    assert "renderer broke" in page and "Database backup approval" in page


def test_long_logs_render_only_the_last_items() -> None:
    entries = [
        {"id": f"u{i}", "seq": i, "createdAt": 0, "type": "user_message", "turnId": "t",
         "message": {"role": "user", "content": f"question number {i}."}}
        for i in range(1, 301)
    ]  # fmt: skip
    blob = {"conversationId": "c", "title": "long", "messages": [e["message"] for e in entries]}
    page = conversation_html(blob, entries)
    assert "… 100 earlier chat items not shown" in page
    assert "question number 101." in page and "question number 100." not in page


# --- the parity report in a notebook (issue 15, item 3) -----------------------------------


@pytest.fixture(scope="module")
def sample_report() -> ParityReport:
    import poncho_replay
    from poncho_replay.bundled import sample_db

    ws = poncho_replay.open()
    ws.load(sample_db(), name="sample")
    return ws.parity()


def parity_lines(page: str) -> list[str]:
    """The body rows of a parity table (a row holds one ``<details>`` with its conversation)."""
    return re.findall(
        r"<tr><td>(?:<span class=\"pr-badge[^>]*>\w*</span>)?</td><td><details>.*?</details>.*?</tr>", page, re.DOTALL
    )


def test_parity_report_is_one_compact_line_per_conversation(sample_report: ParityReport) -> None:
    page = sample_report._repr_html_()
    lines = parity_lines(page)
    assert len(lines) == 16 and "16 conversations" in page
    head = re.search(r"<tr><th>.*?</tr>", page).group(0)
    assert [h for h in re.findall(r"<th>(.*?)</th>", head)] == [
        "verdict", "conversation (click for details)", "source", "causes", "first divergence", "harness",
    ]  # fmt: skip
    press = next(line for line in lines if "Printing press history" in line)
    assert press.startswith('<tr><td><span class="pr-badge pr-bad">diverged</span></td><td><details>')
    assert "<summary><b>Printing press history</b> <code" in press
    assert "</details></td><td>sample</td>" in press and "approximate_finalize_diff" in press
    assert "llm #3 (seq 15)<br>display #0 (seq 1)" in press and ">MISMATCH<" in press
    # The rest is one click away: inside <details>, after its <summary>.
    details = press[press.index("</summary>") : press.index("</details>")]
    assert "[entries-parity] 31032086-b3c1-43bb-9789-0d94ae2d096f MISMATCH" in details
    assert "reproduce=SELECT * FROM parity_at(" in details and ">extra in entries<" in details
    outside = press.replace(details, "")
    assert "reproduce=" not in outside and "[entries-parity]" not in outside


def test_a_long_parity_report_is_capped_with_a_count(sample_report: ParityReport) -> None:
    from poncho_replay.audit import ParityReport as Report
    from poncho_replay.display.html import PARITY_SHOWN

    many = Report(pd.concat([sample_report] * 20, ignore_index=True))  # 320 rows
    page = many._repr_html_()
    assert len(parity_lines(page)) == PARITY_SHOWN
    assert f"showing {PARITY_SHOWN} of 320 conversations" in page
    assert len(parity_lines(parity_table_html(many.to_dict("records"), limit=7))) == 7


def test_a_subset_of_columns_renders_as_a_plain_dataframe(sample_report: ParityReport) -> None:
    subset = sample_report[["conversation_id", "causes"]]
    page = subset._repr_html_()
    assert 'class="dataframe' in page and "pr-badge" not in page and "<details>" not in page
    assert ">?<" not in page
    assert sample_report[["conversation_id", "verdict", "causes"]]._repr_html_().count("<details>") == 16


def test_view_styles_outrank_jupyterlab_and_break_no_words() -> None:
    """JupyterLab right-aligns with ``:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td`` (2 classes, 1 element).

    The real check is in a browser (tests/test_jupyterlab_browser.py); this
    one keeps the selector's weight from being lowered by accident.
    """
    from poncho_replay.display.style import CSS

    rule = re.search(r"\.pr-root table\.pr-table th,\.pr-root table\.pr-table td\{([^}]*)\}", CSS)
    assert rule is not None and "text-align:left" in rule.group(1)
    assert "break-all" not in CSS


def test_at_refuses_a_negative_seq_as_the_cli_does() -> None:
    blob, entries = sample(VENDORS)
    view = ConversationView(blob, entries)
    with pytest.raises(SeqError, match="seq -1 is negative"):
        view.at(-1)
    with pytest.raises(ValueError):  # SeqError is a ValueError too
        view.at(-5)
    assert view.at(0).state.entries == []  # 0: the state before the first entry
