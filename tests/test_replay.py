"""Replay on the bundled harness 0.58.0 sample: step changes, the widget at several seqs, the static form.

Expected changes are written from the sample's logs (see ``tests/display_sample.py``
and the sample README) and SPEC §3, not from the replay's output.
"""

from __future__ import annotations

import re

import pytest

from poncho_replay.display import ConversationView
from poncho_replay.display.replay import (
    StaticReplay,
    has_widget_frontend,
    replay,
    step_change,
    step_html,
)
from tests.display_sample import BACKUP, OLD_NOTES, PRINTING_PRESS, VENDORS, sample

pytest.importorskip("ipywidgets")
from poncho_replay.display.replay_widget import ReplayWidget


def outlined(page: str) -> list[str]:
    """The heads of the chat bubbles outlined as the step's own entry."""
    return re.findall(
        r'<div class="pr-msg [^"]*pr-step[^"]*"><div class="pr-head">(.*?)</div>', page
    )


def test_compaction_step_swaps_the_context_for_the_summary() -> None:
    _, entries = sample(PRINTING_PRESS)
    # firstKeptSeq 10: harness messages 2, 3, 6, 7 leave, 10 and 11 stay, the summary enters.
    change = step_change(entries, 14)
    assert change.entry["type"] == "compaction"
    assert change.context_added == ["summary @ seq 14"]
    assert change.context_dropped == ["seq 2", "seq 3", "seq 6", "seq 7"]
    assert change.transcript_added == [] and change.transcript_amended == []
    assert change.summary() == "+1 LLM-context, −4 LLM-context"
    assert step_change(entries, 16).context_added == ["seq 16"]
    # seq 13: the fourth user message, after users 1, 5, 9 and assistants 4, 8, 12: transcript #7.
    assert step_change(entries, 13).transcript_added == [7]


def test_subagent_result_pending_then_consumed() -> None:
    _, entries = sample(VENDORS)
    assert step_change(entries, 7).pending_added == [7]
    assert step_change(entries, 8).pending_consumed == [7]
    hidden = step_change(entries, 9)  # the injected [Subagent Result] is a hidden user message
    assert hidden.entry["hidden"] is True and hidden.summary() == "no visible change"
    assert step_change(entries, 10).transcript_added == [3]  # user 1, assistant 6, then this one
    assert step_change(entries, 11).pending_added == [11]


def test_amendment_step_amends_its_bubble() -> None:
    _, entries = sample(BACKUP)
    change = step_change(entries, 7)
    assert change.entry["type"] == "assistant_amendment"
    assert change.transcript_amended == [2] and change.transcript_added == []
    assert change.context_added == [] and change.context_dropped == []
    page = step_html(entries, 7)
    assert "transcript #2 amended" in page and "Snapshot snap-0419 completed (38 GB)." in page


def test_first_step_starts_from_nothing() -> None:
    _, entries = sample(VENDORS)
    change = step_change(entries, 1)
    assert change.transcript_added == [1] and change.context_added == []


def test_widget_state_at_several_seqs() -> None:
    blob, entries = sample(VENDORS)
    widget = ConversationView(blob, entries).replay(widget=True)
    assert isinstance(widget, ReplayWidget)
    assert list(widget.slider.options) == list(range(1, 12))
    assert widget.seq == 11 and widget.next_button.disabled and not widget.prev_button.disabled

    widget.slider.value = 7
    page = widget.page.value
    assert "State at seq 7" in page and "now pending: subagent result(s) from seq 7" in page
    assert "Vendor Q is cheapest per label" in page
    assert [h.split(" <")[0].strip() for h in outlined(page)] == ["seq 7 · subagent_result"]

    widget.step(1)
    page = widget.page.value
    assert widget.seq == 8 and "State at seq 8" in page
    assert (
        "consumed: subagent result(s) from seq 7" in page and "0 pending subagent results" in page
    )

    widget.step(2)
    page = widget.page.value
    assert widget.seq == 10 and "transcript #3 added: Vendor Q is cheapest per label" in page
    assert [h.split(" <")[0].strip() for h in outlined(page)] == ["seq 10 · assistant_message"]

    widget.step(-100)  # clamped to the first seq
    page = widget.page.value
    assert widget.seq == 1 and widget.prev_button.disabled and not widget.next_button.disabled
    assert "State at seq 1" in page and "Compare three label-printer vendors" in page
    assert "Vendor Q" not in page


def test_widget_buttons_step() -> None:
    _, entries = sample(PRINTING_PRESS)
    widget = replay(entries, widget=True, start=13)
    widget.next_button.click()
    assert widget.seq == 14 and "LLM context drops: seq 2, seq 3, seq 6, seq 7" in widget.page.value
    widget.prev_button.click()
    widget.prev_button.click()
    assert widget.seq == 12


def test_widget_refuses_a_seq_not_in_the_log() -> None:
    _, entries = sample(VENDORS)
    with pytest.raises(ValueError, match="seq 99 is not in the log"):
        replay(entries, widget=True, start=99)
    with pytest.raises(ValueError, match="no entries"):
        replay([], widget=True)


def test_without_a_kernel_replay_is_static_html() -> None:
    assert not has_widget_frontend()  # pytest runs no Jupyter kernel
    blob, entries = sample(PRINTING_PRESS)
    static = ConversationView(blob, entries).replay()
    assert isinstance(static, StaticReplay)
    # 20 seqs, 8 shown: the first, the last, and the compaction among them.
    assert len(static.seqs_shown) == 8 and {1, 14, 20} <= set(static.seqs_shown)
    page = static._repr_html_()
    assert "Static replay (no widget frontend): 8 of 20 steps shown" in page
    assert page.count("<details") - page.count("<details><summary>summary") >= 8
    assert "seq 14 · compaction · +1 LLM-context, −4 LLM-context" in page
    assert repr(static).startswith("Replay of 20 steps (static;")


def test_static_replay_of_a_short_log_shows_every_step() -> None:
    _, entries = sample(BACKUP)
    assert StaticReplay(entries).seqs_shown == list(range(1, 8))


def test_static_replay_of_an_empty_log() -> None:
    blob, entries = sample(OLD_NOTES)
    assert entries == []
    assert "No entries to replay" in ConversationView(blob, entries).replay()._repr_html_()


def test_widget_survives_a_step_the_rebuild_cannot_build() -> None:
    entries = [
        {"id": "e1", "seq": 1, "createdAt": 0, "type": "user_message", "turnId": "t",
         "message": {"role": "user", "content": "hi"}},
        {"id": "e2", "seq": 2, "createdAt": 0, "type": "assistant_message", "turnId": "t", "runId": "r"},
    ]  # fmt: skip
    widget = replay(entries, widget=True)  # seq 2: an assistant_message without message
    assert widget.seq == 2 and "HTML view failed" in widget.page.value
    widget.step(-1)
    assert "State at seq 1" in widget.page.value


def test_step_banner_escapes_data() -> None:
    evil = "<script>alert('x')</script>"
    entries = [
        {"id": "e1", "seq": 1, "createdAt": 0, "type": "user_message", "turnId": "t",
         "message": {"role": "user", "content": evil}},
    ]  # fmt: skip
    page = step_html(entries, 1)
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
