"""Plain-text views: the ``__repr__`` of every displayable object, and the HTML fallback.

They read the same data as the HTML views, one line per message or entry,
so a terminal or a log file shows what a notebook would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from poncho_replay._js import printed, truthy
from poncho_replay.display.preview import entry_text, preview
from poncho_replay.models import HarnessModel
from poncho_replay.rebuild import EntryLike, RebuildState, sorted_entries

__all__ = ["conversation_text", "entries_text", "parity_row_text", "state_text"]


def _entry_line(entry: Mapping[str, Any]) -> str:
    flags = (
        " [hidden]" if entry.get("type") == "user_message" and truthy(entry.get("hidden")) else ""
    )
    if entry.get("type") == "compaction":
        flags = f" [firstKeptSeq {entry.get('firstKeptSeq')}]"
    return f"  {entry.get('seq'):>5}  {entry.get('type')}{flags}: {preview(entry_text(dict(entry)), 60)}"


def entries_text(entries: Iterable[EntryLike], max_rows: int = 20) -> str:
    """A header and the first ``max_rows`` entries, one line each."""
    ordered = sorted_entries(entries)
    lines = [f"{len(ordered)} entries"] + [_entry_line(e) for e in ordered[:max_rows]]
    if len(ordered) > max_rows:
        lines.append(f"  … {len(ordered) - max_rows} more")
    return "\n".join(lines)


def conversation_text(blob: Mapping[str, Any] | HarnessModel, entries: Iterable[EntryLike]) -> str:
    """Title, id and the log, one line per entry."""
    data = blob.to_dict() if isinstance(blob, HarnessModel) else blob
    messages = data.get("messages")
    count = len(messages) if isinstance(messages, list) else "?"
    title = data.get("title")
    # printed() before repr(): repr would spell a lone surrogate as "\\ud83e", not as Node prints it
    shown = repr(printed(title)) if isinstance(title, str) else repr(title)
    head = f"Conversation {shown} ({data.get('conversationId')}): {count} blob messages"
    return head + "\n" + entries_text(entries)


def state_text(state: RebuildState) -> str:
    """The counts a replay step shows, and its entry."""
    step = next((e for e in state.entries if e.get("seq") == state.seq), None)
    compaction = state.latest_compaction
    return (
        f"State at seq {state.seq}: {len(state.entries)} entries, "
        f"{state.display.total_messages} displayed, {len(state.llm_context)} in LLM context, "
        f"{len(state.pending_subagent_results)} pending, "
        + (f"latest compaction seq {compaction.get('seq')}" if compaction else "no compaction")
        + ("\n" + _entry_line(step) if step else "")
    )


def parity_row_text(row: Mapping[str, Any]) -> str:
    """``<verdict> <conversation> [causes]``."""
    causes = row.get("causes")
    listed = (
        ", ".join(map(str, causes))
        if causes is not None and not isinstance(causes, str)
        else causes or ""
    )
    return f"{row.get('verdict')} {row.get('conversation_id')} [{listed}]"
