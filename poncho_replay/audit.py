"""The fleet parity audit: which conversations a rebuild policy serves
differently from their blob, in which field, from which seq, and why.

The work is set-based SQL (``poncho_replay/sql/audit.sql`` over the fleet
rebuild of ``rebuild_fleet.sql``, one macro per cause in ``causes.sql``); this module registers the few scalar
functions the SQL needs (canonical JSON for exact comparison, JavaScript's
quoting for the harness's log line, a user normaliser) and shapes the result.

Example:
    >>> import poncho_replay
    >>> ws = poncho_replay.open()
    >>> _ = ws.load(poncho_replay.bundled.sample_db())          # doctest: +SKIP
    >>> report = ws.parity(policy="0.58")                       # doctest: +SKIP
    >>> report[report.verdict == "diverged"][["title", "causes"]]  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

import duckdb
import pandas as pd
import pyarrow as pa

from poncho_replay import fleet
from poncho_replay._js import json_quote, printed, utf16_slice
from poncho_replay.compare import (
    Alignment,
    Comparison,
    Normaliser,
    align,
    aligned_pairs,
    canonical,
    canonical_text,
    equality,
)
from poncho_replay.dualwrite import QUOTE_LIMIT, project_text
from poncho_replay.models import message_text
from poncho_replay.policy import Policy, resolve_policy
from poncho_replay.profiling import phase
from poncho_replay.sql import run_script

__all__ = [
    "CAUSES",
    "COMPARISONS",
    "Alignment",
    "ParityReport",
    "align",
    "canonical_json",
    "compare_policies",
    "diff_df",
    "install",
    "merge_source_facts",
    "parity_df",
    "parity_rows",
    "parity_summary_df",
    "source_facts",
    "source_facts_shadowed",
]

COMPARISONS: tuple[str, ...] = ("exact", "text")

CAUSES: dict[str, str] = {
    "pre_dual_write": "history written before the dual-write: no entries, or blob messages older than the log",
    "thread_copy_not_captured": "a thread's copied parent messages are in the blob but were never logged",
    "callback_turn_not_captured": "a 0.58 subagent callback turn's injected messages live only in the blob, or its "
    "_harnessMessages became a copy of messages (SPEC §5)",
    "approximate_finalize_diff": "after a compaction the finalize's length diff logged the wrong messages: the whole "
    "transcript again when the array shrank, only its tail when it did not (SPEC §5)",
    "guessed_first_kept_seq_off": "the compaction's guessed firstKeptSeq is not where the blob's kept messages start",
    "compaction_moved_history": "the blob moved earlier messages to compactedHistory; the log still shows them",
    "resume_not_captured": "a resumed turn logged no harness messages / only the amendment text",
    "amendment_wrong_target": "an amendment targets an unknown entry, or the blob's copy of its target bubble "
    "lacks the appended text",
    "lost_or_reordered_append": "a fire-and-forget append was lost, duplicated, or landed out of order",
    "stale_blob": "the log holds turns whose final blob write never happened (later turns may have gone on "
    "from the stale blob)",
    "result_delivered_twice": "the blob holds a subagent result twice: 0.59+ appended the entry, then "
    "get() served it from the queue and appendSubagentResult pushed it again (SPEC §7)",
    "consumed_result_kept_in_blob": "a callback_started consumed the result, but the blob still lists it "
    "as pending (the callback's blob update was lost or overwritten by a stale write)",
    "queued_result_not_in_blob": "the queue holds a pending result the blob lacks (the blob's append failed, "
    "or a stale get -> update overwrote it)",
    "blob_overwritten_by_rebuild": "a get -> update path wrote the rebuild back into the blob (0.58.0)",
    "dual_write_ended": "0.59.3+ wrote these turns and logs no transcript (SPEC §7): a full-cutover read "
    "of the log misses them",
    "quarantined_entries": "entry rows the load quarantined take no part in the rebuild (the harness read "
    "them, e.g. a partial rebuild on a malformed entry)",
    "unexplained": "diverged, and no known cause fits (the evidence holds the aligned slice around the "
    "first divergence)",
}
"""Every cause the audit can report, with what it means."""

_JSON_COLUMNS = ("evidence",)


canonical_json = canonical_text
"""A JSON text's canonical form (:func:`poncho_replay.compare.canonical_text`): the SQL side's ``audit_canon``."""


def _js_quote120(text: str | None) -> str | None:
    """``JSON.stringify(text).slice(0, 120)`` as Node prints it (lone surrogates -> U+FFFD)."""
    return None if text is None else printed(utf16_slice(json_quote(text), 0, QUOTE_LIMIT))


def _message_text(text: str | None) -> str | None:
    """The harness's getTextContent of a message given as JSON text (non-string content)."""
    if text is None:
        return None
    message = json.loads(text)
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return ""
    return message_text(message)


