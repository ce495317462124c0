"""Ground truth for the audit's causes, recorded by the simulator at the write site.

The audit names *why* a conversation's log and blob differ from the data
alone. To measure how often it is right, the simulator writes down what it
did, at the moment it does it (DESIGN.md, "Cause metric"): a callback turn,
a compaction and its approximate finalize, a guessed ``firstKeptSeq`` that
misses the kept messages, a resume, a thread copy, a lost blob write, every
fault of a fire-and-forget append, a turn before the dual-write or after it
ended, a write-back. Never by diffing the data afterwards: that would be a
second audit, not a truth.

Each :class:`Truth` names the audit's cause (:data:`poncho_replay.audit.CAUSES`)
and the served fields (``llm``, ``display``, ``pending``) in which the
behaviour can still make the log and the blob differ. A later write-back
(0.58.0's read cutover on a get -> update, or from 0.59.0 the pending-results
read) overwrites the blob with what the log rebuilds, so the simulator takes
the fields it overwrote off the earlier records of that conversation; a later
compaction entry likewise retires an earlier compaction's guessed
``firstKeptSeq`` (the context reads the newest compaction only, SPEC §3),
and a later compaction the blob keeps retires what it rewrote: the display
once it moved messages to ``compactedHistory``, the context once it
summarized it (re-appended whole to the log, or, unlogged, keeping none of
the record's own blob items). DESIGN.md's recall counts only the causes
that can change what is served; a behaviour a compaction summarized away no
longer can.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from poncho_replay.models import JsonDict

FIELDS: tuple[str, ...] = ("llm", "display", "pending")
"""The served fields, as the audit names them (``_harnessMessages``, ``messages``, ``pendingSubagentResults``)."""

TRANSCRIPT: tuple[str, ...] = ("llm", "display")

TRUTH_COLUMNS: tuple[str, ...] = ("conversation_id", "cause", "seq", "detail", "fields")

QUEUE_TYPES: tuple[str, ...] = ("subagent_result", "callback_started")
"""The entry types a 0.59.3+ read takes the pending results from (SPEC §7)."""


@dataclass(eq=False)
class Truth:
    """One write-site behaviour that can make a conversation's log and blob differ.

    Attributes:
        conversation_id: the conversation it happened to.
        cause: the audit's name for it (a key of ``poncho_replay.audit.CAUSES``).
        fields: the served fields it can still make differ; emptied field by
            field when a later write-back overwrites the blob with the log's
            rebuild (a record with no fields left explains nothing served).
        detail: what exactly happened, for a person (site, fate, seqs).
        seq: the seq of the first entry the behaviour's append landed at
            (None: nothing was appended, or the append was lost or failed).
        blob_items: the blob ``_harnessMessages`` items the behaviour put
            there and the log lacks (a callback's copy of ``messages``, a
            resumed message, a lost append's messages). A later compaction
            whose finalize the log does not follow summarizes the context
            away: the record keeps its ``llm`` field only while the kept
            messages hold one of these. Not a column of :func:`truth_df`.

    Records compare by identity: two identical behaviours are two records.
    """

    conversation_id: str
    cause: str
    fields: tuple[str, ...]
    detail: str = ""
    seq: int | None = None
    blob_items: list[JsonDict] = field(default_factory=list)


def entry_fields(entries: Iterable[JsonDict]) -> tuple[str, ...]:
    """The served fields new entries feed (SPEC §3), so a fault on their append can change those.

    A hidden ``user_message`` feeds nothing; a ``compaction`` feeds the LLM context.
    """
    fed: set[str] = set()
    for e in entries:
        kind = e["type"]
        if kind in ("harness_message", "compaction"):
            fed.add("llm")
        elif kind in ("assistant_message", "assistant_amendment") or (kind == "user_message" and not e.get("hidden")):
            fed.add("display")
        elif kind in QUEUE_TYPES:
            fed.add("pending")
    return tuple(f for f in FIELDS if f in fed)


_INERT_FAULTS = {("reorder", "compaction"), ("duplicate", "compaction"), ("duplicate", "callback_started")}


def fault_fields(site: str, fate: str, entries: Sequence[JsonDict]) -> tuple[str, ...]:
    """The served fields a faulty append can change.

    What is order- or count-insensitive in the rebuild (SPEC §3) is left
    out: an overtaken or doubled compaction entry still names the same
    ``firstKeptSeq`` (the context reads the newest compaction, whatever its
    seq), and a ``callback_started`` written twice consumes the same seqs.
    """
    if (fate, site) in _INERT_FAULTS:
        return ()
    return entry_fields(entries)


def truth_df(records: Iterable[Truth]) -> pd.DataFrame:
    """The records as a DataFrame: ``conversation_id, cause, seq`` (nullable int), ``detail, fields``."""
    rows = [(r.conversation_id, r.cause, r.seq, r.detail, list(r.fields)) for r in records]
    df = pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    df["seq"] = df["seq"].astype("Int64")
    return df
