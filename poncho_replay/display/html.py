"""Escaping-safe HTML views of conversations, entry logs, replay states and parity rows.

Every value that comes from data goes through :func:`html.escape`, so a
message holding ``<script>`` shows as text. File parts are named, never
inlined. The views are plain strings (embed them in a report, or wrap them
in :class:`~poncho_replay.display.rendered.Rendered` for a notebook).

The rebuild rules are not restated here: the rebuilt context, transcript and
pending results come from :mod:`poncho_replay.rebuild`, and which message or
result came from which entry is found by object identity on the dicts the
rebuild returns (plain dicts pass through it untouched).

Example:
    >>> from IPython.display import HTML  # doctest: +SKIP
    >>> HTML(conversation_html(blob, entries))  # doctest: +SKIP
"""

from __future__ import annotations

import html
import itertools
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from poncho_replay._js import truthy
from poncho_replay.compare import align, aligned_pairs, equality
from poncho_replay.display.preview import entry_text, file_parts, preview, safe_text, short_id
from poncho_replay.display.style import wrap
from poncho_replay.dualwrite import parity_check, project_text
from poncho_replay.models import HarnessModel, JsonDict
from poncho_replay.rebuild import (
    EntryLike,
    Policy,
    RebuildState,
    build_llm_context,
    pending_subagent_results,
    rebuild_conversation,
    sorted_entries,
)

__all__ = [
    "conversation_html",
    "entries_html",
    "first_divergence",
    "legend_html",
    "parity_row_html",
    "parity_table_html",
    "state_html",
    "summary_html",
    "unshowable_html",
]

MESSAGE_CHARS = 4000
"""Characters of one message shown in a transcript before it is cut."""
CELL_CHARS = 300
"""Characters of one message shown in a side-by-side diff cell."""
MAX_SHOWN = 200
"""Chat items and context messages a view renders; earlier ones are counted, so a
10,000-entry conversation stays light in a notebook."""
EQUAL_RUN_SHOWN = 2
"""Identical messages kept at each end of a long identical run in a diff."""


def _earlier_note(count: int, what: str) -> str:
    """The note that replaces all but the last :data:`MAX_SHOWN` items of a long view."""
    if count <= MAX_SHOWN:
        return ""
    return (
        f"<p><em>… {count - MAX_SHOWN:,} earlier {what} not shown (replay with .at(seq)).</em></p>"
    )


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _badge(text: str, cls: str = "") -> str:
    return f'<span class="pr-badge {cls}">{_e(text)}</span>'


def _cut(text: str, limit: int) -> str:
    return (
        text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more characters)"
    )


def _as_dict(blob: Mapping[str, Any] | HarnessModel) -> JsonDict:
    return blob.to_dict() if isinstance(blob, HarnessModel) else dict(blob)


# --- messages ---------------------------------------------------------------------


def _message_body(message: Any, limit: int = MESSAGE_CHARS) -> str:
    """Escaped text of a message plus a badge per file part (data never inlined)."""
    files = "".join(
        _badge(f"📎 {p.get('filename') or 'file'} ({p.get('mediaType', '?')})")
        for p in file_parts(message)
    )
    return _e(_cut(safe_text(message), limit)) + (f"<div>{files}</div>" if files else "")


def _bubble(role: Any, head: str, body: str, classes: str = "") -> str:
    role_cls = f"pr-role-{role}" if role in ("user", "assistant", "tool", "system") else "pr-event"
    return f'<div class="pr-msg {role_cls} {classes}"><div class="pr-head">{head}</div>{body}</div>'


def _is_summary(message: Any) -> bool:
    meta = message.get("metadata") if isinstance(message, dict) else None
    return isinstance(meta, dict) and meta.get("isCompactionSummary") is True


def _role(message: Any) -> str:
    return str(message.get("role", "?")) if isinstance(message, dict) else "?"


# --- the log as a chat --------------------------------------------------------------


