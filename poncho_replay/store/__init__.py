"""Harness ConversationStores: the protocol, the in-memory reference and the DuckDB engine."""

from poncho_replay.store.base import (
    DEFAULT_OWNER,
    DEFAULT_TENANT,
    DEFAULT_TITLE,
    ConversationStore,
    normalize_title,
)
from poncho_replay.store.duckdb import MAX_APPEND_ATTEMPTS, DuckDBStore
from poncho_replay.store.memory import MemoryStore
from poncho_replay.store.rowstore import ALL_TENANTS, RowStore

__all__ = [
    "ALL_TENANTS",
    "DEFAULT_OWNER",
    "DEFAULT_TENANT",
    "DEFAULT_TITLE",
    "MAX_APPEND_ATTEMPTS",
    "ConversationStore",
    "DuckDBStore",
    "MemoryStore",
    "RowStore",
    "normalize_title",
]
