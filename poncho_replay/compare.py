"""What "the same item" means, and how two lists of items line up: one rule for every view.

The audit (``sql/audit.sql``: ``audit_eq``, whose undecided pairs call
:func:`canonical_text` as ``audit_canon``), ``diff()``, the conversation
view, the replay and the first-kept-seq rule all compare items through
:func:`items_equal` (or that SQL twin) and line lists up with :func:`align`,
so no view can call equal what another calls different (STYLE 10).

``compare="exact"`` is canonical JSON: key order is ignored, everything else
counts, as the JSON text the harness wrote says it: ``1`` and ``1.0`` differ,
``true`` and ``1`` differ (Python's ``==`` would call both pairs equal).
``compare="text"`` is the harness's own parity projection ``role:text``
(messages; pending results are always compared exactly). A callable
``normaliser(field, item)`` compares the canonical JSON of what it returns.

Example:
    >>> items_equal("llm", {"a": 1, "b": True}, {"b": True, "a": 1})
    True
    >>> items_equal("llm", {"n": 1}, {"n": 1.0}), items_equal("llm", {"n": True}, {"n": 1})
    (False, False)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from poncho_replay._js import json_dumps
from poncho_replay.dualwrite import project_text

__all__ = [
    "Alignment",
    "Comparison",
    "Normaliser",
    "align",
    "aligned_pairs",
    "canonical",
    "canonical_text",
    "equality",
    "items_equal",
]

Comparison = Literal["exact", "text"]
Normaliser = Callable[[str, Any], Any]
"""A user comparison: ``normaliser(field, item) -> value``; items are equal when values are."""


def canonical(value: Any) -> str:
    """A JSON value's canonical text: sorted keys, compact, numbers and booleans as JSON writes them."""
    return json_dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def canonical_text(text: str | None) -> str | None:
    """:func:`canonical` of a JSON text (the SQL side's ``audit_canon``)."""
    return None if text is None else canonical(json.loads(text))


def equality(field: str, compare: Comparison | Normaliser = "exact") -> Callable[[Any, Any], bool]:
    """The item equality of ``field`` (``llm``, ``display``, ``pending``) under ``compare``."""
    if callable(compare):
        return lambda x, y: canonical(compare(field, x)) == canonical(compare(field, y))
    if compare == "text" and field != "pending":
        return lambda x, y: project_text(x) == project_text(y)
    if compare not in ("exact", "text"):
        raise ValueError(f"unknown comparison {compare!r}; choose 'exact', 'text' or a callable")
    return lambda x, y: canonical(x) == canonical(y)


def items_equal(field: str, a: Any, b: Any, compare: Comparison | Normaliser = "exact") -> bool:
    """Whether two items of ``field`` are the same under ``compare`` (see the module docstring)."""
    return equality(field, compare)(a, b)


@dataclass(frozen=True)
class Alignment:
    """How two sequences line up: the Python twin of ``audit_compare``'s counts."""

    entries: int
    blob: int
    matching: int
    changed: int
    missing_in_entries: int
    extra_in_entries: int
    first_position: int | None
    prefix: int
    suffix: int


def align(entries: Sequence[Any], blob: Sequence[Any], eq: Callable[[Any, Any], bool] | None = None) -> Alignment:
    """Common prefix and suffix match; the middle pairs by position (VDiff-style counts).

    ``eq`` defaults to exact equality (:func:`canonical`), never Python's ``==``.
    """
    same = eq or (lambda x, y: canonical(x) == canonical(y))
    n, m = len(entries), len(blob)
    shorter = min(n, m)
    prefix = next((i for i in range(shorter) if not same(entries[i], blob[i])), shorter)
    suffix = next((i for i in range(shorter) if not same(entries[n - 1 - i], blob[m - 1 - i])), shorter)
    suffix = min(suffix, shorter - prefix)
    return Alignment(
        entries=n,
        blob=m,
        matching=prefix + suffix,
        changed=shorter - prefix - suffix,
        missing_in_entries=max(m - n, 0),
        extra_in_entries=max(n - m, 0),
        first_position=prefix if prefix < max(n, m) else None,
        prefix=prefix,
        suffix=suffix,
    )


def aligned_pairs(a: Alignment) -> list[tuple[str, int | None, int | None]]:
    """The aligned rows ``(status, entries position, blob position)`` that :func:`align` counts, in order.

    Statuses: ``match`` (prefix and suffix), ``changed``, ``missing_in_entries``
    (blob only), ``extra_in_entries`` (served only).
    """
    n, m = a.entries, a.blob
    pairs: list[tuple[str, int | None, int | None]] = [("match", i, i) for i in range(a.prefix)]
    pairs += [("changed", a.prefix + k, a.prefix + k) for k in range(a.changed)]
    pairs += [("missing_in_entries", None, a.prefix + a.changed + k) for k in range(a.missing_in_entries)]
    pairs += [("extra_in_entries", a.prefix + a.changed + k, None) for k in range(a.extra_in_entries)]
    pairs += [("match", n - a.suffix + k, m - a.suffix + k) for k in range(a.suffix)]
    return pairs