def _transcript_html(ordered: list[JsonDict], highlight_seq: int | None = None) -> str:
    """The log as a chat: what users saw, plus hidden, amended and compaction markers.

    ``harness_message`` entries are the model's side and are shown in the
    LLM-context view instead.
    """
    amendments: dict[Any, list[JsonDict]] = {}
    assistant_ids = {e.get("id") for e in ordered if e.get("type") == "assistant_message"}
    for e in ordered:
        if e.get("type") == "assistant_amendment":
            amendments.setdefault(e.get("targetEntryId"), []).append(e)
    pending = {id(r) for r in pending_subagent_results(ordered)}
    out = []
    for e in ordered:
        seq = e.get("seq")
        step = " pr-step" if highlight_seq is not None and seq == highlight_seq else ""
        kind = e.get("type")
        head = f"seq {_e(seq)} · {_e(kind)}"
        if kind == "user_message":
            msg = e.get("message")
            if truthy(e.get("hidden")):
                out.append(
                    _bubble(
                        "user",
                        f"{head} {_badge('hidden: not displayed', 'pr-muted')}",
                        _message_body(msg),
                        "pr-hidden" + step,
                    )
                )
            else:
                out.append(_bubble("user", head, _message_body(msg), step))
        elif kind == "assistant_message":
            out.append(_assistant_bubble(e, head, amendments.get(e.get("id"), []), step))
        elif kind == "assistant_amendment" and e.get("targetEntryId") not in assistant_ids:
            note = _badge(
                f"amendment to unknown entry {short_id(e.get('targetEntryId'))}: ignored", "pr-warn"
            )
            out.append(_bubble("event", f"{head} {note}", _e(e.get("appendText") or ""), step))
        elif kind == "compaction":
            out.append(_compaction_bubble(e, head, step))
        elif kind == "subagent_result":
            result = e.get("result")
            state = (
                _badge("pending", "pr-warn")
                if id(result) in pending
                else _badge("consumed", "pr-ok")
            )
            task = result.get("task") if isinstance(result, dict) else None
            status = result.get("status") if isinstance(result, dict) else None
            out.append(
                _bubble(
                    "event",
                    f"{head} {state} {_badge(f'status {status}')} task: {_e(task)}",
                    _e(_cut(entry_text(e), MESSAGE_CHARS)),
                    step,
                )
            )
        elif kind == "callback_started":
            out.append(
                _bubble("event", f"{head} {_badge('callback turn')}", _e(entry_text(e)), step)
            )
    if not out:
        return "<p><em>No display entries.</em></p>"
    return f'{_earlier_note(len(out), "chat items")}<div class="pr-chat">{"".join(out[-MAX_SHOWN:])}</div>'


def _assistant_bubble(entry: JsonDict, head: str, amendments: list[JsonDict], step: str) -> str:
    msg = entry.get("message")
    content = msg.get("content") if isinstance(msg, dict) else None
    badges = ""
    if isinstance(content, list):
        badges += _badge("list content: the rebuild displays it as empty (quirk)", "pr-warn")
    if not isinstance(msg, dict):
        badges += _badge("no message: the display rebuild fails here", "pr-bad")
    body = _message_body(msg)
    for a in amendments:
        if a.get("appendText"):
            body += f'<span class="pr-amend" title="assistant_amendment seq {_e(a.get("seq"))}">{_e(a["appendText"])}</span>'
            badges += _badge(f"amended @ seq {a.get('seq')}", "pr-ok")
        else:
            badges += _badge(f"empty amendment @ seq {a.get('seq')}", "pr-muted")
    return _bubble("assistant", f"{head} {badges}", body, step)


def _compaction_bubble(entry: JsonDict, head: str, step: str) -> str:
    tokens = f"tokens {_fmt(entry.get('tokensBefore'))} → {_fmt(entry.get('tokensAfter'))}"
    marks = " ".join(
        [
            _badge("compaction summary", "pr-warn"),
            _badge(f"keeps harness seq ≥ {entry.get('firstKeptSeq')}"),
            _badge(tokens),
        ]
    )
    body = (
        f"<details><summary>summary</summary>{_message_body(entry.get('summaryMessage'))}</details>"
    )
    return _bubble("event", f"{head} {marks}", body, "pr-summary" + step)


