"""Replay a conversation's log seq by seq: what each step added, as HTML or a widget.

A step is one seq of the log. Its page is the state at that seq
(:func:`~poncho_replay.display.html.state_html`, which outlines the step's
own entry) under a banner that says what the step changed compared with the
seq before: LLM-context messages added and dropped, transcript messages
added or amended, subagent results that became pending or were consumed.
The changes are read off two :func:`~poncho_replay.rebuild.state_at`
results, never re-derived, so the replay cannot disagree with the rebuild.

In a Jupyter kernel with ipywidgets, :func:`replay` returns a slider with
step buttons (:class:`~poncho_replay.display.replay_widget.ReplayWidget`);
elsewhere (a script, nbconvert to HTML, a static viewer) it returns
:class:`StaticReplay`, the pages of a few telling seqs in ``<details>``.

Example:
    >>> replay(entries)            # in JupyterLab: a slider over the seqs  # doctest: +SKIP
    >>> StaticReplay(entries).seqs_shown  # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from poncho_replay.display.html import state_html
from poncho_replay.display.preview import entry_text, preview, safe_text
from poncho_replay.display.rendered import HtmlRepr
from poncho_replay.display.style import wrap
from poncho_replay.display.text import state_text
from poncho_replay.models import JsonDict
from poncho_replay.rebuild import EntryLike, RebuildState, sorted_entries, state_at

__all__ = [
    "StaticReplay",
    "StepChange",
    "has_widget_frontend",
    "replay",
    "step_change",
    "step_html",
]

STATIC_STEPS = 8
"""Seqs a static replay renders (first, last, and the telling ones between)."""
TELLING_TYPES = ("compaction", "callback_started", "assistant_amendment", "subagent_result")
"""Entry types whose steps a static replay prefers: where the state changes shape."""


@dataclass(frozen=True)
class StepChange:
    """What one replay step changed, as seqs and transcript positions (1-based)."""

    seq: int
    entry: JsonDict | None
    context_added: list[str]
    context_dropped: list[str]
    transcript_added: list[int]
    transcript_amended: list[int]
    pending_added: list[int]
    pending_consumed: list[int]

    def summary(self) -> str:
        """One line: ``+1 context, −4 context, +1 transcript, ...`` (or ``no visible change``)."""
        parts = [
            f"+{len(self.context_added)} LLM-context" if self.context_added else "",
            f"−{len(self.context_dropped)} LLM-context" if self.context_dropped else "",
            f"+{len(self.transcript_added)} transcript" if self.transcript_added else "",
            f"{len(self.transcript_amended)} amended" if self.transcript_amended else "",
            f"+{len(self.pending_added)} pending" if self.pending_added else "",
            f"{len(self.pending_consumed)} consumed" if self.pending_consumed else "",
        ]
        return ", ".join(p for p in parts if p) or "no visible change"


def _context_origins(state: RebuildState) -> list[str]:
    """Each LLM-context message named by where it came from: ``seq 12`` or ``summary @ seq 14``.

    Matched to entries by identity: the rebuild returns the entries' own dicts.
    """
    origin: dict[int, str] = {}
    for e in state.entries:
        if isinstance(e.get("message"), dict):
            origin[id(e["message"])] = f"seq {e['seq']}"
        if isinstance(e.get("summaryMessage"), dict):
            origin[id(e["summaryMessage"])] = f"summary @ seq {e['seq']}"
    return [origin.get(id(m), "?") for m in state.llm_context]


def _pending_seqs(state: RebuildState) -> list[int]:
    """The seqs of the ``subagent_result`` entries still pending in ``state``."""
    seq_of = {
        id(e.get("result")): e["seq"] for e in state.entries if e.get("type") == "subagent_result"
    }
    return [seq_of[id(r)] for r in state.pending_subagent_results if id(r) in seq_of]


def step_change(entries: Iterable[EntryLike], seq: int) -> StepChange:
    """Compare the state at ``seq`` with the state at the seq before it in the log."""
    ordered = sorted_entries(entries)
    earlier = [e["seq"] for e in ordered if e["seq"] < seq]
    before = state_at(ordered, earlier[-1]) if earlier else state_at([], seq)
    after = state_at(ordered, seq)
    ctx_before, ctx_after = _context_origins(before), _context_origins(after)
    known_before, known_after = set(ctx_before), set(ctx_after)
    shown_before, shown_after = before.display.messages, after.display.messages
    pend_before, pend_after = _pending_seqs(before), _pending_seqs(after)
    return StepChange(
        seq=seq,
        entry=next((e for e in after.entries if e["seq"] == seq), None),
        context_added=[o for o in ctx_after if o not in known_before],
        context_dropped=[o for o in ctx_before if o not in known_after],
        transcript_added=list(range(len(shown_before) + 1, len(shown_after) + 1)),
        transcript_amended=[
            i + 1 for i, (a, b) in enumerate(zip(shown_before, shown_after)) if a != b
        ],
        pending_added=[s for s in pend_after if s not in pend_before],
        pending_consumed=[s for s in pend_before if s not in pend_after],
    )


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _seqs(seqs: list[int]) -> str:
    return ", ".join(str(s) for s in seqs)


def _change_html(change: StepChange, state: RebuildState) -> str:
    """The step banner: the entry the step appended and every change it caused."""
    entry = change.entry
    what = (
        f"<b>{_e(entry.get('type'))}</b> {_e(preview(entry_text(entry)))}"
        if entry
        else "no entry at this seq"
    )
    items = []
    if change.context_added:
        items.append(f"LLM context gains: {_e(', '.join(change.context_added))}")
    if change.context_dropped:
        items.append(f"LLM context drops: {_e(', '.join(change.context_dropped))}")
    shown = state.display.messages
    for pos in change.transcript_added:
        items.append(f"transcript #{pos} added: {_e(preview(safe_text(shown[pos - 1])))}")
    for pos in change.transcript_amended:
        items.append(f"transcript #{pos} amended: {_e(preview(safe_text(shown[pos - 1])))}")
    if change.pending_added:
        items.append(f"now pending: subagent result(s) from seq {_seqs(change.pending_added)}")
    if change.pending_consumed:
        items.append(f"consumed: subagent result(s) from seq {_seqs(change.pending_consumed)}")
    listed = "".join(f"<li>{i}</li>" for i in items) or "<li>no visible change</li>"
    return (
        f'<div class="pr-msg pr-step" style="max-width:100%"><div class="pr-head">step: seq {_e(change.seq)} · '
        f"{_e(change.summary())}</div>{what}<ul>{listed}</ul></div>"
    )


def step_html(entries: Iterable[EntryLike], seq: int) -> str:
    """One replay page: the step banner above the state at ``seq``."""
    ordered = sorted_entries(entries)
    change = step_change(ordered, seq)
    state = state_at(ordered, seq)
    return wrap(_change_html(change, state)) + state_html(state)


def _telling_seqs(seqs: list[int], entries: list[JsonDict], limit: int) -> list[int]:
    """First and last seq, then the telling steps, then evenly spaced ones, up to ``limit``."""
    if len(seqs) <= limit:
        return seqs
    chosen = {seqs[0], seqs[-1]}
    for e in entries:
        if len(chosen) >= limit:
            break
        if e.get("type") in TELLING_TYPES:
            chosen.add(e["seq"])
    stride = max(1, len(seqs) // limit)
    for s in seqs[::stride]:
        if len(chosen) >= limit:
            break
        chosen.add(s)
    return sorted(chosen)


class StaticReplay(HtmlRepr):
    """A replay without a widget frontend: a few steps' pages, each in a ``<details>``."""

    def __init__(self, entries: Iterable[EntryLike], *, steps: int = STATIC_STEPS) -> None:
        self.entries = sorted_entries(entries)
        self.seqs = sorted({e["seq"] for e in self.entries})
        self.seqs_shown = _telling_seqs(self.seqs, self.entries, steps)

    def _html(self) -> str:
        if not self.seqs:
            return wrap("<p><em>No entries to replay.</em></p>")
        note = (
            f'<div class="pr-meta">Static replay (no widget frontend): {len(self.seqs_shown)} of '
            f"{len(self.seqs)} steps shown; <code>.at(seq)</code> renders any other.</div>"
        )
        pages = []
        for i, seq in enumerate(self.seqs_shown):
            change = step_change(self.entries, seq)
            kind = change.entry.get("type") if change.entry else "no entry"
            is_open = " open" if i == len(self.seqs_shown) - 1 else ""
            pages.append(
                f"<details{is_open}><summary>seq {_e(seq)} · {_e(kind)} · {_e(change.summary())}</summary>"
                f"{step_html(self.entries, seq)}</details>"
            )
        return wrap(note) + "".join(pages)

    def _text(self) -> str:
        lines = [f"Replay of {len(self.seqs)} steps (static; showing {self.seqs_shown})"]
        for seq in self.seqs_shown:
            lines.append(state_text(state_at(self.entries, seq)))
        return "\n".join(lines)


def has_widget_frontend() -> bool:
    """True inside a Jupyter kernel with ipywidgets installed (where a widget can render)."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def replay(
    entries: Iterable[EntryLike], *, widget: bool | None = None, start: int | None = None
) -> Any:
    """A replay of the log: an ipywidgets slider in a kernel, else a :class:`StaticReplay`.

    Args:
        entries: the log (models or harness dicts, any order).
        widget: force the widget (``True``) or the static view (``False``);
            ``None`` picks the widget only where a frontend can show it.
        start: the seq the widget opens at (default: the last).
    """
    if widget is None:
        widget = has_widget_frontend()
    if not widget:
        return StaticReplay(entries)
    from poncho_replay.display.replay_widget import ReplayWidget

    return ReplayWidget(entries, start=start)
