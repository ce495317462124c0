"""The kit's SQL files, loaded by name so no query is ever assembled from strings.

Every ``.sql`` file here ships as package data; callers read them through
:func:`read_sql` (or run a whole script with :func:`run_script`) instead of
opening paths, so the package works from a wheel or a zip as well as a checkout.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

__all__ = ["CONVERSATION_JSON_COLUMNS", "ENTRY_JSON_COLUMNS", "read_sql", "run_script"]

CONVERSATION_JSON_COLUMNS = ("data", "tool_result_archive", "harness_messages", "continuation_messages", "channel_meta")
"""The JSON-typed columns of schema.sql's ``conversations`` table."""
ENTRY_JSON_COLUMNS = ("payload",)
"""The JSON-typed columns of schema.sql's ``conversation_entries`` table."""


def read_sql(name: str) -> str:
    """The text of ``poncho_replay/sql/<name>`` (e.g. ``"schema.sql"``)."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def run_script(con: Any, name: str) -> None:
    """Execute every statement of a bundled SQL script on a DuckDB connection.

    The scripts hold DDL only (tables, views, macros); values are never
    spliced in, so running them twice is harmless.
    """
    con.execute(read_sql(name))