def _fmt(value: Any) -> str:
    """A logged token count, or "unknown" (the harness often logs no ``tokensAfter``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "unknown"
    return f"{value:,.0f}"


# --- the model's side -----------------------------------------------------------------


def _context_html(ordered: list[JsonDict], highlight_seq: int | None = None) -> str:
    """The rebuilt LLM context, each message labelled with the seq it came from."""
    origin: dict[int, JsonDict] = {}
    for e in ordered:
        for key in ("message", "summaryMessage"):
            if isinstance(e.get(key), dict):
                origin[id(e[key])] = e
    rows = []
    for i, msg in enumerate(build_llm_context(ordered), start=1):
        src = origin.get(id(msg), {})
        seq = src.get("seq")
        marks = ""
        if src.get("type") == "compaction":
            marks += _badge(f"compaction summary (entry seq {seq})", "pr-warn")
        elif _is_summary(msg):
            marks += _badge("compaction summary (as a harness message)", "pr-warn")
        cls = "pr-row-step" if highlight_seq is not None and seq == highlight_seq else ""
        rows.append(
            f'<tr class="{cls}"><td>{i}</td><td>{_e(seq)}</td><td>{_e(_role(msg))}</td>'
            f'<td class="pr-cell">{marks}{_message_body(msg, CELL_CHARS)}</td></tr>'
        )
    if not rows:
        return "<p><em>Empty LLM context.</em></p>"
    return (
        _earlier_note(len(rows), "context messages")
        + '<table class="pr-table"><tr><th>#</th><th>from seq</th><th>role</th><th>text</th></tr>'
        + "".join(rows[-MAX_SHOWN:])
        + "</table>"
    )


# --- blob vs rebuild ----------------------------------------------------------------------


def _projection(message: Any) -> str:
    if isinstance(message, dict) and isinstance(message.get("content"), (str, list)):
        return project_text(message)
    return f"<malformed {type(message).__name__}>"


def _cell(index: int | None, message: Any) -> str:
    if index is None:
        return '<td></td><td class="pr-cell"><em>(absent)</em></td>'
    marks = _badge("compaction summary", "pr-warn") if _is_summary(message) else ""
    return (
        f'<td>{index + 1}</td><td class="pr-cell"><b>{_e(_role(message))}</b> {marks}'
        f"{_message_body(message, CELL_CHARS)}</td>"
    )


def _side_by_side(label: str, field: str, blob_side: Sequence[Any], rebuilt_side: Sequence[Any]) -> str:
    """Blob and rebuild lined up as the audit counts them (:func:`poncho_replay.compare.align`), or one line if equal.

    The same equality and the same aligned rows as ``parity()`` and
    ``diff()``: a field the audit calls diverged is never shown as agreeing.
    """
    lined = align(rebuilt_side, blob_side, equality(field))
    if lined.first_position is None:
        return f'<p class="pr-agree">✓ {_e(label)}: blob and rebuild agree ({len(blob_side)} messages).</p>'
    rows = []
    run: list[tuple[int, int]] = []

    def flush_run() -> None:
        if len(run) > 2 * EQUAL_RUN_SHOWN + 1:
            shown: list[tuple[int, int] | None] = [*run[:EQUAL_RUN_SHOWN], None, *run[-EQUAL_RUN_SHOWN:]]
        else:
            shown = list(run)
        for pair in shown:
            if pair is None:
                hidden = len(run) - 2 * EQUAL_RUN_SHOWN
                rows.append(f'<tr class="pr-row-eq"><td colspan="4"><em>… {hidden} identical messages …</em></td></tr>')
            else:
                rows.append(
                    f'<tr class="pr-row-eq">{_cell(pair[1], blob_side[pair[1]])}{_cell(pair[0], rebuilt_side[pair[0]])}</tr>'
                )
        run.clear()

    for status, i, j in aligned_pairs(lined):
        if status == "match":
            run.append((i, j))  # type: ignore[arg-type]
            continue
        flush_run()
        left = _cell(j, blob_side[j] if j is not None else None)
        right = _cell(i, rebuilt_side[i] if i is not None else None)
        rows.append(f'<tr class="pr-row-diff">{left}{right}</tr>')
    flush_run()
    counts = f"blob {len(blob_side)} vs rebuild {len(rebuilt_side)} messages, {lined.changed} changed"
    return (
        f"<h4>{_e(label)}: {_badge(counts, 'pr-bad')}</h4>"
        '<table class="pr-table"><tr><th>#</th><th>blob</th><th>#</th><th>rebuild</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _list_field(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


def _comparison_html(blob: JsonDict, rebuilt: JsonDict) -> str:
    parts = [
        _side_by_side(
            "display transcript (messages)",
            "display",
            _list_field(blob, "messages"),
            _list_field(rebuilt, "messages"),
        ),
        _side_by_side(
            "LLM context (_harnessMessages)",
            "llm",
            _list_field(blob, "_harnessMessages"),
            _list_field(rebuilt, "_harnessMessages"),
        ),
    ]
    pb, pr = blob.get("pendingSubagentResults"), rebuilt.get("pendingSubagentResults")
    if align(pr or [], pb or [], equality("pending")).first_position is None:
        parts.append(f'<p class="pr-agree">✓ pending subagent results agree ({len(pb or [])}).</p>')
    else:
        parts.append(
            f"<h4>pending subagent results: {_badge(f'blob {len(pb or [])} vs rebuild {len(pr or [])}', 'pr-bad')}</h4>"
            f"<pre>blob:    {_e(json.dumps(pb, ensure_ascii=False)[:CELL_CHARS])}\n"
            f"rebuild: {_e(json.dumps(pr, ensure_ascii=False)[:CELL_CHARS])}</pre>"
        )
    return "".join(parts)


# --- public views ----------------------------------------------------------------------------


def conversation_html(
    blob: Mapping[str, Any] | HarnessModel,
    entries: Iterable[EntryLike],
    *,
    policy: Policy = "0.58",
) -> str:
    """One conversation: header, the log as a chat, the LLM context, and blob vs rebuild.

    Args:
        blob: the conversation as stored (with ``_harnessMessages`` when known).
        entries: its entry log (models or harness dicts, any order).
        policy: the read-cutover policy whose rebuild is compared with the blob.

    Returns:
        Self-contained HTML. The harness's own parity verdict
        (``[entries-parity] ...``) is shown in the header.
    """
    data = _as_dict(blob)
    ordered = sorted_entries(entries)
    cid = data.get("conversationId", "")
    head = f"<h3>{_e(data.get('title', '(untitled)'))}</h3>"
    meta = (
        f'<div class="pr-meta">{_e(cid)} · owner {_e(data.get("ownerId"))} · tenant {_e(data.get("tenantId") or "default")}'
        f" · {len(ordered)} entries · policy {_e(policy)}</div>"
    )
    if not ordered:
        body = (
            f"<p>{_badge('no entries: pre-dual-write, the cutover falls back to the blob', 'pr-muted')}</p>"
            f"<h4>Blob transcript</h4>{_blob_chat(data)}"
        )
        return wrap(head + meta + body)
    check = parity_check(
        ordered, data.get("_harnessMessages"), _list_field(data, "messages"), conversation_id=cid
    )
    verdict = (
        _badge("harness parity OK", "pr-ok")
        if check.ok
        else _badge(f"harness parity MISMATCH ({len(check.mismatches)})", "pr-bad")
    )
    details = "".join(f"<li><code>{_e(m)}</code></li>" for m in check.mismatches)
    verdict_html = f"<div>{verdict}</div>" + (
        f"<details><summary>mismatches</summary><ul>{details}</ul></details>" if details else ""
    )
    rebuilt = rebuild_conversation(data, ordered, policy=policy, cutover=True)
    body = (
        verdict_html
        + f"<h4>Log as a chat</h4>{_transcript_html(ordered)}"
        + f"<details><summary>LLM context rebuilt from the log</summary>{_context_html(ordered)}</details>"
        + f"<h4>Blob vs rebuild (policy {_e(policy)})</h4>{_comparison_html(data, rebuilt)}"
    )
    return wrap(head + meta + body)


def unshowable_html(conversation_id: Any, reason: str, title: Any = None) -> str:
    """The card a conversation gets when its data cannot be rendered, so the views around it still render.

    A report over a fleet must not die on one odd conversation (JSON nested
    thousands of levels deep, say): that one shows this card saying why.
    """
    return wrap(
        f'<h3>{_e(title or "(untitled)")}</h3><div class="pr-meta">{_e(conversation_id)}</div>'
        f'<div class="pr-msg pr-event pr-unshowable">{_badge("not shown", "pr-warn")} '
        f"This conversation could not be shown: {_e(reason)}.</div>"
    )


def _blob_chat(data: JsonDict) -> str:
    bubbles = [
        _bubble(
            _role(m),
            f"#{i} · {_e(_role(m))}",
            _message_body(m),
            "pr-summary" if _is_summary(m) else "",
        )
        for i, m in enumerate(_list_field(data, "messages"), start=1)
    ]
    return (
        f'<div class="pr-chat">{"".join(bubbles)}</div>'
        if bubbles
        else "<p><em>No messages.</em></p>"
    )


def _entry_details(entry: JsonDict, seq_of_id: Mapping[Any, Any]) -> str:
    kind = entry.get("type")
    if kind == "user_message" and truthy(entry.get("hidden")):
        return _badge("hidden", "pr-muted")
    if kind == "assistant_amendment":
        target = entry.get("targetEntryId")
        if target in seq_of_id:
            return _badge(f"→ seq {seq_of_id[target]}")
        return _badge(f"→ unknown {short_id(target)}", "pr-warn")
    if kind == "compaction":
        tokens = f"{_fmt(entry.get('tokensBefore'))} → {_fmt(entry.get('tokensAfter'))}"
        return _badge(f"firstKeptSeq {entry.get('firstKeptSeq')}", "pr-warn") + _badge(
            f"tokens {tokens}"
        )
    if kind == "subagent_result" and isinstance(entry.get("result"), dict):
        return _badge(str(entry["result"].get("status")))
    return ""


def entries_html(
    entries: Iterable[EntryLike], *, highlight_seq: int | None = None, max_rows: int = 500
) -> str:
    """The entry log as a table: seq, type, turn, details, text preview.

    Args:
        entries: the log (models or dicts, any order).
        highlight_seq: a seq to highlight (the replay step).
        max_rows: rows shown; the rest is counted, not rendered, to keep notebooks light.
    """
    ordered = sorted_entries(entries)
    seq_of_id = {e.get("id"): e.get("seq") for e in ordered}
    rows = []
    for e in ordered[:max_rows]:
        msg = e.get("message") or e.get("summaryMessage")
        role = _role(msg) if isinstance(msg, dict) else ""
        cls = (
            ' class="pr-row-step"'
            if highlight_seq is not None and e.get("seq") == highlight_seq
            else ""
        )
        rows.append(
            f"<tr{cls}><td>{_e(e.get('seq'))}</td><td>{_badge(str(e.get('type')), _type_class(e.get('type')))}</td>"
            f"<td><code>{_e(short_id(e.get('turnId') or ''))}</code></td><td>{_e(role)}</td>"
            f'<td>{_entry_details(e, seq_of_id)}</td><td class="pr-cell">{_e(preview(entry_text(e)))}</td></tr>'
        )
    more = (
        f"<p><em>… {len(ordered) - max_rows:,} more entries not shown.</em></p>"
        if len(ordered) > max_rows
        else ""
    )
    return wrap(
        f'<div class="pr-meta">{len(ordered)} entries</div>'
        '<table class="pr-table"><tr><th>seq</th><th>type</th><th>turn</th><th>role</th><th>details</th><th>preview</th></tr>'
        + "".join(rows)
        + "</table>"
        + more
    )


def _type_class(kind: Any) -> str:
    return {
        "compaction": "pr-warn",
        "assistant_amendment": "pr-ok",
        "subagent_result": "pr-muted",
        "callback_started": "pr-muted",
    }.get(str(kind), "")


def state_html(state: RebuildState) -> str:
    """What the log says at one seq (a replay step); the step's own entry is outlined."""
    compaction = state.latest_compaction
    facts = " · ".join(
        [
            f"{len(state.entries)} entries",
            f"{state.display.total_messages} displayed messages",
            f"{len(state.llm_context)} LLM-context messages",
            f"{len(state.pending_subagent_results)} pending subagent results",
            f"latest compaction: seq {compaction.get('seq')}" if compaction else "no compaction",
        ]
    )
    step = next((e for e in state.entries if e.get("seq") == state.seq), None)
    added = (
        f"step adds seq {state.seq}: {_badge(str(step.get('type')))}"
        if step
        else f"no entry at seq {state.seq}"
    )
    pending = "".join(
        f"<li>{_e(r.get('subagentId') if isinstance(r, dict) else r)}: {_e(preview(entry_text({'type': 'subagent_result', 'result': r})))}</li>"
        for r in state.pending_subagent_results
    )
    return wrap(
        f'<h3>State at seq {_e(state.seq)}</h3><div class="pr-meta">{_e(facts)}</div><div>{added}</div>'
        f"<h4>Log as a chat</h4>{_transcript_html(state.entries, state.seq)}"
        f"<h4>LLM context</h4>{_context_html(state.entries, state.seq)}"
        + (f"<h4>Pending subagent results</h4><ul>{pending}</ul>" if pending else "")
    )