def install(con: Any, normaliser: Normaliser | None = None) -> None:
    """Install the fleet rebuild, the audit macros and their scalar functions on ``con``.

    ``normaliser`` becomes the ``custom`` comparison (replacing any earlier one).
    """
    fleet.install(con)
    _replace_function(con, "audit_canon", canonical_json, ["VARCHAR"], "VARCHAR")
    _replace_function(con, "js_quote120", _js_quote120, ["VARCHAR"], "VARCHAR")
    _replace_function(con, "message_text_py", _message_text, ["VARCHAR"], "VARCHAR")

    def custom(field: str, text: str | None) -> str | None:
        if text is None or normaliser is None:
            return canonical_json(text)
        return canonical(normaliser(field, json.loads(text)))

    _replace_function(con, "audit_custom", custom, ["VARCHAR", "VARCHAR"], "VARCHAR")
    run_script(con, "causes.sql")  # one macro per cause; parity_at in audit.sql calls them
    run_script(con, "source_facts.sql")  # what spans a whole source; audit.sql reads it
    run_script(con, "audit.sql")


SOURCE_FACTS_SCHEMA = pa.schema([
    ("source", pa.string()),
    ("queue_writes_seen", pa.bool_()),
    ("queue_writes_from", pa.timestamp("us")),
    ("dual_write_from", pa.timestamp("us")),
    ("dual_write_until", pa.timestamp("us")),
])
"""The columns of ``audit_source_facts`` (sql/source_facts.sql): one row per source."""
_SOURCE_FACT_COLUMNS = ", ".join(SOURCE_FACTS_SCHEMA.names)


def source_facts(con: Any, source: str | None = None) -> pa.Table:
    """The facts of each whole source a cause rule reads (``sql/source_facts.sql``), from ``con``'s tables.

    A sharded audit computes them once over the whole fleet, outside the
    shards (DESIGN "Shards"), and hands them to every shard
    (:func:`source_facts_shadowed`), so a conversation's causes do not depend
    on which shard it lands in. Cheap: one pass over the entries' type and
    ``created_at``, parsing only the ``subagent_result`` payloads. Needs only
    the workbench tables on ``con``. Facts of parts of a source (shards)
    combine with :func:`merge_source_facts`.
    """
    run_script(con, "source_facts.sql")
    table = con.sql(
        f"SELECT {_SOURCE_FACT_COLUMNS} FROM main.audit_source_facts WHERE ?::VARCHAR IS NULL OR source = ? "
        "ORDER BY source",
        params=[source, source],
    ).to_arrow_table()
    return table.cast(SOURCE_FACTS_SCHEMA)


def merge_source_facts(parts: Iterable[pa.Table]) -> pa.Table:
    """The facts of a whole source from those of its parts (:func:`source_facts` of each shard).

    Each fact is an "any", a first or a last over the source's entries, so
    the parts combine exactly: the result equals :func:`source_facts` of
    all the parts' rows loaded at once.
    """
    tables = [part.cast(SOURCE_FACTS_SCHEMA) for part in parts]
    if not tables:
        return SOURCE_FACTS_SCHEMA.empty_table()
    merged = pa.concat_tables(tables).group_by("source").aggregate(
        [("queue_writes_seen", "any"), ("queue_writes_from", "min"), ("dual_write_from", "min"), ("dual_write_until", "max")]
    )
    merged = merged.rename_columns([name.rsplit("_", 1)[0] if name != "source" else name for name in merged.column_names])
    return merged.select(SOURCE_FACTS_SCHEMA.names).sort_by("source").cast(SOURCE_FACTS_SCHEMA)


