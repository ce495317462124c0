"""DataFrames of one conversation's log: messages and compactions (what the charts draw).

Named ``<thing>_df`` after Inspect AI's ``messages_df`` / ``events_df``.
They take plain data (entries as harness dicts or models, optionally the
blob), so they work on a log from any source, before any workspace exists.

Which harness messages the LLM context keeps is not re-derived here: the
``in_llm_context`` column comes from :func:`poncho_replay.rebuild.build_llm_context`,
matched back to entries by object identity.

Example:
    >>> compactions_df(entries, blob)[["seq", "first_kept_seq", "blob_first_kept_seq"]]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from poncho_replay._js import truthy
from poncho_replay.compare import items_equal
from poncho_replay.display.preview import entry_text, preview
from poncho_replay.models import HarnessModel
from poncho_replay.rebuild import EntryLike, build_llm_context, latest_compaction, sorted_entries

__all__ = [
    "COMPACTION_COLUMNS",
    "MESSAGE_COLUMNS",
    "blob_first_kept_seq",
    "compactions_df",
    "messages_df",
]

MESSAGE_COLUMNS = [
    "conversation_id", "seq", "entry_id", "type", "role", "turn_id", "hidden",
    "is_compaction_summary", "in_llm_context", "chars", "text", "preview",
]  # fmt: skip
COMPACTION_COLUMNS = [
    "conversation_id", "layer", "seq", "entry_id", "first_kept_seq", "tokens_before", "tokens_after",
    "tokens_saved", "summarized_from", "summarized_to", "summarized_count", "kept_from", "kept_to",
    "kept_count", "active_to", "is_latest", "blob_first_kept_seq", "guess_matches_blob",
]  # fmt: skip

_MESSAGE_KEYS = {"user_message": "message", "assistant_message": "message", "harness_message": "message",
                 "compaction": "summaryMessage"}  # fmt: skip


def messages_df(
    entries: Iterable[EntryLike], *, conversation_id: str | None = None
) -> pd.DataFrame:
    """One row per message-bearing entry (user, assistant, harness, compaction summary).

    ``in_llm_context`` says whether the message is part of the LLM context
    rebuilt from the whole log; ``hidden`` is the user message's flag.
    """
    ordered = sorted_entries(entries)
    in_context = {id(m) for m in build_llm_context(ordered)}
    rows = []
    for e in ordered:
        key = _MESSAGE_KEYS.get(str(e.get("type")))
        msg = e.get(key) if key else None
        if not isinstance(msg, dict):
            continue
        text = entry_text(e)
        meta = msg.get("metadata")
        rows.append(
            {
                "conversation_id": conversation_id,
                "seq": e.get("seq"),
                "entry_id": e.get("id"),
                "type": e.get("type"),
                "role": msg.get("role"),
                "turn_id": e.get("turnId"),
                "hidden": e.get("type") == "user_message" and truthy(e.get("hidden")),
                "is_compaction_summary": e.get("type") == "compaction"
                or (isinstance(meta, dict) and meta.get("isCompactionSummary") is True),
                "in_llm_context": id(msg) in in_context,
                "chars": len(text),
                "text": text,
                "preview": preview(text),
            }
        )
    return pd.DataFrame(rows, columns=MESSAGE_COLUMNS)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def blob_first_kept_seq(
    entries: Iterable[EntryLike], blob: Mapping[str, Any] | HarnessModel
) -> int | None:
    """The seq the blob's compaction really kept from, read back from the log.

    The blob's ``_harnessMessages`` start with the compaction summary; the
    message after it is the first one the harness kept. Its first
    ``harness_message`` in the log is the real first kept seq: matched by
    ``metadata.id``, or by the whole message when it has no id (an earlier
    summary re-appended). ``None`` when the blob kept nothing or that message
    was never logged. This is the Python twin of ``first_kept`` in
    ``sql/audit.sql``, which decides the ``guessed_first_kept_seq_off`` cause;
    ``tests/test_charts.py`` holds the two equal on every fixture.
    """
    data = blob.to_dict() if isinstance(blob, HarnessModel) else blob
    blob_harness = data.get("_harnessMessages")
    if not isinstance(blob_harness, list) or len(blob_harness) < 2:
        return None
    first = blob_harness[1]
    key = _message_id(first)
    ordered = sorted_entries(entries)
    found = [
        e["seq"]
        for e in ordered
        if e.get("type") == "harness_message"
        and (
            (key is not None and _message_id(e.get("message")) == key)
            or (key is None and items_equal("llm", e.get("message"), first))
        )
    ]
    if not found:
        return None
    # A message logged twice (a whole re-append) counts at its last occurrence before the
    # newest compaction's turn (its last visible user message before that compaction).
    newest = latest_compaction(ordered)
    starts = [
        e["seq"]
        for e in ordered
        if newest is not None and e.get("type") == "user_message" and not truthy(e.get("hidden"))
        and e["seq"] < newest["seq"]
    ]
    before = [seq for seq in found if starts and seq < max(starts)]
    return max(before) if before else min(found)


def _message_id(message: Any) -> Any:
    meta = message.get("metadata") if isinstance(message, dict) else None
    return meta.get("id") if isinstance(meta, dict) else None


def compactions_df(
    entries: Iterable[EntryLike],
    blob: Mapping[str, Any] | HarnessModel | None = None,
    *,
    conversation_id: str | None = None,
) -> pd.DataFrame:
    """One row per compaction entry, in seq order (``layer`` 1, 2, ...).

    Ranges are seqs of real ``harness_message`` entries: ``summarized_*``
    are those before ``first_kept_seq`` (dropped from the context while this
    compaction is the latest), ``kept_*`` those from ``first_kept_seq`` up
    to the next compaction (or the end of the log), the window
    ``seq..active_to`` in which this compaction is the latest. For the
    latest compaction, with a blob, ``blob_first_kept_seq`` is what the blob
    really kept (see :func:`blob_first_kept_seq`) and ``guess_matches_blob``
    compares it with the logged guess.
    """
    ordered = sorted_entries(entries)
    if conversation_id is None and blob is not None:
        data = blob.to_dict() if isinstance(blob, HarnessModel) else blob
        conversation_id = data.get("conversationId")
    compactions = [e for e in ordered if e.get("type") == "compaction"]
    harness_seqs = [e["seq"] for e in ordered if e.get("type") == "harness_message"]
    last_seq = ordered[-1]["seq"] if ordered else None
    real = blob_first_kept_seq(ordered, blob) if blob is not None and compactions else None
    rows = []
    for layer, c in enumerate(compactions, start=1):
        nxt = compactions[layer]["seq"] if layer < len(compactions) else None
        active_to = nxt - 1 if nxt is not None else last_seq
        first_kept = c.get("firstKeptSeq")
        fk = _number(first_kept)
        summarized = [s for s in harness_seqs if fk is not None and s < fk]
        kept = [s for s in harness_seqs if fk is not None and fk <= s <= active_to]
        before, after = _number(c.get("tokensBefore")), _number(c.get("tokensAfter"))
        latest = layer == len(compactions)
        rows.append(
            {
                "conversation_id": conversation_id,
                "layer": layer,
                "seq": c["seq"],
                "entry_id": c.get("id"),
                "first_kept_seq": first_kept,
                "tokens_before": before,
                "tokens_after": after,
                "tokens_saved": before - after
                if before is not None and after is not None
                else None,
                "summarized_from": summarized[0] if summarized else None,
                "summarized_to": summarized[-1] if summarized else None,
                "summarized_count": len(summarized),
                "kept_from": kept[0] if kept else None,
                "kept_to": kept[-1] if kept else None,
                "kept_count": len(kept),
                "active_to": active_to,
                "is_latest": latest,
                "blob_first_kept_seq": real if latest else None,
                "guess_matches_blob": (real == first_kept) if latest and real is not None else None,
            }
        )
    df = pd.DataFrame(rows, columns=COMPACTION_COLUMNS)
    for col in ("summarized_from", "summarized_to", "kept_from", "kept_to", "blob_first_kept_seq"):
        df[col] = df[col].astype("Int64")
    for col in ("tokens_before", "tokens_after", "tokens_saved"):
        df[col] = df[col].astype("Float64")
    return df
