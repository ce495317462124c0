"""One self-contained HTML report of a workspace: sources, parity, compaction, worst cases.

The file opens from disk with no server and no network: CSS is inline,
charts are inline PNG data URIs rendered offline by vl-convert, and nothing is linked.
Every part comes from an existing view (the audit's :func:`~poncho_replay.audit.parity_df`,
the display package's HTML views and charts); this module only picks the rows
and lays the page out.

Without the ``notebook`` extra (Altair, vl-convert) the report is still
written, with a note where the charts would be.

Example:
    >>> ws = poncho_replay.open()                      # doctest: +SKIP
    >>> _ = ws.load(poncho_replay.bundled.sample_db())  # doctest: +SKIP
    >>> ws.report("report.html")                       # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from poncho_replay._js import printed
from poncho_replay.audit import CAUSES
from poncho_replay.display.html import legend_html, parity_table_html
from poncho_replay.display.style import wrap
from poncho_replay.display.views import ConversationView
from poncho_replay.rebuild import Policy

if TYPE_CHECKING:
    from poncho_replay.workspace import Workspace

__all__ = ["divergence_score", "write_report"]

PARITY_ROWS = 200
"""Parity rows the report lists (diverged first, most diverged on top); the rest are counted."""
PARITY_HIDDEN = ("samples",)
"""Audit columns the report's parity details leave out (the sample pairs stay in the DataFrame)."""
_DIVERGENCE_COUNTS = tuple(
    f"{field}_{count}"
    for field in ("llm", "display", "pending")
    for count in ("changed", "missing_in_entries", "extra_in_entries")
)

PAGE_CSS = """
body{margin:24px auto;max-width:1180px;padding:0 16px;background:#fff;color:#1f2328;
  font-family:system-ui,'DejaVu Sans',sans-serif}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
nav a{margin-right:14px}.headline{font-size:16px;padding:10px 14px;border-radius:8px;
  background:#f6f8fa;border:1px solid #d0d7de;margin:12px 0}
.chart img{max-width:100%;height:auto}.conv{border:1px solid #d0d7de;border-radius:8px;padding:8px 12px;
  margin:14px 0}.note{color:#59636e;font-style:italic}
"""


def _version() -> str:
    try:
        return metadata.version("poncho_replay")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "(source tree)"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def divergence_score(parity: pd.DataFrame) -> pd.Series:
    """How far each conversation diverges: its changed, missing and extra items, all fields."""
    present = [c for c in _DIVERGENCE_COUNTS if c in parity]
    if not present:
        return pd.Series(0, index=parity.index)
    return parity[present].fillna(0).sum(axis=1).astype(int)


def _sources_html(ws: Workspace, source: str | None) -> str:
    """One row per loaded source: conversations, entries by type, quarantine and anomalies."""
    rows = ws.con.execute(
        """
        WITH c AS (SELECT source, count(*) AS n FROM conversations GROUP BY 1),
        t AS (SELECT source, type, count(*) AS n FROM conversation_entries GROUP BY 1, 2),
        e AS (SELECT source, sum(n) AS n, string_agg(type || ' ' || n, ', ' ORDER BY n DESC, type) AS by_type
              FROM t GROUP BY 1),
        q AS (SELECT source, count(*) AS n, string_agg(DISTINCT reason, ', ') AS reasons FROM quarantine GROUP BY 1),
        a AS (SELECT source, count(*) AS n, string_agg(DISTINCT kind, ', ') AS kinds FROM anomalies GROUP BY 1)
        SELECT c.source, c.n, coalesce(e.n, 0), coalesce(e.by_type, ''), coalesce(q.n, 0), coalesce(q.reasons, ''),
               coalesce(a.n, 0), coalesce(a.kinds, '')
        FROM c LEFT JOIN e USING (source) LEFT JOIN q USING (source) LEFT JOIN a USING (source)
        WHERE ?::VARCHAR IS NULL OR c.source = ?
        ORDER BY c.source
        """,
        [source, source],
    ).fetchall()
    if not rows:
        return '<p class="note">Nothing loaded.</p>'
    head = "".join(
        f"<th>{h}</th>" for h in ("source", "conversations", "entries", "by type", "quarantined", "anomalies")
    )
    body = "".join(
        f"<tr><td>{_e(src)}</td><td>{n_conv}</td><td>{n_ent}</td><td>{_e(by_type)}</td>"
        f"<td>{n_q}{(' (' + _e(reasons) + ')') if reasons else ''}</td>"
        f"<td>{n_a}{(' (' + _e(kinds) + ')') if kinds else ''}</td></tr>"
        for src, n_conv, n_ent, by_type, n_q, reasons, n_a, kinds in rows
    )
    return wrap(f'<table class="pr-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')


