"""A harness database, SQLite file or PostgreSQL URL: the name its rows carry, and its size.

One place for both, so ``load``, the streamed audit and the CLI name and
size a database the same way.
"""

from __future__ import annotations

from pathlib import Path

from poncho_replay.sources.postgres import count_rows_postgres, is_postgres_url, redact_url
from poncho_replay.sources.sqlite import count_rows

__all__ = ["source_label", "source_rows"]


def source_label(source: str | Path) -> str:
    """The ``source`` value of a database's rows: the URL without its password, or the file's absolute path."""
    return redact_url(str(source)) if is_postgres_url(str(source)) else str(Path(source).resolve())


def source_rows(source: str | Path) -> int | None:
    """Conversations + entries in the database (it sizes shards and progress bars), or None if unreadable."""
    return count_rows_postgres(str(source)) if is_postgres_url(str(source)) else count_rows(source)
