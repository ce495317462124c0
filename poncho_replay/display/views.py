"""Notebook objects over plain data: a conversation, one replay step, a parity row.

They hold the data and render on demand (``_repr_html_`` never raises), so
``Workspace.conversation(id)`` and the audit can return them directly.

Example:
    >>> view = ConversationView(blob, entries)  # doctest: +SKIP
    >>> view.at(12)                              # the state at seq 12, rendered  # doctest: +SKIP
    >>> view.replay()                            # a slider over the seqs (in Jupyter)  # doctest: +SKIP
    >>> view.compaction_chart()                  # an Altair chart  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from poncho_replay.display import html as views_html
from poncho_replay.display import text as views_text
from poncho_replay.display.frames import compactions_df, messages_df
from poncho_replay.display.rendered import HtmlRepr
from poncho_replay.models import HarnessModel, JsonDict
from poncho_replay.rebuild import (
    EntryLike,
    Policy,
    RebuildState,
    rebuild_conversation,
    sorted_entries,
    state_at,
)

if TYPE_CHECKING:
    import altair as alt

__all__ = ["ConversationView", "EntriesView", "ParityRowView", "StateView"]


class StateView(HtmlRepr):
    """One replay step: a :class:`~poncho_replay.rebuild.RebuildState` that renders itself."""

    def __init__(self, state: RebuildState, *, served: JsonDict | None = None, policy: Policy | None = None) -> None:
        self.state = state
        self.served = served
        self.policy = policy

    def __getattr__(self, name: str) -> Any:
        # llm_context, display, pending_subagent_results, latest_compaction, ... of the state
        if name == "state":
            raise AttributeError(name)
        return getattr(self.state, name)

    def _html(self) -> str:
        return views_html.state_html(self.state)

    def _text(self) -> str:
        return views_text.state_text(self.state)


class EntriesView(HtmlRepr):
    """An entry log rendered as a table (``max_rows`` shown)."""

    def __init__(self, entries: Iterable[EntryLike], *, max_rows: int = 500) -> None:
        self.entries = sorted_entries(entries)
        self.max_rows = max_rows

    def _html(self) -> str:
        return views_html.entries_html(self.entries, max_rows=self.max_rows)

    def _text(self) -> str:
        return views_text.entries_text(self.entries)


class ParityRowView(HtmlRepr):
    """One parity-audit row (a dict) with verdict colour and cause badges."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.row = dict(row)

    def _html(self) -> str:
        return views_html.parity_row_html(self.row)

    def _text(self) -> str:
        return views_text.parity_row_text(self.row)


class ConversationView(HtmlRepr):
    """A conversation's blob and log: renders as a chat, replays, charts, and gives DataFrames.

    Args:
        blob: the stored conversation (dict in harness JSON, or a model).
        entries: its entry log.
        policy: the read-cutover policy compared with the blob.
    """

    def __init__(
        self,
        blob: Mapping[str, Any] | HarnessModel,
        entries: Iterable[EntryLike],
        *,
        policy: Policy = "0.58",
    ) -> None:
        self.blob: JsonDict = blob.to_dict() if isinstance(blob, HarnessModel) else dict(blob)
        self.entries = sorted_entries(entries)
        self.policy = policy

    @property
    def seqs(self) -> list[int]:
        """Every seq in the log, ascending (the replay's steps)."""
        return [e["seq"] for e in self.entries]

    def at(self, seq: int, policy: Policy | None = None) -> StateView:
        """The state the log gives at ``seq`` (entries with seq <= ``seq``).

        With ``policy``, the view also carries ``served``: what ``get()``
        would return under that release's rule had the log stopped at ``seq``
        (the blob is the one stored today).
        """
        state = state_at(self.entries, seq)
        served = None
        if policy is not None:
            served = rebuild_conversation(self.blob, state.entries, policy=policy, cutover=True)
        return StateView(state, served=served, policy=policy)

    def replay(self, *, widget: bool | None = None, start: int | None = None) -> Any:
        """Step through the log: a slider widget in a Jupyter kernel, else static HTML.

        See :func:`poncho_replay.display.replay.replay` (``widget=`` forces
        either form; ``start`` is the seq the widget opens at).
        """
        from poncho_replay.display.replay import replay

        return replay(self.entries, widget=widget, start=start)

    def diff(self, policy: Policy | None = None, compare: Any = "exact") -> pd.DataFrame:
        """Blob and served conversation side by side, aligned, divergences marked (``audit.diff_df``)."""
        from poncho_replay.audit import diff_df

        return diff_df(self.blob, self.entries, policy or self.policy, compare)

    def entries_view(self) -> EntriesView:
        """The log as a table."""
        return EntriesView(self.entries)

    def messages_df(self) -> pd.DataFrame:
        """One row per message-bearing entry."""
        return messages_df(self.entries, conversation_id=self.blob.get("conversationId"))

    def compactions_df(self) -> pd.DataFrame:
        """One row per compaction, with the blob's real first kept seq for the latest."""
        return compactions_df(self.entries, self.blob)

    def compaction_chart(self) -> alt.LayerChart:
        """The compaction timeline (returned, not displayed)."""
        from poncho_replay.display.charts import compaction_chart

        return compaction_chart(self.entries, self.blob)

    def _html(self) -> str:
        return views_html.conversation_html(self.blob, self.entries, policy=self.policy)

    def _text(self) -> str:
        return views_text.conversation_text(self.blob, self.entries)
