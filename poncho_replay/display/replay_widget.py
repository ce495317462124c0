"""The interactive replay: a slider over a log's seqs, step buttons, and the step's page.

Kept apart from :mod:`poncho_replay.display.replay` because it imports
ipywidgets (the optional ``notebook`` extra) at module level; that module
imports this one only when a widget is wanted.

The page is recomputed on every move from the log alone
(:func:`~poncho_replay.display.replay.step_html`), so what the widget shows
at a seq is what ``ConversationView.at(seq)`` shows, plus the step banner.
A test can drive it without a browser: set ``slider.value`` (or click the
buttons with ``.step(±1)``) and read ``page.value``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

from poncho_replay.display.rendered import Rendered
from poncho_replay.display.replay import step_html
from poncho_replay.rebuild import EntryLike, sorted_entries

__all__ = ["ReplayWidget"]


class ReplayWidget(widgets.VBox):
    """Slider + ◀/▶ buttons over the seqs, and an HTML pane with the state at the chosen seq.

    Attributes:
        slider: a ``SelectionSlider`` whose options are the log's seqs.
        prev_button, next_button: one step back / forward (disabled at the ends).
        page: the ``HTML`` widget holding the current step's page.
    """

    def __init__(
        self, entries: Iterable[EntryLike], *, start: int | None = None, **kwargs: Any
    ) -> None:
        self.entries = sorted_entries(entries)
        seqs = sorted({e["seq"] for e in self.entries})
        if not seqs:
            raise ValueError("nothing to replay: the log has no entries")
        if start is not None and start not in seqs:
            raise ValueError(f"seq {start} is not in the log (seqs {seqs[0]}..{seqs[-1]})")
        self.slider = widgets.SelectionSlider(
            options=seqs,
            value=seqs[-1] if start is None else start,
            description="seq",
            continuous_update=False,
            layout=widgets.Layout(width="60%"),
        )
        self.prev_button = widgets.Button(description="◀ prev", tooltip="one step back")
        self.next_button = widgets.Button(description="next ▶", tooltip="one step forward")
        self.page = widgets.HTML()
        self.prev_button.on_click(lambda _: self.step(-1))
        self.next_button.on_click(lambda _: self.step(1))
        self.slider.observe(self._render, names="value")
        self._render()
        super().__init__(
            [widgets.HBox([self.prev_button, self.slider, self.next_button]), self.page], **kwargs
        )

    @property
    def seq(self) -> int:
        """The seq on screen."""
        return int(self.slider.value)

    def step(self, delta: int) -> None:
        """Move ``delta`` steps (clamped to the log's ends)."""
        options = list(self.slider.options)
        index = min(max(options.index(self.slider.value) + delta, 0), len(options) - 1)
        self.slider.value = options[index]

    def _render(self, _change: Any = None) -> None:
        options = list(self.slider.options)
        index = options.index(self.slider.value)
        self.prev_button.disabled = index == 0
        self.next_button.disabled = index == len(options) - 1
        seq = self.seq
        # A malformed log can make the rebuild raise (SPEC §3's partial-rebuild case):
        # the pane then says so instead of the widget breaking mid-replay.
        self.page.value = Rendered(
            lambda: step_html(self.entries, seq), lambda: f"replay step {seq} failed"
        )._repr_html_()
