"""Fleet rebuild: the SPEC §3 rebuilds for every conversation at once, in DuckDB SQL.

The rules live in ``poncho_replay/sql/rebuild_fleet.sql`` (table macros and
views over the store's ``conversation_entries``); this module installs them
on a connection and runs them with bound parameters. They equal
``poncho_replay.rebuild`` message by message (a hypothesis test holds them
together), but run set-based, so a million entries rebuild in seconds.

Example:
    >>> import duckdb
    >>> from poncho_replay import fleet
    >>> con = duckdb.connect()
    >>> fleet.install(con)
    >>> fleet.llm_context_df(con).columns.tolist()
    ['source', 'conversation_id', 'position', 'seq', 'message']
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from poncho_replay._js import to_number, to_string
from poncho_replay.sql import run_script

__all__ = [
    "display_messages_df",
    "install",
    "llm_context_df",
    "pending_df",
    "rebuild_errors_df",
]

AsOf = int | Mapping[str, int] | None
"""Replay cutoff: one seq for every conversation, or a seq per conversation id."""


def install(con: Any) -> None:
    """Create the store tables (if missing) and the fleet rebuild macros and views.

    Also registers ``js_to_string(VARCHAR) -> VARCHAR`` and
    ``js_to_number(VARCHAR) -> DOUBLE`` (JSON text in), so JavaScript's
    coercions of malformed values are decided once, in ``poncho_replay._js``.
    Idempotent: every statement is ``CREATE ... IF NOT EXISTS`` or ``OR REPLACE``.
    """
    _register(con, "js_to_string", lambda text: to_string(json.loads(text)), "VARCHAR")
    _register(con, "js_to_number", lambda text: to_number(json.loads(text)), "DOUBLE")
    run_script(con, "schema.sql")
    run_script(con, "rebuild_fleet.sql")


def _register(con: Any, name: str, fn: Callable[[str], Any], returns: str) -> None:
    """Register a pure Python scalar function once per connection."""
    known = con.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = ?", [name]
    ).fetchall()[0][0]
    if not known:
        con.create_function(name, fn, ["VARCHAR"], returns, side_effects=False)


def llm_context_df(
    con: Any,
    conversation_ids: Iterable[str] | None = None,
    as_of_seq: AsOf = None,
    source: str | None = None,
) -> pd.DataFrame:
    """The LLM context of each conversation (``build_llm_context``), one row per message.

    Args:
        con: a DuckDB connection on which :func:`install` ran.
        conversation_ids: restrict to these conversations (default: all).
        as_of_seq: replay: an int uses only entries with seq <= it; a mapping
            ``{conversation_id: seq}`` rebuilds just those conversations, each
            as of its own seq (``rebuild.state_at``).
        source: restrict to one loaded source (default: every source).

    Returns:
        Columns ``source, conversation_id, position, seq, message`` (message as
        JSON text), sorted by conversation then position.
    """
    return _run(con, "llm_context_at", conversation_ids, as_of_seq, source)


def display_messages_df(
    con: Any,
    conversation_ids: Iterable[str] | None = None,
    as_of_seq: AsOf = None,
    source: str | None = None,
) -> pd.DataFrame:
    """The full display transcript (``build_display_snapshot``), one row per message.

    Same arguments and columns as :func:`llm_context_df`. A conversation whose
    display rebuild raises in Python has no rows here; see :func:`rebuild_errors_df`.
    """
    return _run(con, "display_messages_at", conversation_ids, as_of_seq, source)


def pending_df(
    con: Any,
    conversation_ids: Iterable[str] | None = None,
    as_of_seq: AsOf = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Pending subagent results (``pending_subagent_results``), one row per result.

    Same arguments as :func:`llm_context_df`; columns
    ``source, conversation_id, position, seq, result``.
    """
    return _run(con, "pending_subagent_results_at", conversation_ids, as_of_seq, source)


def rebuild_errors_df(
    con: Any,
    conversation_ids: Iterable[str] | None = None,
    as_of_seq: AsOf = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Entries that make a rebuild raise in Python (and the harness fall back to the blob).

    Columns ``source, conversation_id, field ('display' | 'pending'), seq, reason``.
    The read cutover keeps the LLM context rebuilt even then: SPEC §3's partial rebuild.
    """
    return _run(con, "rebuild_errors_at", conversation_ids, as_of_seq, source, order="field, seq")


# The macro names are fixed identifiers chosen here, never user input.
_MACROS = frozenset(
    {"llm_context_at", "display_messages_at", "pending_subagent_results_at", "rebuild_errors_at"}
)


def _run(
    con: Any,
    macro: str,
    conversation_ids: Iterable[str] | None,
    as_of_seq: AsOf,
    source: str | None,
    order: str = "position",
) -> pd.DataFrame:
    if macro not in _MACROS:
        raise ValueError(f"unknown fleet macro {macro!r}")
    ids = None if conversation_ids is None else [str(c) for c in conversation_ids]
    upto: int | None = None
    cutoffs: list[dict[str, Any]] | None = None
    if isinstance(as_of_seq, Mapping):
        cutoffs = [{"conversation_id": str(c), "seq": int(s)} for c, s in as_of_seq.items()]
    elif as_of_seq is not None:
        upto = int(as_of_seq)
    query = (
        f"SELECT * FROM {macro}(src := ?, ids := ?, upto := ?, cutoffs := ?) "
        f"ORDER BY source, conversation_id, {order}"
    )
    return con.execute(query, [source, ids, upto, cutoffs]).df()
