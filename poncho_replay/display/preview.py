"""Short, safe text for any entry or message, shared by every renderer.

Renderers meet real data: list content with file parts, malformed rows,
megabyte tool results. These helpers never raise on odd shapes (a missing
``message`` renders as empty text) and never inline file data, so a table
or a chart tooltip stays small and readable.
"""

from __future__ import annotations

import json
from typing import Any

from poncho_replay._js import collapse_ws
from poncho_replay.models import JsonDict, message_text

__all__ = ["PREVIEW_CHARS", "entry_text", "file_parts", "preview", "safe_text", "short_id"]

PREVIEW_CHARS = 80
"""How many characters a one-line preview keeps."""


def safe_text(message: Any) -> str:
    """The text of a message (SPEC §1), or ``""`` when it has no usable content."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), (str, list)):
        return ""
    return message_text(message)


def file_parts(message: Any) -> list[JsonDict]:
    """The file parts of a message (their data is never rendered, only named)."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return []
    return [p for p in content if isinstance(p, dict) and p.get("type") == "file"]


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """One line: whitespace runs collapsed, cut at ``limit`` characters with an ellipsis."""
    line = collapse_ws(text)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def short_id(value: Any, length: int = 8) -> str:
    """The first characters of an id: enough to tell rows apart on screen."""
    text = "" if value is None else str(value)
    return text if len(text) <= length else text[:length] + "…"


def entry_text(entry: JsonDict) -> str:
    """What an entry says, as text: its message, summary, appended text or result."""
    kind = entry.get("type")
    if kind in ("user_message", "assistant_message", "harness_message"):
        return safe_text(entry.get("message"))
    if kind == "compaction":
        return safe_text(entry.get("summaryMessage"))
    if kind == "assistant_amendment":
        text = entry.get("appendText")
        return text if isinstance(text, str) else ""
    if kind == "subagent_result":
        return _result_text(entry.get("result"))
    if kind == "callback_started":
        return f"consumed seqs {json.dumps(entry.get('consumedSeqs'))}"
    return ""


def _result_text(result: Any) -> str:
    """A subagent result's answer, or its error, as text."""
    if not isinstance(result, dict):
        return ""
    for key in ("result", "error"):
        value = result.get(key)
        if isinstance(value, dict) and isinstance(value.get("response"), str):
            return value["response"]
        if isinstance(value, str):
            return value
    return ""