# --- parity rows and summaries --------------------------------------------------------------

_VERDICT_CLASSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("mismatch", "diverg", "differ", "fail", "error", "bad"), "pr-bad"),
    (("partial", "stale", "warn"), "pr-warn"),
    (("ok", "match", "agree", "equal", "same", "pass"), "pr-ok"),
)
"""Verdict words to colours, checked in order ("mismatch" before "match")."""


def verdict_class(verdict: Any) -> str:
    """The badge class for a verdict: red, amber, green, else grey (blob-only, unknown)."""
    word = str(verdict).lower()
    for keys, cls in _VERDICT_CLASSES:
        if any(k in word for k in keys):
            return cls
    return "pr-muted"


def _cause_badge(cause: str) -> str:
    """A cause badge whose hue is fixed by the cause name, so it reads the same in every row."""
    hue = zlib.crc32(cause.encode()) % 360
    return f'<span class="pr-badge" style="background:hsl({hue},70%,90%);color:hsl({hue},60%,25%)">{_e(cause)}</span>'


def _causes(row: Mapping[str, Any]) -> list[str]:
    return [str(c) for c in _items(row.get("causes")) if c != ""]


PARITY_SHOWN = 100
"""Parity rows a notebook table renders; the rest are counted in a "showing N of M" line."""
PARITY_FIELDS = ("llm", "display", "pending")
"""The audit's compared fields, in the order a first divergence is told."""
_FIELD_COUNTS = ("entries", "blob", "matching", "changed", "missing_in_entries", "extra_in_entries")
_FIELD_WHERE = ("first_position", "first_seq_entries", "first_seq_blob")
_LINE_KEYS = frozenset(
    {"conversation_id", "title", "source", "verdict", "causes", "harness_verdict"}
    | {f"{f}_{c}" for f in PARITY_FIELDS for c in _FIELD_COUNTS + _FIELD_WHERE}
)
"""Keys the compact line (or the per-field table in its details) already shows."""


