"""Hypothesis strategies for harness-shaped data: messages, entries, logs, blobs.

Every strategy draws plain harness JSON (camelCase dicts, exactly what the
harness writes into ``payload`` / ``data``), so the same draw can feed the
Python models, the pure rebuild, a store or the SQL twin. They are built to
hit the quirks SPEC §3 and §5 name, not just the happy path:

- text with astral emoji (surrogate pairs in JavaScript), JavaScript
  whitespace (NBSP, U+3000, U+2028, U+FEFF, ...), characters that look
  like whitespace but are not ``\\s`` in JavaScript (U+0085, U+180E,
  U+200B), quotes, backslashes and control characters;
- message content as a string or as a part list (text and file parts),
  metadata with unknown keys, optional fields absent *or* explicitly null;
- entry logs with layered compactions whose ``firstKeptSeq`` points
  anywhere (before, at, after the compaction, past every harness message),
  amendments to known assistant ids, to other entries' ids and to unknown
  ids, hidden user messages, and ``consumedSeqs`` that name results before
  or after the callback, twice, or not at all.

Usage::

    from hypothesis import given
    from tests.strategies import entry_logs

    @given(entry_logs())
    def test_something(entries): ...

Logs are lists of stored entries with seq 1..n (sorted, gap-free, unique
ids ``f"{id_prefix}{seq}"``); pass distinct ``id_prefix`` values when
several logs go into one store, since entry ids are unique per table.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from poncho_replay.models import ENTRY_TYPES

JsonDict = dict[str, Any]

ROLES = ("user", "assistant", "system", "tool")

JS_WHITESPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
"""A sample of what JavaScript's ``\\s`` and ``trim()`` match (all of it is in ``_js``)."""
NOT_JS_WHITESPACE = "\x85\u180e\u200b"
"""Whitespace-looking characters JavaScript's ``\\s`` does NOT match (Python's ``\\s`` matches U+0085)."""
ASTRAL = ("😀", "🧳", "👍🏽", "🏳️‍🌈", "𝒜", "𐍈", "🇩🇪")
"""Characters outside the BMP (two UTF-16 code units each), alone and in ZWJ/flag sequences."""
TRICKY = "\"\\\x00\x01\x1f\x7f/<>&'é旅ß\u0301\u200d\u2029"
"""JSON-escaping and non-ASCII material: quotes, backslash, control chars, combining marks."""

BASE_TIME_MS = 1_772_600_000_000
"""Epoch milliseconds near the sample database's clock (2026-03-04)."""

_special_char = st.sampled_from(list(JS_WHITESPACE + NOT_JS_WHITESPACE + TRICKY) + list(ASTRAL))


def js_text(
    *, min_size: int = 0, max_size: int = 16, lone_surrogates: bool = False
) -> st.SearchStrategy[str]:
    """Text mixing ASCII, JavaScript whitespace, look-alikes, astral emoji and escapes.

    ``lone_surrogates=True`` also draws unpaired surrogates (valid in a
    JavaScript string, not encodable as UTF-8): use it only for pure string
    tests, never for data that goes into a database.
    """
    blacklist = () if lone_surrogates else ("Cs",)
    plain = st.characters(blacklist_categories=blacklist)
    pieces = st.one_of(st.text(alphabet="ab xy.\n", min_size=1, max_size=4), _special_char, plain)
    return (
        st.lists(pieces, min_size=min_size, max_size=max_size)
        .map("".join)
        .filter(lambda s: len(s) >= min_size)
    )


def json_values(*, max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values (finite numbers), for unknown keys and ``Any`` fields."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        js_text(max_size=6),
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=max_leaves,
    )


UNKNOWN_KEYS = (
    "_subagentCallback",
    "subagentId",
    "task",
    "_richToolResults",
    "x-custom",
    "Ünïcode",
)
"""Keys the harness (or a future version) writes that the models do not declare.

None of them is a snake_case field name: the models accept field names as
input too, so a key like ``turn_id`` would be read as ``turnId``.
"""


