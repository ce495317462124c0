"""Altair charts of compaction: one conversation's timeline over seq, and a fleet overview.

Charts are returned, never displayed: a notebook shows the value, a script
saves it with :func:`save_chart` (PNG/SVG/HTML, offline through
vl-convert). Data is inlined once, as the chart's top-level named datasets (``messages``, ``spans``,
``compactions``, ``blob``, ``per_conversation``, ``causes``) so a test or a
reader can find exactly what is drawn in ``chart.to_dict()``.

Altair and vl-convert are the ``notebook`` extra; importing this module
without them works, calling a chart function names what to install.

Example:
    >>> chart = compaction_chart(entries, blob)  # doctest: +SKIP
    >>> save_chart(chart, "compaction.png")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from poncho_replay._js import printed
from poncho_replay.display.frames import compactions_df, messages_df
from poncho_replay.display.preview import short_id
from poncho_replay.models import HarnessModel
from poncho_replay.rebuild import EntryLike, sorted_entries

if TYPE_CHECKING:
    import altair as alt

__all__ = ["chart_spec", "compaction_chart", "fleet_compaction_chart", "save_chart"]

MESSAGES_LANE = "harness messages"
BLOB_LANE = "blob _harnessMessages"
KIND_COLORS = {
    "user": "#0969da",
    "assistant": "#57606a",
    "tool": "#bf8700",
    "system": "#8250df",
    "summarized": "#d0d7de",
    "kept (logged firstKeptSeq)": "#2da44e",
    "kept (blob)": "#fb8f44",
}
"""One colour scale for message roles and range kinds, so the chart has one legend."""
SAVED = "tokens saved (before − after)"
"""The fleet chart's tokens panel: its axis title and its one legend entry."""
WITH_CAUSE = "conversations with the cause"
"""The fleet chart's causes panel legend entry."""
HALF_CELL = 0.45
"""Bars span seq ± this, so adjacent seqs read as one continuous range."""