def _missing(value: Any) -> bool:
    """None, NaN or pandas NA: a cell with nothing in it (lists and arrays never are)."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _items(value: Any) -> list[Any]:
    """A list-like cell (list, tuple, numpy array) as a list; a scalar as one item; nothing as none."""
    if _missing(value):
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _cell_text(value: Any) -> str:
    """A cell as a reader wants it: lists as ``a, b`` (``none`` when empty), mappings as JSON."""
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, str) or not isinstance(value, Iterable):
        return str(value)
    return ", ".join(str(v) for v in value) or "none"


def first_divergence(row: Mapping[str, Any]) -> list[str]:
    """Where each diverged field starts to differ: ``llm #3 (seq 15)``, one string per field.

    The position is the item's index in the served list; the seq is the
    log's entry when the served side has one there, else the blob's item.
    The fields are those in ``diverged_fields`` (without that column, those
    with a first position), in :data:`PARITY_FIELDS` order.
    """
    named = {str(f) for f in _items(row.get("diverged_fields"))}
    out = []
    for field in PARITY_FIELDS:
        position = row.get(f"{field}_first_position")
        if field not in named if "diverged_fields" in row else _missing(position):
            continue
        seq = row.get(f"{field}_first_seq_entries")
        if _missing(seq):
            seq = row.get(f"{field}_first_seq_blob")
        where = "" if _missing(position) else f" #{position}"
        where += "" if _missing(seq) else f" (seq {seq})"
        out.append(f"{field}{where}")
    return out


def _field_table(row: Mapping[str, Any]) -> str:
    """The audit's per-field counts as a small table (only fields the row has)."""
    fields = [f for f in PARITY_FIELDS if f"{f}_entries" in row]
    if not fields:
        return ""
    head = "".join(f'<th class="pr-num">{_e(c.replace("_", " "))}</th>' for c in _FIELD_COUNTS)
    body = "".join(
        f"<tr><td>{_e(f)}</td>"
        + "".join(
            f'<td class="pr-num">{_e("" if _missing(row.get(f"{f}_{c}")) else row.get(f"{f}_{c}"))}</td>'
            for c in _FIELD_COUNTS
        )
        + "</tr>"
        for f in fields
    )
    return f'<table class="pr-table"><tr><th>field</th>{head}</tr>{body}</table>'