@contextmanager
def source_facts_shadowed(con: Any, facts: pa.Table | None) -> Iterator[None]:
    """Audit on ``con`` with ``facts`` (:func:`source_facts` of the whole fleet) as its sources' facts.

    A TEMP table of the view's name shadows ``audit_source_facts`` (as
    :func:`materialized` shadows the item views) until the block ends, so a
    shard's audit reads the whole source's facts, not its own rows'.
    ``None`` shadows nothing: the tables on ``con`` are the whole source.
    """
    if facts is None:
        yield
        return
    con.execute("DROP TABLE IF EXISTS temp.audit_source_facts")
    rows = facts.cast(SOURCE_FACTS_SCHEMA)  # noqa: F841 - read by the statement below
    try:
        con.execute(f"CREATE TEMP TABLE audit_source_facts AS SELECT {_SOURCE_FACT_COLUMNS} FROM rows")
        yield
    finally:
        con.execute("DROP TABLE IF EXISTS temp.audit_source_facts")


def _replace_function(con: Any, name: str, fn: Callable[..., Any], params: list[str], returns: str) -> None:
    with suppress(duckdb.InvalidInputException):  # not registered yet
        con.remove_function(name)
    con.create_function(name, fn, params, returns, side_effects=False, null_handling="special")


def parity_df(
    con: Any,
    policy: Policy = "0.58",
    compare: Comparison | Normaliser = "exact",
    source: str | None = None,
) -> ParityReport:
    """One row per conversation: the harness's verdict, full-sequence counts, causes.

    Args:
        con: a DuckDB connection holding the workbench tables.
        policy: the harness release whose ``get()`` to reproduce (see
            :func:`poncho_replay.policy.resolve_policy`): ``"0.58"`` (full
            cutover), ``"0.59.0"`` (pending results from all entries),
            ``"0.59.3"`` ... ``"0.61.2"`` / ``"current"`` (pending results
            from the queue entries), ``"blob"`` (no cutover).
        compare: ``"exact"`` (JSON values), ``"text"`` (the harness's
            ``role:text`` projection), or a callable ``(field, item) -> value``.
        source: one loaded source (default: all).

    Returns:
        Columns: ``source, conversation_id, title, entries, verdict``
        (``match``/``diverged``), ``diverged_fields``, the harness's
        ``harness_verdict`` (``OK``/``MISMATCH``/``threw``),
        ``harness_mismatches`` and ``harness_log_line`` (exactly
        :func:`poncho_replay.dualwrite.parity_check`'s text, as Node prints
        it), ``causes`` and ``evidence`` (cause -> the seqs and turn ids
        involved), per field (``llm``, ``display``, ``pending``) the counts
        ``_entries, _blob, _matching, _changed, _missing_in_entries,
        _extra_in_entries`` and ``_first_position``, ``_first_seq_entries``,
        ``_first_seq_blob``; ``samples`` (up to three aligned pairs per
        diverged field) and ``reproduce`` (a query that gives the row again).
    """
    with phase("install rules"):
        install(con, compare if callable(compare) else None)
    return parity_rows(con, policy, compare, source)