def _altair() -> Any:
    try:
        import altair as alt
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError("charts need Altair: pip install 'poncho_replay[notebook]'") from exc
    return alt


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts (pandas NA and NaN become None)."""
    out = df.astype(object).where(df.notna(), None).to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in out]


UNKNOWN = "unknown"
"""What a chart says for a token count the log does not hold (never a bare "?")."""


def _tokens_label(before: Any, after: Any) -> str:
    """A compaction's tokens as the harness logged them: both, before only, or neither.

    The harness records ``tokensBefore`` and, only sometimes, ``tokensAfter``
    (DESIGN, "Compaction tokens"); a missing count is named as unknown.
    """
    if before is None and after is None:
        return f"tokens {UNKNOWN}"
    if after is None:
        return f"{before:,.0f} tokens before; after {UNKNOWN}"
    if before is None:
        return f"before {UNKNOWN}; {after:,.0f} tokens after"
    return f"{before:,.0f} → {after:,.0f} tokens (saved {before - after:,.0f})"


def compaction_chart(
    entries: Iterable[EntryLike],
    blob: Mapping[str, Any] | HarnessModel | None = None,
    *,
    title: str | None = None,
    width: int = 640,
) -> alt.LayerChart:
    """One conversation's compactions on a timeline over seq.

    Lanes, top to bottom: the harness messages (colour = role, faded when
    not in the final LLM context); one lane per compaction, layered ones
    stacked in seq order, with its summarized range, its kept range from
    ``firstKeptSeq``, a diamond at the compaction entry annotated with
    tokens before → after, and a tick where ``firstKeptSeq`` points; and,
    with a blob, what the blob really kept, labelled with whether the
    logged guess matches.

    Args:
        entries: the conversation's log (models or harness dicts).
        blob: the stored conversation, to compare the guess with what it kept.
        title: chart title; defaults to the blob's title.
        width: chart width in pixels.
    """
    alt = _altair()
    ordered = sorted_entries(entries)
    data = (blob.to_dict() if isinstance(blob, HarnessModel) else blob) if blob is not None else {}
    comp = compactions_df(ordered, blob)
    msgs = messages_df(ordered)
    msgs = msgs[msgs["type"] == "harness_message"].assign(lane=MESSAGES_LANE)
    lanes = [MESSAGES_LANE] + [f"compaction {r.layer} @ seq {r.seq}" for r in comp.itertuples()]

    spans: list[dict[str, Any]] = []
    marks: list[dict[str, Any]] = []
    for r, lane in zip(_records(comp), lanes[1:]):
        if r["summarized_from"] is not None:
            spans.append(
                {
                    "lane": lane,
                    "kind": "summarized",
                    "start": r["summarized_from"],
                    "end": r["summarized_to"],
                    "count": r["summarized_count"],
                }
            )
        if r["kept_from"] is not None:
            spans.append(
                {
                    "lane": lane,
                    "kind": "kept (logged firstKeptSeq)",
                    "start": r["kept_from"],
                    "end": r["kept_to"],
                    "count": r["kept_count"],
                }
            )
        label = _tokens_label(r["tokens_before"], r["tokens_after"])
        marks.append({**r, "lane": lane, "label": label})

    blob_rows: list[dict[str, Any]] = []
    latest = marks[-1] if marks else None
    harness_seqs = msgs["seq"].tolist()
    if blob is not None and latest is not None:
        lanes.append(BLOB_LANE)
        real = latest["blob_first_kept_seq"]
        if real is None:
            note = "the blob's first kept message was never logged"
        elif latest["guess_matches_blob"]:
            note = f"blob kept from seq {real}: matches the logged guess"
        else:
            note = f"blob kept from seq {real}; the log guessed {latest['first_kept_seq']}"
        kept = [s for s in harness_seqs if real is not None and s >= real]
        if kept:
            spans.append(
                {
                    "lane": BLOB_LANE,
                    "kind": "kept (blob)",
                    "start": kept[0],
                    "end": kept[-1],
                    "count": len(kept),
                }
            )
        blob_rows.append(
            {
                "lane": BLOB_LANE,
                "seq": real if real is not None else 0,
                "note": note,
                "differs": latest["guess_matches_blob"] is not True,
            }
        )

    last = ordered[-1]["seq"] if ordered else 1
    x_scale = alt.Scale(domain=[0, last + 2], nice=False)  # room for the last label
    x_axis = alt.Axis(title="seq", tickMinStep=1, format="d")
    y = alt.Y("lane:N", sort=lanes, title=None, axis=alt.Axis(labelLimit=220))
    color = alt.Color(
        "kind:N",
        scale=alt.Scale(domain=list(KIND_COLORS), range=list(KIND_COLORS.values())),
        title=None,
    )

    datasets: dict[str, list[dict[str, Any]]] = {
        "messages": _records(msgs.drop(columns=["text"])),
        "spans": spans,
        "compactions": marks,
        "blob": blob_rows,
    }

    points = (
        alt.Chart(alt.NamedData("messages"))
        .transform_calculate(kind="datum.role")
        .mark_circle(size=90)
        .encode(
            x=alt.X("seq:Q", scale=x_scale, axis=x_axis),
            y=y,
            color=color,
            opacity=alt.Opacity(
                "in_llm_context:N",
                scale=alt.Scale(domain=[True, False], range=[1.0, 0.3]),
                title="in final LLM context",
            ),
            tooltip=["seq:Q", "role:N", "in_llm_context:N", "preview:N"],
        )
    )
    bars = (
        alt.Chart(alt.NamedData("spans"))
        .transform_calculate(x0=f"datum.start - {HALF_CELL}", x1=f"datum.end + {HALF_CELL}")
        .mark_bar(height=14, cornerRadius=3, opacity=0.85)
        .encode(
            x=alt.X("x0:Q", scale=x_scale, axis=x_axis),
            x2="x1:Q",
            y=y,
            color=color,
            tooltip=["lane:N", "kind:N", "start:Q", "end:Q", "count:Q"],
        )
    )
    comp_data = alt.NamedData("compactions")
    rule = (
        alt.Chart(comp_data)
        .mark_rule(strokeDash=[4, 3], color="#cf222e")
        .encode(x=alt.X("seq:Q", scale=x_scale))
    )
    diamond = (
        alt.Chart(comp_data)
        .mark_point(shape="diamond", filled=True, size=140, color="#cf222e")
        .encode(
            x=alt.X("seq:Q", scale=x_scale),
            y=y,
            tooltip=[
                "seq:Q",
                "first_kept_seq:Q",
                "tokens_before:Q",
                "tokens_after:Q",
                "tokens_saved:Q",
            ],
        )
    )
    tokens = (
        alt.Chart(comp_data)
        .mark_text(align="left", dx=8, dy=-13, fontSize=11, color="#cf222e")
        .encode(x=alt.X("seq:Q", scale=x_scale), y=y, text="label:N")
    )
    first_kept_label = (
        alt.Chart(comp_data)
        .transform_calculate(text="'firstKeptSeq ' + datum.first_kept_seq")
        .mark_text(dy=19, fontSize=10, color="#1f2328")
        .encode(x=alt.X("first_kept_seq:Q", scale=x_scale), y=y, text="text:N")
    )
    first_kept = (
        alt.Chart(comp_data)
        .mark_tick(thickness=3, size=26, color="#1f2328")
        .encode(x=alt.X("first_kept_seq:Q", scale=x_scale), y=y, tooltip=["first_kept_seq:Q"])
    )
    layers = [bars, rule, points, diamond, tokens, first_kept, first_kept_label]
    if blob_rows:
        note_color = "#cf222e" if blob_rows[0]["differs"] else "#116329"
        layers.append(
            alt.Chart(alt.NamedData("blob"))
            .transform_calculate(x="0.2")
            .mark_text(align="left", dy=-14, fontSize=11, fontWeight="bold", color=note_color)
            .encode(x=alt.X("x:Q", scale=x_scale), y=y, text="note:N")
        )
    name = title or data.get("title") or "conversation"
    subtitle = (
        f"{len(comp)} compaction(s), {len(harness_seqs)} harness messages, {len(ordered)} entries"
    )
    return (
        alt.layer(*layers)
        .properties(
            width=width,
            height=alt.Step(44),
            title=alt.Title(f"Compaction: {name}", subtitle=subtitle),
            datasets=datasets,
        )
        .configure_legend(orient="bottom", columns=4)
    )


def fleet_compaction_chart(
    compactions: pd.DataFrame,
    parity: pd.DataFrame | None = None,
    *,
    top: int = 20,
) -> alt.VConcatChart | alt.HConcatChart:
    """Compactions per conversation, tokens saved, and (with an audit) divergence causes.

    One bar per conversation, never per title: two conversations that share a
    title (from two sources, say) get labels told apart by short id (and
    source). Tokens saved are drawn where the log holds both counts; a
    conversation whose compactions lack ``tokensAfter`` reads "unknown" in
    that panel. Every colour is in a legend.

    Args:
        compactions: rows of :func:`~poncho_replay.display.frames.compactions_df`
            for many conversations (``conversation_id`` set; optional
            ``title`` and ``source`` columns label and separate the bars).
        parity: optional audit rows with ``conversation_id`` and ``causes``
            (a list of str per row); adds a bar per cause.
        top: conversations shown, those with the most compactions first.
    """
    alt = _altair()
    per = _per_conversation(compactions).head(top)
    order = per["label"].tolist()
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=200))
    datasets = {"per_conversation": _records(per)}
    base = alt.Chart(alt.NamedData("per_conversation"))
    counts = base.mark_bar().encode(
        x=alt.X("compactions:Q", title="compactions", axis=_integer_axis(per["compactions"].max())),
        y=y,
        color=alt.Color(
            "guess:N",
            title="logged firstKeptSeq vs blob",
            scale=alt.Scale(
                domain=["differs", "matches", UNKNOWN], range=["#cf222e", "#2da44e", "#afb8c1"]
            ),
        ),
        tooltip=["conversation_id:N", "compactions:Q", "guess_differs:Q"],
    )
    saved_y = alt.Y("label:N", sort=order, title=None, axis=None)
    most_saved = per["tokens_saved"].max()
    saved_x = alt.Scale(
        domain=[0, float(most_saved) if pd.notna(most_saved) and most_saved > 0 else 1]
    )
    saved_bars = (
        base.transform_filter("isValid(datum.tokens_saved)")
        .transform_calculate(measure=f"'{SAVED}'")
        .mark_bar()
        .encode(
            x=alt.X("tokens_saved:Q", title=SAVED, scale=saved_x),
            y=saved_y,
            color=alt.Color(
                "measure:N", title="tokens", scale=alt.Scale(domain=[SAVED], range=["#0969da"])
            ),
            tooltip=["conversation_id:N", "tokens_saved:Q", "tokens_saved_label:N"],
        )
    )
    saved_unknown = (
        base.transform_filter("!isValid(datum.tokens_saved)")
        .transform_calculate(zero="0")
        .mark_text(align="left", dx=4, fontStyle="italic", color="#59636e")
        .encode(
            x=alt.X("zero:Q", title=SAVED, scale=saved_x),
            y=saved_y,
            text="tokens_saved_label:N",
            tooltip=["conversation_id:N", "tokens_saved_label:N"],
        )
    )
    top_row = (
        alt.hconcat(counts, alt.layer(saved_bars, saved_unknown))
        .resolve_scale(color="independent")
        .properties(title=f"Compaction across {len(per)} conversation(s)")
    )
    if parity is None:
        return top_row.properties(datasets=datasets)
    causes = _cause_counts(parity)
    datasets["causes"] = _records(causes)
    cause_bars = (
        alt.Chart(alt.NamedData("causes"))
        .transform_calculate(measure=f"'{WITH_CAUSE}'")
        .mark_bar()
        .encode(
            x=alt.X(
                "conversations:Q",
                title="conversations",
                axis=_integer_axis(causes["conversations"].max()),
            ),
            y=alt.Y("cause:N", sort="-x", title=None),
            color=alt.Color(
                "measure:N", title="causes", scale=alt.Scale(domain=[WITH_CAUSE], range=["#8250df"])
            ),
            tooltip=["cause:N", "conversations:Q"],
        )
        .properties(title="Divergence causes")
    )
    return (
        alt.vconcat(top_row, cause_bars)
        .resolve_scale(color="independent")
        .properties(datasets=datasets)
    )


def _integer_axis(highest: Any) -> alt.Axis:
    """An axis of whole counts: ticks at integers only (at most about ten)."""
    alt = _altair()
    top = int(highest) if pd.notna(highest) else 1
    step = max(1, -(-top // 10))
    return alt.Axis(values=list(range(0, top + step, step)), format="d")


def _per_conversation(compactions: pd.DataFrame) -> pd.DataFrame:
    """Count, tokens saved and guess-vs-blob per conversation, most compactions first.

    Grouped by ``(source, conversation_id)`` when a ``source`` column is
    there, else by ``conversation_id``; never by title. ``tokens_saved`` is
    the sum over the conversation's compactions when every one of them logged
    both counts, else unknown (a partial sum would understate it).
    """
    df = compactions.copy()
    for col in ("title", "source"):
        if col not in df:
            df[col] = None
    differs = (
        df["guess_matches_blob"].map(lambda v: v is False) if "guess_matches_blob" in df else False
    )
    known = df["guess_matches_blob"].notna() if "guess_matches_blob" in df else False
    df = df.assign(_differs=differs, _known=known, _source=df["source"].fillna(""))
    per = (
        df.groupby(["_source", "conversation_id"], sort=False, dropna=False)
        .agg(
            source=("source", "first"),
            title=("title", "first"),
            compactions=("seq", "size"),
            tokens_saved=("tokens_saved", lambda s: s.sum() if s.notna().all() else None),
            guess_differs=("_differs", "sum"),
            guess_known=("_known", "sum"),
        )
        .reset_index()
        .drop(columns="_source")
    )
    per["tokens_saved"] = per["tokens_saved"].astype("Float64")
    per["tokens_saved_label"] = [
        f"{v:,.0f}" if pd.notna(v) else f"{UNKNOWN} (tokensAfter not logged)"
        for v in per["tokens_saved"]
    ]
    per["label"] = _labels(per)
    per["guess"] = [
        "differs" if d else "matches" if k else UNKNOWN
        for d, k in zip(per["guess_differs"], per["guess_known"])
    ]
    return per.sort_values(
        ["compactions", "conversation_id"], ascending=[False, True], kind="stable"
    )


def _labels(per: pd.DataFrame) -> list[str]:
    """One distinct bar label per conversation: its title, told apart by short id, then source."""
    plain = [
        t if isinstance(t, str) and t else short_id(c)
        for t, c in zip(per["title"], per["conversation_id"])
    ]
    with_id = [
        p if plain.count(p) == 1 else f"{p} ({short_id(c)})"
        for p, c in zip(plain, per["conversation_id"])
    ]
    return [w if with_id.count(w) == 1 else f"{w} [{s}]" for w, s in zip(with_id, per["source"])]


def _cause_counts(parity: pd.DataFrame) -> pd.DataFrame:
    """Conversations per divergence cause (a conversation counts once per cause)."""
    pairs = {
        (cid, str(c))
        for cid, cs in zip(parity["conversation_id"], parity["causes"])
        if cs is not None
        for c in cs
    }
    counts = pd.Series([c for _, c in pairs], dtype=object).value_counts()
    return pd.DataFrame({"cause": counts.index.astype(str), "conversations": counts.to_numpy()})


def chart_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """``chart.to_dict()`` with its text as it is printed: lone surrogates as U+FFFD (SPEC §9).

    A chart is plain text once drawn, and vl-convert, like any UTF-8 writer,
    refuses a lone surrogate (a title holding half an emoji).
    """
    return json.loads(printed(json.dumps(chart.to_dict(), ensure_ascii=False)))


def save_chart(chart: alt.TopLevelMixin, path: str | Path, *, scale: float = 2.0) -> Path:
    """Write a chart offline: ``.png``, ``.svg`` or a self-contained ``.html`` (JS bundled).

    vl-convert renders in-process with no network: external data URLs are
    refused, and the HTML inlines Vega's JavaScript, so files open anywhere.
    """
    import vl_convert as vlc

    out = Path(path)
    spec = chart_spec(chart)
    suffix = out.suffix.lower()
    if suffix == ".png":
        out.write_bytes(vlc.vegalite_to_png(spec, scale=scale, allowed_base_urls=[]))
    elif suffix == ".svg":
        out.write_text(vlc.vegalite_to_svg(spec, allowed_base_urls=[]), encoding="utf-8")
    elif suffix == ".html":
        out.write_text(vlc.vegalite_to_html(spec, bundle=True), encoding="utf-8")
    else:
        raise ValueError(f"save_chart writes .png, .svg or .html, not {out.suffix!r}")
    return out
