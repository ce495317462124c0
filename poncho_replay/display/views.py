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

import re
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from poncho_replay.display import html as views_html
from poncho_replay.display import text as views_text
from poncho_replay.display.frames import compactions_df, messages_df
from poncho_replay.display.rendered import HtmlRepr
from poncho_replay.errors import ReplayError, SeqError
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

__all__ = ["ConversationView", "EntriesView", "ParityRowView", "StateView", "nesting_reason"]

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _json_depth(text: str) -> int:
    """How deeply a JSON text nests arrays and objects, read without parsing it (parsing is what failed)."""
    depth = deepest = 0
    for bracket in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def nesting_reason(json_texts: Iterable[str | None]) -> str:
    """Why a conversation is not shown when its stored JSON is deeper than ``json.loads`` can go.

    Valid JSON (DuckDB loads and audits it) can nest thousands of levels;
    Python's parser stops at its recursion limit. The depth is measured on
    the raw texts, so the card can say how deep.
    """
    depth = max((_json_depth(text) for text in json_texts if text), default=0)
    return (
        f"its JSON is nested {depth:,} levels deep, deeper than Python's JSON parser goes "
        f"(about {sys.getrecursionlimit():,} levels)"
    )


class StateView(HtmlRepr):
    """One replay step: a :class:`~poncho_replay.rebuild.RebuildState` that renders itself."""

    def __init__(
        self,
        state: RebuildState,
        *,
        served: JsonDict | None = None,
        policy: Policy | None = None,
        conversation: ConversationView | None = None,
    ) -> None:
        self.state = state
        self.served = served
        self.policy = policy
        self.conversation = conversation

    def llm_request(
        self,
        format: str = "anthropic",
        policy: Policy | None = None,
        system: str | None = None,
        model: str | None = None,
    ) -> Any:
        """The request the harness sends at the start of the turn this seq belongs to.

        Under ``policy`` (default: this step's, else the conversation's):
        0.58 sends the log's rebuilt context, blob-reading releases the
        blob's, cut at the turn (``metadata["dated_by"]`` says how the log
        placed it). Returns a :class:`~poncho_replay.model_requests.LlmRequest`.
        """
        if self.conversation is None:
            raise ReplayError("this state was not taken from a conversation (use ConversationView.at)")
        from poncho_replay.model_requests import llm_request

        view = self.conversation
        chosen = policy or self.policy or view.policy
        return llm_request(view.blob, view.entries, self.state.seq, format=format, policy=chosen, system=system, model=model)

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
        # Why the conversation's data could not be read (see unshowable()); None when it could.
        self.problem: str | None = None

    @classmethod
    def unshowable(
        cls, conversation_id: str, reason: str, *, title: str | None = None, policy: Policy = "0.58"
    ) -> ConversationView:
        """A view of a conversation whose data cannot become Python values: it shows a card saying why.

        Odd but valid data (JSON nested deeper than ``json.loads`` goes) must
        not take a notebook cell or a whole report down, so
        ``Workspace.conversation`` returns this instead of raising. It renders
        the card; every method that needs the blob or the log raises
        :class:`~poncho_replay.errors.ReplayError` with the same reason rather
        than answer from empty data.
        """
        view = cls({"conversationId": conversation_id, "title": title}, [], policy=policy)
        view.problem = reason
        return view

    def _require_data(self) -> None:
        """Raise when this view holds no data (an :meth:`unshowable` conversation)."""
        if self.problem is not None:
            raise ReplayError(
                f"conversation {self.blob.get('conversationId')} could not be shown: {self.problem}"
            )

    @property
    def seqs(self) -> list[int]:
        """Every seq in the log, ascending (the replay's steps)."""
        self._require_data()
        return [e["seq"] for e in self.entries]

    def at(self, seq: int, policy: Policy | None = None) -> StateView:
        """The state the log gives at ``seq`` (entries with seq <= ``seq``).

        With ``policy``, the view also carries ``served``: what ``get()``
        would return under that release's rule had the log stopped at ``seq``
        (the blob is the one stored today).

        Raises:
            SeqError: for a negative ``seq`` (a typo, or Python's ``-1`` for
                "the last", which a seq is not), as ``show --at`` refuses it;
                ``0`` is the state before the first entry.
        """
        if seq < 0:
            raise SeqError(f"seq {seq} is negative: seqs start at 1 (0 is the state before the first entry)")
        self._require_data()
        state = state_at(self.entries, seq)
        served = None
        if policy is not None:
            served = rebuild_conversation(self.blob, state.entries, policy=policy, cutover=True)
        return StateView(state, served=served, policy=policy, conversation=self)

    def llm_request_pair(
        self, seq: int, a: Policy = "0.58", b: Policy = "blob", format: str = "anthropic", system: str | None = None
    ) -> Any:
        """The two requests reads ``a`` and ``b`` give at the turn of ``seq``, and where they first differ.

        Returns a :class:`~poncho_replay.model_requests.RequestPair`
        (``.a``, ``.b``, ``.first_difference``: a message index or None).
        """
        self._require_data()
        from poncho_replay.model_requests import llm_request_pair

        return llm_request_pair(self.blob, self.entries, seq, a=a, b=b, format=format, system=system)

    def replay(self, *, widget: bool | None = None, start: int | None = None) -> Any:
        """Step through the log: a slider widget in a Jupyter kernel, else static HTML.

        See :func:`poncho_replay.display.replay.replay` (``widget=`` forces
        either form; ``start`` is the seq the widget opens at).
        """
        self._require_data()
        from poncho_replay.display.replay import replay

        return replay(self.entries, widget=widget, start=start)

    def diff(self, policy: Policy | None = None, compare: Any = "exact") -> pd.DataFrame:
        """Blob and served conversation side by side, aligned, divergences marked (``audit.diff_df``)."""
        self._require_data()
        from poncho_replay.audit import diff_df

        return diff_df(self.blob, self.entries, policy or self.policy, compare)

    def entries_view(self) -> EntriesView:
        """The log as a table."""
        self._require_data()
        return EntriesView(self.entries)

    def messages_df(self) -> pd.DataFrame:
        """One row per message-bearing entry."""
        self._require_data()
        return messages_df(self.entries, conversation_id=self.blob.get("conversationId"))

    def compactions_df(self) -> pd.DataFrame:
        """One row per compaction, with the blob's real first kept seq for the latest."""
        self._require_data()
        return compactions_df(self.entries, self.blob)

    def compaction_chart(self) -> alt.LayerChart:
        """The compaction timeline (returned, not displayed)."""
        self._require_data()
        from poncho_replay.display.charts import compaction_chart

        return compaction_chart(self.entries, self.blob)

    def _html(self) -> str:
        if self.problem is not None:
            return views_html.unshowable_html(
                self.blob.get("conversationId"), self.problem, self.blob.get("title")
            )
        return views_html.conversation_html(self.blob, self.entries, policy=self.policy)

    def _text(self) -> str:
        if self.problem is not None:
            return (
                f"Conversation {self.blob.get('title')!r} ({self.blob.get('conversationId')}) "
                f"could not be shown: {self.problem}"
            )
        return views_text.conversation_text(self.blob, self.entries)
