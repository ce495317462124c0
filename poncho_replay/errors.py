"""One error tree for the kit, so callers can catch a family at once.

Driver errors (DuckDB, sqlite3, psycopg) are chained with ``from`` at the
boundary where they are converted, never leaked raw.
"""

from __future__ import annotations


class ReplayError(Exception):
    """Root of every error poncho_replay raises on purpose."""


class StoreError(ReplayError):
    """A store operation could not complete (conflict, constraint, I/O)."""


class SourceError(ReplayError):
    """A data source could not be read (missing file, wrong layout, unreachable)."""


class SeqError(ReplayError, ValueError):
    """A seq no log can hold: seqs start at 1, so a negative one is refused, never read as "before everything"."""


class BadEntryError(ReplayError, ValueError):
    """Input that does not have the harness shape.

    The message names the offending field and, when known, the
    conversation id and the entry's seq, so a row can be found again.
    """

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        conversation_id: str | None = None,
        seq: int | None = None,
    ) -> None:
        self.reason = reason
        self.field = field
        self.conversation_id = conversation_id
        self.seq = seq
        where = []
        if conversation_id is not None:
            where.append(f"conversation {conversation_id}")
        if seq is not None:
            where.append(f"seq {seq}")
        prefix = f"{', '.join(where)}: " if where else ""
        field_part = f"field '{field}': " if field else ""
        super().__init__(f"{prefix}{field_part}{reason}")