def parity_rows(
    con: Any,
    policy: Policy = "0.58",
    compare: Comparison | Normaliser = "exact",
    source: str | None = None,
) -> ParityReport:
    """:func:`parity_df` on a connection where :func:`install` already ran (with ``compare``'s normaliser).

    The audit by shards installs the rules once and runs this per shard.
    """
    read = resolve_policy(policy)
    mode = "custom" if callable(compare) else compare
    if mode not in (*COMPARISONS, "custom"):
        raise ValueError(f"unknown comparison {compare!r}; choose 'exact', 'text' or a callable")
    with materialized(con, source), phase("compare and find causes"):
        df = con.execute(
            "SELECT * FROM parity_at(?, ?, src := ?) ORDER BY source, conversation_id", [read.reads, mode, source]
        ).df()
    for column in _JSON_COLUMNS:
        df[column] = df[column].map(json.loads)
    df["samples"] = df["samples"].map(_samples)
    df["reproduce"] = [
        f"SELECT * FROM parity_at('{read.reads}', '{mode}') WHERE source = {_sql_literal(s)} "
        f"AND conversation_id = {_sql_literal(c)}"
        for s, c in zip(df["source"], df["conversation_id"], strict=True)
    ]
    df.attrs["policy"] = read.describe()
    return ParityReport(df)


_ITEM_VIEWS = ("audit_entry_facts", "audit_log_items", "audit_blob_items", "audit_log_counts")
"""The views of audit.sql every part of the audit reads, in dependency order (fixed names, never user input).

``audit_log_keys`` is left a view: a filter over ``audit_entry_facts`` (which
it then reads from the TEMP table), cheaper to repeat than to hold."""


@contextmanager
def materialized(con: Any, source: str | None) -> Iterator[None]:
    """Compute the audit's item and entry views once, as TEMP tables that shadow them.

    The views stay the definition (a standalone ``parity_at`` query reads
    them directly); this only saves parsing and rebuilding the same payloads
    once per part of the audit. The tables are dropped afterwards.
    """
    try:
        for name in _ITEM_VIEWS:
            con.execute(f"DROP TABLE IF EXISTS temp.{name}")
            with phase(f"materialize {name}"):
                con.execute(
                    f"CREATE TEMP TABLE {name} AS SELECT * FROM main.{name} WHERE ?::VARCHAR IS NULL OR source = ?",
                    [source, source],
                )
        yield
    finally:
        for name in _ITEM_VIEWS:
            con.execute(f"DROP TABLE IF EXISTS temp.{name}")


def _sql_literal(value: str) -> str:
    """A string as a SQL literal, for the copy-paste ``reproduce`` text only (never executed here)."""
    return "'" + value.replace("'", "''") + "'"


def _samples(raw: Any) -> list[dict[str, Any]]:
    """Aligned sample pairs as plain dicts (previews are made in SQL: audit_preview)."""
    return [dict(s) for s in raw] if raw is not None else []


def _preview(field: str, item: Any) -> str | None:
    """An item as :func:`diff_df` shows it, untruncated (the twin of audit.sql's audit_preview)."""
    if item is None:
        return None
    if field != "pending" and isinstance(item, dict) and "content" in item:
        return project_text(item)
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def parity_summary_df(parity: pd.DataFrame) -> pd.DataFrame:
    """Conversations counted by era, verdict, harness verdict and cause (one cause per row).

    ``era`` tells which harness wrote each log (SPEC §7): ``transcript``
    (0.56-0.59.2 dual-write), ``queue`` (0.59.3+), ``mixed`` (a 0.58
    transcript continued by 0.59.3+ queue writes) or ``blob`` (no entries).
    """
    if parity.empty:
        return pd.DataFrame(columns=["era", "verdict", "harness_verdict", "cause", "conversations"])
    exploded = parity.assign(cause=parity["causes"].map(lambda c: list(c) or ["(none)"])).explode("cause")
    return (
        exploded.groupby(["era", "verdict", "harness_verdict", "cause"], as_index=False)
        .size()
        .rename(columns={"size": "conversations"})
        .sort_values(["verdict", "conversations"], ascending=[True, False], ignore_index=True)
    )