def _details(row: Mapping[str, Any]) -> str:
    """What one click opens under a parity line: the full id, the counts, the log line, the rest."""
    extras = "".join(
        f"<li>{_e(k)}={_e(preview(_cell_text(v), 200))}</li>"
        for k, v in row.items()
        if k not in _LINE_KEYS and k != "harness_log_line" and not _missing(v)
    )
    log_line = row.get("harness_log_line")
    return (
        f'<div class="pr-more"><div>conversation <code>{_e(row.get("conversation_id", ""))}</code></div>'
        + (
            f"<div>harness log line: <code>{_e(preview(str(log_line), CELL_CHARS))}</code></div>"
            if not _missing(log_line)
            else ""
        )
        + _field_table(row)
        + (f"<ul>{extras}</ul>" if extras else "")
        + "</div>"
    )


def _parity_cells(row: Mapping[str, Any], with_source: bool) -> str:
    verdict = row.get("verdict")
    verdict_cell = "" if _missing(verdict) else _badge(str(verdict), verdict_class(verdict))
    harness = row.get("harness_verdict")
    harness_cell = "" if _missing(harness) else _badge(str(harness), verdict_class(harness))
    title = row.get("title")
    summary = (
        f"<b>{_e(title if not _missing(title) and title else '(untitled)')}</b> "
        f'<code title="{_e(row.get("conversation_id", ""))}">{_e(short_id(row.get("conversation_id") or ""))}</code>'
    )
    source = f"<td>{_e(row.get('source'))}</td>" if with_source else ""
    return (
        f"<td>{verdict_cell}</td>"
        f"<td><details><summary>{summary}</summary>{_details(row)}</details></td>"
        f"{source}"
        f"<td>{''.join(_cause_badge(c) for c in _causes(row))}</td>"
        f"<td>{'<br>'.join(_e(d) for d in first_divergence(row))}</td>"
        f"<td>{harness_cell}</td>"
    )


