"""Rich tables for the ``poncho-replay`` command: what the library returns, drawn for a terminal.

Kept apart from :mod:`poncho_replay.cli` so the commands stay one library
call each, and so the tables can be reused by scripts (they take plain
DataFrames and summaries, not a workspace).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table
from rich.text import Text

from poncho_replay._js import json_dumps
from poncho_replay.audit import CAUSES
from poncho_replay.display.html import first_divergence
from poncho_replay.display.preview import preview, safe_text
from poncho_replay.rebuild import RebuildState
from poncho_replay.report import divergence_score
from poncho_replay.sources.ingest import LoadSummary

__all__ = [
    "TABLE_ROWS",
    "diff_table",
    "headline",
    "load_table",
    "messages_table",
    "parity_json",
    "parity_table",
    "pending_table",
    "rank_by_divergence",
    "summary_table",
]

_VERDICT_STYLE = {
    "match": "green",
    "diverged": "red",
    "OK": "green",
    "MISMATCH": "red",
    "threw": "magenta",
}
_FIELDS = ("llm", "display", "pending")
_JSON_COLUMNS = (
    "source", "conversation_id", "title", "entries", "verdict", "diverged_fields", "harness_verdict",
    "harness_mismatches", "harness_log_line", "causes", "evidence",
    *(f"{f}_{c}" for f in _FIELDS for c in (
        "entries", "blob", "matching", "changed", "missing_in_entries", "extra_in_entries",
        "first_position", "first_seq_entries", "first_seq_blob",
    )),
    "samples", "reproduce",
)  # fmt: skip
"""The audit's columns ``--json`` carries (every column of ``parity_df``, named so a rename fails loudly)."""


def _styled(value: str) -> Text:
    return Text(value, style=_VERDICT_STYLE.get(value, ""))


def load_table(summary: LoadSummary) -> Table:
    """Rows read, loaded, quarantined and anomalies of one load."""
    table = Table(title=f"load {summary.kind} {summary.source}", title_justify="left")
    table.add_column("section")
    table.add_column("what")
    table.add_column("rows", justify="right")
    for section, name, count in summary.rows():
        style = "yellow" if section in ("quarantined", "anomaly") else ""
        table.add_row(section, name, f"{count:,}", style=style)
    return table


def headline(report: pd.DataFrame, policy: str) -> str:
    """One sentence: how many conversations the policy serves differently, and the harness's view."""
    total = len(report)
    diverged = int((report["verdict"] == "diverged").sum())
    mismatch = int((report["harness_verdict"] != "OK").sum())
    return (
        f"{total} conversations: {diverged} served differently from their blob under policy {policy}; "
        f"the harness's own parity check flags {mismatch}."
    )


