"""Notebook rendering: HTML views, DataFrames and Altair charts over plain harness data.

Charts (``compaction_chart``, ``fleet_compaction_chart``, ``save_chart``)
live in :mod:`poncho_replay.display.charts`, imported on use, since Altair
is the optional ``notebook`` extra.
"""

from poncho_replay.display.frames import blob_first_kept_seq, compactions_df, messages_df
from poncho_replay.display.html import (
    conversation_html,
    entries_html,
    parity_row_html,
    parity_table_html,
    state_html,
    summary_html,
)
from poncho_replay.display.rendered import HtmlRepr, Rendered
from poncho_replay.display.views import ConversationView, EntriesView, ParityRowView, StateView

__all__ = [
    "ConversationView",
    "EntriesView",
    "HtmlRepr",
    "ParityRowView",
    "Rendered",
    "StateView",
    "blob_first_kept_seq",
    "compactions_df",
    "conversation_html",
    "entries_html",
    "messages_df",
    "parity_row_html",
    "parity_table_html",
    "state_html",
    "summary_html",
]