def _parity_head(with_source: bool) -> str:
    source = "<th>source</th>" if with_source else ""
    return (
        f"<tr><th>verdict</th><th>conversation (click for details)</th>{source}<th>causes</th>"
        "<th>first divergence</th><th>harness</th></tr>"
    )


def parity_row_html(row: Mapping[str, Any]) -> str:
    """One parity-audit row: the compact line of :func:`parity_table_html`, details one click away.

    Designed for the audit's row dicts (``conversation_id``, ``verdict``,
    ``causes`` as a list of str, ``harness_log_line``, the per-field counts,
    and any extra keys, shown as ``key=value`` in the details).
    """
    with_source = "source" in row
    return wrap(
        f'<table class="pr-table">{_parity_head(with_source)}<tr>{_parity_cells(row, with_source)}</tr></table>'
    )


def parity_table_html(
    rows: Iterable[Mapping[str, Any]], *, total: int | None = None, limit: int = PARITY_SHOWN
) -> str:
    """Parity rows as one compact line each, the details one click away, capped at ``limit`` lines.

    A fleet audit has thousands of rows; a notebook cell rendering them all
    is slow and hundreds of screens tall, so only the first ``limit`` are
    drawn and a "showing N of M" line says so (the DataFrame keeps them all).

    Args:
        rows: audit row dicts (e.g. ``df.head(100).to_dict("records")``), in display order.
        total: how many rows the table stands for, when ``rows`` is already a head of it.
        limit: lines drawn at most.
    """
    shown = list(itertools.islice(rows, limit))
    total = len(shown) if total is None else total
    with_source = any("source" in r for r in shown)
    body = "".join(f"<tr>{_parity_cells(r, with_source)}</tr>" for r in shown)
    note = (
        f'<p class="pr-meta">showing {len(shown):,} of {total:,} conversations '
        "(the DataFrame holds every row: filter or sort it to see others)</p>"
        if total > len(shown)
        else f'<p class="pr-meta">{total:,} conversation{"" if total == 1 else "s"}</p>'
    )
    return wrap(f'{note}<table class="pr-table">{_parity_head(with_source)}{body}</table>')