def _headline(parity: pd.DataFrame, policy: str) -> str:
    verdicts = parity["verdict"].value_counts()
    harness = parity["harness_verdict"].value_counts()
    return (
        f'<div class="headline" id="headline"><b>{len(parity):,} conversations</b> audited under policy '
        f"<b>{_e(policy)}</b>: <b>{int(verdicts.get('match', 0)):,} match</b>, "
        f"<b>{int(verdicts.get('diverged', 0)):,} diverged</b>. The harness's own parity check would log "
        f"{int(harness.get('OK', 0)):,} OK, {int(harness.get('MISMATCH', 0)):,} MISMATCH"
        f" and {int(harness.get('threw', 0)):,} threw.</div>"
    )


def _causes_html(parity: pd.DataFrame) -> str:
    """Conversations per cause with what the cause means (a conversation counts once per cause)."""
    counts: dict[str, int] = {}
    for causes in parity["causes"]:
        for cause in set(causes if causes is not None else []):
            counts[str(cause)] = counts.get(str(cause), 0) + 1
    if not counts:
        return '<p class="note">No cause reported.</p>'
    rows = "".join(
        f"<tr><td><code>{_e(c)}</code></td><td>{n:,}</td><td>{_e(CAUSES.get(c, ''))}</td></tr>"
        for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return wrap(
        '<table class="pr-table"><tr><th>cause</th><th>conversations</th><th>meaning</th></tr>'
        f"{rows}</table>"
    )


def _parity_rows_html(parity: pd.DataFrame, score: pd.Series) -> str:
    """One line per conversation (never per title), diverged first, most diverged on top."""
    ranked = parity.assign(_diverged=parity["verdict"] != "match", _score=score).sort_values(
        ["_diverged", "_score", "source", "conversation_id"],
        ascending=[False, False, True, True],
        kind="stable",
    )
    columns = [c for c in parity.columns if c not in PARITY_HIDDEN]
    shown = pd.DataFrame(ranked[columns]).head(PARITY_ROWS).to_dict("records")
    more = len(ranked) - len(shown)
    note = (
        '<p class="note">The full table is <code>ws.parity()</code>.</p>' if more > 0 else ""
    )
    return parity_table_html(shown, total=len(ranked), limit=PARITY_ROWS) + note


def _chart_img(chart: Any, alt: str, scale: int = 2) -> str:
    """An Altair chart as an inline PNG data URI, rendered offline (no URL may be fetched).

    PNG rather than SVG: vl-convert lays text out with its own bundled font,
    and a browser drawing the SVG with another font clips long axis labels.
    """
    import vl_convert as vlc

    from poncho_replay.display.charts import chart_spec

    png = vlc.vegalite_to_png(chart_spec(chart), scale=scale, allowed_base_urls=[])
    width = int.from_bytes(png[16:20], "big") // scale  # the IHDR chunk's width field
    data = base64.b64encode(png).decode("ascii")
    return f'<div class="chart"><img alt="{_e(alt)}" width="{width}" src="data:image/png;base64,{data}"></div>'


def _conversation(
    ws: Workspace, conversation_id: str, source: str, policy: Policy = "0.58", *, title: Any = None
) -> ConversationView:
    """The conversation's view; when reading it fails, a view that shows why (a card) instead.

    ``Workspace.conversation`` already turns JSON nested too deep into such
    a view; any other failure of one conversation is caught here too, so a
    fleet's report always renders the rest.
    """
    try:
        return ws.conversation(conversation_id, source=source, policy=policy)
    except Exception as exc:  # noqa: BLE001 - one conversation must not take the report down
        reason = f"reading it failed ({type(exc).__name__}: {exc})"
        return ConversationView.unshowable(conversation_id, reason, title=title, policy=policy)


def _fleet_chart_html(ws: Workspace, parity: pd.DataFrame, source: str | None) -> str:
    """The fleet compaction chart over every conversation that has a compaction entry."""
    pairs = ws.con.execute(
        "SELECT DISTINCT source, conversation_id FROM conversation_entries "
        "WHERE type = 'compaction' AND (? IS NULL OR source = ?) ORDER BY 1, 2",
        [source, source],
    ).fetchall()
    if not pairs:
        return '<p class="note">No compaction entries in this workspace.</p>'
    frames, unshown = [], []
    for src, cid in pairs:
        view = _conversation(ws, cid, src)
        if view.problem is not None:
            unshown.append(f"{_e(view.blob.get('title') or cid)} ({_e(view.problem)})")
            continue
        frames.append(view.compactions_df().assign(title=view.blob.get("title"), source=src))
    skipped = f'<p class="note">Not charted: {"; ".join(unshown)}.</p>' if unshown else ""
    if not frames:
        return skipped
    compactions = pd.concat(frames, ignore_index=True)
    many_sources = compactions["source"].nunique() > 1
    per_conversation = sorted(
        (str(group["title"].iloc[0] or cid), src, cid, len(group))
        for (src, cid), group in compactions.groupby(["source", "conversation_id"], sort=False)
    )
    listed = ", ".join(
        f"{_e(title)} ({f'{_e(src)}, ' if many_sources else ''}{n})"
        for title, src, _cid, n in per_conversation
    )
    caption = (
        f"<p>{len(compactions):,} compaction(s) in {len(frames):,} conversation(s): {listed}.</p>"
        + skipped
    )
    try:
        from poncho_replay.display.charts import fleet_compaction_chart

        return caption + _chart_img(
            fleet_compaction_chart(compactions, parity), "fleet compaction chart"
        )
    except ImportError as exc:
        return caption + f'<p class="note">Charts skipped: {_e(exc)}</p>'


def _worst_html(
    ws: Workspace, parity: pd.DataFrame, score: pd.Series, worst: int, policy: Policy
) -> str:
    diverged = pd.DataFrame(parity).assign(divergence=score)[parity["verdict"] != "match"]
    top = diverged.sort_values(
        ["divergence", "conversation_id"], ascending=[False, True], kind="stable"
    ).head(worst)
    if top.empty:
        return '<p class="note">No conversation diverges.</p>'
    parts = []
    anchors: dict[str, int] = {}  # one id may be in several sources: each section keeps its own anchor
    for row in top.itertuples():
        view = _conversation(ws, row.conversation_id, row.source, policy, title=row.title)
        chart = ""
        if view.problem is None and any(e.get("type") == "compaction" for e in view.entries):
            try:
                chart = _chart_img(
                    view.compaction_chart(), f"compaction timeline of {view.blob.get('title')}"
                )
            except ImportError as exc:
                chart = f'<p class="note">Chart skipped: {_e(exc)}</p>'
            except Exception as exc:  # noqa: BLE001 - one conversation's chart must not take the report down
                chart = f'<p class="note">Chart skipped: {_e(type(exc).__name__)}: {_e(exc)}</p>'
        causes = ", ".join(str(c) for c in row.causes) or "none"
        anchors[row.conversation_id] = anchors.get(row.conversation_id, 0) + 1
        n = anchors[row.conversation_id]
        parts.append(
            f'<section class="conv" id="conv-{_e(row.conversation_id)}{f"-{n}" if n > 1 else ""}">'
            f'<p class="note">source {_e(row.source)} · {int(row.divergence):,} diverging items · '
            f"causes: {_e(causes)}</p>{view._repr_html_()}{chart}</section>"
        )
    return "".join(parts)


def write_report(
    ws: Workspace,
    path: str | Path,
    policy: Policy = "0.58",
    *,
    source: str | None = None,
    worst: int = 5,
    parity: pd.DataFrame | None = None,
) -> Path:
    """Write the report of ``ws`` to ``path`` (one HTML file) and return the path.

    Args:
        ws: the workspace, with its sources loaded.
        path: the file to write (its folder must exist).
        policy: the read-cutover policy audited against the blobs.
        source: report on one loaded source (default: all).
        worst: how many of the most diverged conversations to render in full.
        parity: an audit already computed for this policy and source (default: run it).
    """
    if parity is None:
        parity = ws.parity(policy, source=source)
    score = divergence_score(parity)
    sections = [
        ("parity-summary", "Parity summary", _headline(parity, policy) + _causes_html(parity)),
        (
            "parity-table",
            "Parity, conversation by conversation",
            legend_html() + _parity_rows_html(parity, score),
        ),
        ("compaction", "Compaction across the fleet", _fleet_chart_html(ws, parity, source)),
        (
            "worst",
            f"The {worst} most diverged conversations",
            _worst_html(ws, parity, score, worst, policy),
        ),
        ("sources", "Sources", _sources_html(ws, source)),
    ]
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title, _ in sections)
    body = "".join(f'<h2 id="{key}">{_e(title)}</h2>{content}' for key, title, content in sections)
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>poncho_replay parity report</title><style>{PAGE_CSS}</style></head><body>"
        f'<h1>poncho_replay parity report</h1><p class="note">poncho_replay {_e(_version())} · '
        f"policy {_e(policy)} · source {_e(source or 'all loaded sources')}</p><nav>{nav}</nav>{body}"
        "</body></html>"
    )
    out = Path(path)
    out.write_text(printed(page), encoding="utf-8")  # SPEC §9: a lone surrogate is written as U+FFFD
    return out