def unknown_keys(keys: tuple[str, ...] = UNKNOWN_KEYS) -> st.SearchStrategy[JsonDict]:
    """A few undeclared keys with arbitrary JSON values (must survive a round trip)."""
    return st.dictionaries(st.sampled_from(keys), json_values(max_leaves=3), max_size=2)


_PRESENCE = st.sampled_from(("absent", "null", "value", "value"))


def _optional(draw: st.DrawFn, out: JsonDict, key: str, value: st.SearchStrategy[Any]) -> None:
    """Leave ``key`` absent, set it to null, or set it to a drawn value."""
    choice = draw(_PRESENCE)
    if choice == "null":
        out[key] = None
    elif choice == "value":
        out[key] = draw(value)


@st.composite
def text_parts(draw: st.DrawFn) -> JsonDict:
    """A ``{"type": "text", "text": ...}`` part."""
    return {"type": "text", "text": draw(js_text(max_size=10))}


@st.composite
def file_parts(draw: st.DrawFn) -> JsonDict:
    """A file part: inline base64, a data: URI or an upload reference; filename optional."""
    part: JsonDict = {
        "type": "file",
        "data": draw(
            st.sampled_from(
                ("iVBORw0KGgo=", "data:image/png;base64,AAAA", "poncho-upload://u/1.pdf")
            )
        ),
        "mediaType": draw(st.sampled_from(("image/png", "application/pdf", "text/plain"))),
    }
    if draw(st.booleans()):
        part["filename"] = draw(js_text(min_size=1, max_size=8))
    return part


_METADATA_FIELDS: tuple[tuple[str, st.SearchStrategy[Any]], ...] = (
    ("id", st.text(alphabet="0123456789abcdef-", min_size=1, max_size=12)),
    ("timestamp", st.integers(BASE_TIME_MS, BASE_TIME_MS + 10**9)),
    ("tokenCount", st.integers(0, 10**6) | st.floats(0, 1e6)),
    ("step", st.integers(0, 50)),
    ("runId", st.text(alphabet="run-0123456789", min_size=1, max_size=10)),
    ("toolActivity", st.lists(js_text(max_size=6), max_size=3)),
    (
        "sections",
        st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(("text", "tools")),
                    "content": js_text(max_size=6) | st.lists(js_text(max_size=6), max_size=2),
                }
            ),
            max_size=2,
        ),
    ),
    ("isCompactionSummary", st.booleans()),
)
_UNKNOWN = unknown_keys()


@st.composite
def metadata(draw: st.DrawFn) -> JsonDict:
    """Message metadata: some known keys (absent, null or set) plus unknown ones."""
    meta: JsonDict = {}
    for key, value in _METADATA_FIELDS:
        _optional(draw, meta, key, value)
    meta.update(draw(_UNKNOWN))
    return meta


@st.composite
def messages(
    draw: st.DrawFn,
    roles: tuple[str, ...] = ROLES,
    list_content: bool = True,
) -> JsonDict:
    """A harness ``Message``: string content or (when allowed) a part list.

    Part lists mix text and file parts (a list of files only has text ``""``).
    ``metadata`` is absent, null or a dict with unknown keys.
    """
    message: JsonDict = {"role": draw(st.sampled_from(roles))}
    if list_content and draw(st.integers(0, 3)) == 0:
        message["content"] = draw(st.lists(text_parts() | file_parts(), max_size=4))
    else:
        message["content"] = draw(js_text())
    _optional(draw, message, "metadata", metadata())
    return message


@st.composite
def pending_results(
    draw: st.DrawFn, subagent_ids: tuple[str, ...] = ("sa-1", "sa-2", "sa-3")
) -> JsonDict:
    """A ``PendingSubagentResult``; ``result``/``error`` absent, null or set."""
    result: JsonDict = {
        "subagentId": draw(st.sampled_from(subagent_ids)),
        "task": draw(js_text(max_size=12)),
        "status": draw(st.sampled_from(("completed", "error", "stopped"))),
        "timestamp": draw(st.integers(BASE_TIME_MS, BASE_TIME_MS + 10**9)),
    }
    _optional(draw, result, "result", js_text(max_size=12) | json_values(max_leaves=3))
    _optional(draw, result, "error", js_text(max_size=12))
    result.update(
        draw(
            st.dictionaries(
                st.sampled_from(("conversationId", "x-extra")), js_text(max_size=5), max_size=1
            )
        )
    )
    return result