LEGEND: tuple[tuple[str, str, str], ...] = (
    ("badge", "pr-ok", "match, harness OK, consumed, amended"),
    ("badge", "pr-bad", "diverged, harness MISMATCH, the rebuild fails here"),
    ("badge", "pr-warn", "pending, compaction, a harness quirk at work"),
    ("badge", "pr-muted", "hidden, blob only, unknown"),
    ("row", "pr-row-diff", "blob and rebuild differ"),
    ("row", "pr-row-eq", "blob and rebuild agree"),
    ("row", "pr-row-step", "the replay step's entry"),
    ("bubble", "pr-role-user", "user message"),
    ("bubble", "pr-role-assistant", "assistant message"),
    ("bubble", "pr-role-tool", "tool message"),
    ("bubble", "pr-event", "log event (subagent result, callback, system)"),
    ("bubble", "pr-summary", "compaction summary"),
    ("bubble", "pr-hidden", "hidden user message (not displayed)"),
    ("bubble", "pr-step", "the replay step's entry"),
    ("text", "pr-amend", "text an amendment appended"),
)
"""Every colour the HTML views use, with what it means: ``(kind, class, meaning)``."""


def legend_html() -> str:
    """What every colour in the views means, each shown with its own class so it cannot drift.

    Cause badges are not listed one by one: each cause keeps one hue of its
    own, fixed by its name (:func:`_cause_badge`), the same in every row.
    """
    items = []
    for kind, cls, meaning in LEGEND:
        if kind == "badge":
            mark = _badge(meaning, cls)
        elif kind == "row":
            mark = f'<table class="pr-table" style="display:inline-table;width:auto"><tr class="{cls}"><td>{_e(meaning)}</td></tr></table>'
        elif kind == "bubble":
            classes = cls if cls.startswith("pr-role-") else f"pr-event {cls}"
            mark = f'<span class="pr-msg {classes}" style="display:inline-block;margin:2px 0">{_e(meaning)}</span>'
        else:
            mark = f'<span class="{cls}">{_e(meaning)}</span>'
        items.append(f'<span class="pr-legend-item" data-legend="{cls}">{mark}</span>')
    causes = _cause_badge("cause") + " each cause keeps one colour of its own"
    return wrap(
        '<div class="pr-legend"><b>Colours:</b> '
        + " ".join(items)
        + f' <span class="pr-legend-item" data-legend="cause">{causes}</span></div>'
    )


def summary_html(items: Mapping[str, Any], title: str = "Summary") -> str:
    """A titled key/value table (a load summary: rows read, quarantined, ...)."""
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(f'{v:,}' if isinstance(v, int) and not isinstance(v, bool) else v)}</td></tr>"
        for k, v in items.items()
    )
    return wrap(f'<h3>{_e(title)}</h3><table class="pr-table">{rows}</table>')