def compare_policies(con: Any, a: Policy, b: Policy, source: str | None = None) -> pd.DataFrame:
    """Which conversations two policies serve differently, and in which fields.

    One row per conversation whose served ``_harnessMessages``, ``messages``
    or ``pendingSubagentResults`` differ between the policies (exact JSON).
    """
    ra, rb = resolve_policy(a), resolve_policy(b)
    install(con)
    return con.execute(
        """
        WITH x AS (SELECT * FROM audit_served_items(?, src := ?)),
             y AS (SELECT * FROM audit_served_items(?, src := ?)),
             d AS (
                SELECT coalesce(x.source, y.source) AS source,
                       coalesce(x.conversation_id, y.conversation_id) AS conversation_id,
                       coalesce(x.field, y.field) AS field
                FROM x FULL OUTER JOIN y USING (source, conversation_id, field, position)
                WHERE x.item IS NULL OR y.item IS NULL OR NOT audit_eq('exact', x.field, x.item, y.item)
             )
        SELECT d.source, d.conversation_id, c.title,
               list(DISTINCT d.field ORDER BY d.field) AS fields_that_differ
        FROM d JOIN conversations AS c ON c.source = d.source AND c.id = d.conversation_id
        GROUP BY ALL ORDER BY d.source, d.conversation_id
        """,
        [ra.reads, source, rb.reads, source],
    ).df()


_FIELDS = (("llm", "_harnessMessages"), ("display", "messages"), ("pending", "pendingSubagentResults"))


def diff_df(
    blob: dict[str, Any],
    entries: Sequence[Any],
    policy: Policy = "0.58",
    compare: Comparison | Normaliser = "exact",
) -> pd.DataFrame:
    """Blob and served conversation side by side, aligned item by item, divergences marked.

    One row per aligned pair per field (``llm``, ``display``, ``pending``),
    in order: common prefix, changed pairs, leftovers, common suffix.
    ``status`` is ``match``, ``changed``,
    ``missing_in_entries`` (blob only) or ``extra_in_entries`` (served only);
    ``entries`` / ``blob`` show the role:text projection (or the result JSON).
    Alignment and counts are those of :func:`parity_df` (:func:`align`).
    """
    from poncho_replay.rebuild import rebuild_conversation, sorted_entries

    served = rebuild_conversation(blob, sorted_entries(entries), policy=policy, cutover=True)
    rows: list[dict[str, Any]] = []
    for field, key in _FIELDS:
        ours = served.get(key) or []
        theirs = blob.get(key) or []
        for status, i, j in aligned_pairs(align(ours, theirs, equality(field, compare))):
            rows.append(
                {
                    "field": field,
                    "entries_position": i,
                    "blob_position": j,
                    "status": status,
                    "entries": None if i is None else _preview(field, ours[i]),
                    "blob": None if j is None else _preview(field, theirs[j]),
                }
            )
    return pd.DataFrame(rows, columns=["field", "entries_position", "blob_position", "status", "entries", "blob"])


class ParityReport(pd.DataFrame):
    """The :func:`parity_df` table, rendered in Jupyter with verdict colours and cause badges.

    It is a DataFrame in every other respect; a slice that lost the audit
    columns (``report[["conversation_id", "causes"]]``) renders as a plain
    table. Only the first :data:`~poncho_replay.display.html.PARITY_SHOWN`
    rows are drawn, under a "showing N of M" line: a fleet's report is
    thousands of rows.
    """

    _LINE_COLUMNS: ClassVar[frozenset[str]] = frozenset({"conversation_id", "verdict"})
    """Without these a slice is no longer a parity report, just a table."""

    _metadata: ClassVar[list[str]] = []

    @property
    def _constructor(self) -> type[ParityReport]:
        return ParityReport

    def summary(self) -> pd.DataFrame:
        """Conversations counted by verdict, harness verdict and cause."""
        return parity_summary_df(self)

    def _repr_html_(self) -> str | None:  # type: ignore[override]
        if not self._LINE_COLUMNS <= set(self.columns):
            return pd.DataFrame(self)._repr_html_()
        try:
            from poncho_replay.display.html import PARITY_SHOWN, parity_table_html

            rows = pd.DataFrame(self.head(PARITY_SHOWN)).to_dict("records")
            return parity_table_html(rows, total=len(self))
        except Exception:  # noqa: BLE001 - a notebook display must never raise
            return pd.DataFrame(self)._repr_html_()