def summary_table(summary: pd.DataFrame) -> Table:
    """Conversations counted by era, verdict, harness verdict and cause (``parity_summary_df``)."""
    table = Table(title="By era, verdict and cause", title_justify="left")
    for name, justify in (
        ("era", "left"),
        ("verdict", "left"),
        ("harness", "left"),
        ("cause", "left"),
        ("conversations", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in summary.itertuples(index=False):
        table.add_row(
            row.era, _styled(row.verdict), _styled(row.harness_verdict), row.cause, str(row.conversations)
        )
    return table


TABLE_ROWS = 40
"""Conversations the audit table lists by default (the most diverged first); ``--all`` lists every one."""


def rank_by_divergence(report: pd.DataFrame) -> pd.DataFrame:
    """Diverged conversations first, the most diverging items on top; then by source and id."""
    return (
        report.assign(_diverged=report["verdict"] != "match", _score=divergence_score(report))
        .sort_values(
            ["_diverged", "_score", "source", "conversation_id"],
            ascending=[False, False, True, True],
            kind="stable",
        )
        .drop(columns=["_diverged", "_score"])
    )


def parity_table(report: pd.DataFrame, limit: int | None = None) -> Table:
    """One row per conversation: verdict, where it starts to differ, the harness verdict, the causes.

    With ``limit``, only that many rows are drawn, the most diverged first,
    and the caption says how many were left out and how to see them: a
    1,000-conversation fleet must not print a thousand-line table.
    """
    many_sources = report["source"].nunique() > 1
    total = len(report)
    if limit is not None:
        report = rank_by_divergence(report).head(limit)
    table = Table(title="Per conversation", title_justify="left")
    if len(report) < total:
        table.caption = (
            f"showing {len(report):,} of {total:,} conversations, the most diverged first; "
            "--all lists every one, --json gives every row"
        )
        table.caption_justify = "left"
    if many_sources:
        table.add_column("source", no_wrap=True)
    table.add_column("title")
    table.add_column("conversation id", no_wrap=True, min_width=36)
    table.add_column("entries", justify="right")
    table.add_column("verdict")
    table.add_column("first divergence", no_wrap=True)
    table.add_column("harness")
    table.add_column("causes", no_wrap=True, min_width=max(map(len, CAUSES)))
    for row in report.to_dict("records"):
        cells = [
            preview(str(row["title"]), 40),
            row["conversation_id"],
            str(row["entries"]),
            _styled(row["verdict"]),
            "\n".join(first_divergence(row)),
            _styled(row["harness_verdict"]),
            "\n".join(row["causes"]) if row["causes"] is not None else "",
        ]
        table.add_row(*([row["source"]] if many_sources else []), *cells)
    return table


def parity_json(report: pd.DataFrame, policy: str, compare: str, *, chunk: int = 5_000) -> Iterator[str]:
    """The audit as one JSON object (the settings, the counts, every row), as text in pieces.

    Joined, the pieces are ``json_dumps`` of ``{"policy", "compare",
    "conversations_total", "diverged", "harness_mismatch", "conversations":
    [row, ...]}``. Rows are converted ``chunk`` at a time: at ten million
    entries the rows as one list of dicts and one string would hold several
    copies of the report at once.
    """
    head = {
        "policy": policy,
        "compare": compare,
        "conversations_total": len(report),
        "diverged": int((report["verdict"] == "diverged").sum()),
        "harness_mismatch": int((report["harness_verdict"] != "OK").sum()),
        "conversations": [],
    }
    text = json_dumps(head, default=str)
    yield text[: -len("]}")]
    for start in range(0, len(report), chunk):
        part = report[list(_JSON_COLUMNS)].iloc[start : start + chunk]
        rows = [_plain(r) for r in part.astype(object).where(part.notna(), None).to_dict("records")]
        yield (", " if start else "") + json_dumps(rows, default=str)[1:-1]
    yield "]}"


def _plain(value: Any) -> Any:
    """numpy arrays and scalars to lists and Python numbers, recursively, for ``json.dumps``."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _text_cell(value: Any, limit: int = 60) -> str:
    """A preview of a DataFrame cell that may be missing (None or NaN)."""
    return "" if value is None or pd.isna(value) else preview(str(value), limit)


def diff_table(diff: pd.DataFrame, limit: int = 30) -> Table:
    """The aligned pairs that differ (``audit.diff_df`` rows whose status is not ``match``)."""
    differing = diff[diff["status"] != "match"]
    table = Table(
        title=f"Served vs blob: {len(differing)} of {len(diff)} aligned items differ",
        title_justify="left",
    )
    for name in ("field", "served #", "blob #", "status", "served (log)", "blob"):
        table.add_column(name)
    for row in differing.head(limit).itertuples(index=False):
        table.add_row(
            row.field,
            "" if pd.isna(row.entries_position) else str(int(row.entries_position)),
            "" if pd.isna(row.blob_position) else str(int(row.blob_position)),
            Text(row.status, style="red"),
            _text_cell(row.entries),
            _text_cell(row.blob),
        )
    if len(differing) > limit:
        table.caption = f"… {len(differing) - limit} more"
    return table


def messages_table(title: str, messages: Sequence[Any]) -> Table:
    """One line per message: position, role, text preview."""
    table = Table(title=f"{title} ({len(messages)})", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("role")
    table.add_column("text")
    for i, message in enumerate(messages):
        role = message.get("role", "?") if isinstance(message, Mapping) else "?"
        table.add_row(str(i), str(role), preview(safe_text(message), 100))
    return table


def pending_table(state: RebuildState) -> Table:
    """The pending subagent results at a replay step."""
    table = Table(
        title=f"Pending subagent results ({len(state.pending_subagent_results)})",
        title_justify="left",
    )
    for name in ("subagent", "task", "status"):
        table.add_column(name)
    for result in state.pending_subagent_results:
        table.add_row(
            str(result.get("subagentId")),
            preview(str(result.get("task", "")), 60),
            str(result.get("status")),
        )
    return table