ENTRY_KINDS = ENTRY_TYPES
# Drawn more often than the rarer kinds, as in real logs.
_KIND_WEIGHTS = (3, 3, 1, 5, 1, 1, 1)
_USER_MESSAGES = messages(roles=("user", "user", "system"))
_ASSISTANT_MESSAGES = messages(roles=("assistant",))
_ANY_MESSAGES = messages()
_SUMMARY_MESSAGES = messages(roles=("user", "system"))
_RESULTS = pending_results()


@st.composite
def entry_logs(
    draw: st.DrawFn,
    *,
    min_size: int = 0,
    max_size: int = 25,
    kinds: tuple[str, ...] = ENTRY_KINDS,
    id_prefix: str = "e",
    unknown: bool = True,
) -> list[JsonDict]:
    """A stored entry log (seq 1..n, sorted) exercising every SPEC §3 rule.

    Args:
        min_size, max_size: bounds on the number of entries.
        kinds: entry types to draw from (e.g. only ``("harness_message",
            "compaction")`` for context-focused tests).
        id_prefix: prefix of the entry ids ``f"{id_prefix}{seq}"``.
        unknown: whether entries may carry undeclared top-level keys.
    """
    weighted = [k for k, w in zip(ENTRY_KINDS, _KIND_WEIGHTS) if k in kinds for _ in range(w)]
    n = draw(st.integers(min_size, max_size))
    created_at = BASE_TIME_MS + draw(st.integers(0, 10**6))
    entries: list[JsonDict] = []
    assistant_ids: list[str] = []
    result_seqs: list[int] = []
    turn = "turn-0"
    for seq in range(1, n + 1):
        kind = draw(st.sampled_from(weighted))
        created_at += draw(st.integers(0, 5000))
        entry: JsonDict = {
            "id": f"{id_prefix}{seq}",
            "seq": seq,
            "createdAt": created_at,
            "type": kind,
        }
        if kind == "user_message":
            turn = f"turn-{seq}"
            entry["message"] = draw(_USER_MESSAGES)
            entry["turnId"] = turn
            _optional(draw, entry, "hidden", st.booleans())
        elif kind == "assistant_message":
            entry["message"] = draw(_ASSISTANT_MESSAGES)
            entry["turnId"] = turn
            entry["runId"] = f"run-{seq}"
            assistant_ids.append(entry["id"])
        elif kind == "assistant_amendment":
            known = [*assistant_ids, *(e["id"] for e in entries)]
            targets = st.sampled_from(known) if known else st.nothing()
            entry["targetEntryId"] = draw(
                st.one_of(
                    st.sampled_from(assistant_ids) if assistant_ids else st.nothing(),
                    targets,
                    st.just(f"{id_prefix}{n + 1}"),  # a future id never written
                    st.just("unknown-target"),
                )
            )
            _optional(draw, entry, "appendText", st.just("") | js_text(max_size=8))
        elif kind == "harness_message":
            entry["message"] = draw(_ANY_MESSAGES)
            entry["turnId"] = turn
        elif kind == "compaction":
            entry["summaryMessage"] = draw(_SUMMARY_MESSAGES)
            entry["firstKeptSeq"] = draw(
                st.integers(0, n + 3)
            )  # before, at, after, past everything
            _optional(draw, entry, "tokensBefore", st.integers(0, 200_000))
            _optional(draw, entry, "tokensAfter", st.integers(0, 200_000))
        elif kind == "subagent_result":
            entry["result"] = draw(_RESULTS)
            result_seqs.append(seq)
        else:  # callback_started: earlier results, later seqs, repeats, nonsense
            any_seq = st.integers(1, n + 2)
            pick = st.sampled_from(result_seqs) | any_seq if result_seqs else any_seq
            entry["consumedSeqs"] = draw(st.lists(pick, max_size=4))
        if unknown and draw(st.integers(0, 7)) == 0:
            entry.update(
                draw(
                    st.dictionaries(
                        st.sampled_from(("x-extra", "_debug")),
                        json_values(max_leaves=2),
                        max_size=1,
                    )
                )
            )
        entries.append(entry)
    return entries


def shuffled(log: st.SearchStrategy[list[JsonDict]]) -> st.SearchStrategy[list[JsonDict]]:
    """The same logs in a random order (rebuilds must sort by seq first)."""
    return log.flatmap(lambda entries: st.permutations(entries))


def as_new_entry(entry: JsonDict) -> JsonDict:
    """A stored entry without ``seq`` and ``createdAt``: what an append takes."""
    return {k: v for k, v in entry.items() if k not in ("seq", "createdAt")}


@st.composite
def new_entries(draw: st.DrawFn, **log_kwargs: Any) -> list[JsonDict]:
    """A batch of new entries (an ``entry_logs`` draw without seq/createdAt)."""
    return [as_new_entry(e) for e in draw(entry_logs(**log_kwargs))]


_CONVERSATION_OPTIONALS: tuple[tuple[str, st.SearchStrategy[Any]], ...] = (
    ("compactedHistory", st.lists(messages(), max_size=2)),
    ("runtimeRunId", st.text(alphabet="run-0123456789", min_size=1, max_size=8)),
    ("pendingApprovals", st.lists(json_values(max_leaves=3), max_size=2)),
    ("runStatus", st.sampled_from(("running", "idle"))),
    ("contextTokens", st.integers(0, 200_000)),
    ("contextWindow", st.just(200_000)),
    ("parentConversationId", st.just("conv-parent")),
    ("parentMessageId", st.just("msg-anchor")),
    ("threadMeta", json_values(max_leaves=3)),
    ("subagentMeta", json_values(max_leaves=3)),
    ("channelMeta", json_values(max_leaves=3)),
    ("pendingSubagentResults", st.lists(pending_results(), max_size=2)),
    ("subagentCallbackCount", st.integers(0, 5)),
    ("runningCallbackSince", st.integers(BASE_TIME_MS, BASE_TIME_MS + 10**6)),
    ("lastActivityAt", st.integers(BASE_TIME_MS, BASE_TIME_MS + 10**6)),
    ("_continuationMessages", st.lists(messages(), max_size=2)),
    ("_continuationCount", st.integers(0, 3)),
    ("_harnessMessages", st.lists(messages(), max_size=4)),
    (
        "_toolResultArchive",
        st.dictionaries(st.text(alphabet="abc", max_size=3), json_values(max_leaves=2), max_size=2),
    ),
)


@st.composite
def conversations(draw: st.DrawFn, conversation_id: str | None = None) -> JsonDict:
    """A conversation blob (SPEC §4): every optional field absent, null or set, plus unknown keys."""
    conv: JsonDict = {
        "conversationId": conversation_id
        or draw(st.text(alphabet="0123456789abcdef-", min_size=1, max_size=12)),
        "title": draw(js_text(max_size=12)),
        "messages": draw(st.lists(messages(roles=("user", "assistant")), max_size=4)),
        "ownerId": draw(st.sampled_from(("local-owner", "owner-ines"))),
        "tenantId": draw(st.sampled_from((None, "northwind"))),
        "createdAt": BASE_TIME_MS,
        "updatedAt": BASE_TIME_MS + draw(st.integers(0, 10**6)),
    }
    for key, value in _CONVERSATION_OPTIONALS:
        _optional(draw, conv, key, value)
    conv.update(
        draw(
            st.dictionaries(
                st.sampled_from(("_richToolResults", "x-custom", "agentId")),
                json_values(max_leaves=2),
                max_size=2,
            )
        )
    )
    return conv
