"""The harness's ConversationStore interface (SPEC §4), in snake_case.

Every store returns harness JSON shapes as the typed models of
:mod:`poncho_replay.models`; inputs may be models or plain harness dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from poncho_replay.models import (
    Conversation,
    ConversationSummary,
    Entry,
    JsonDict,
    PendingSubagentResult,
    StatusSnapshot,
)

DEFAULT_TENANT = "__default__"
"""How a null tenant id is stored."""
DEFAULT_OWNER = "local-owner"
DEFAULT_TITLE = "New conversation"


def normalize_title(title: str | None) -> str:
    """Trimmed title, or ``"New conversation"`` when blank (harness normalizeTitle)."""
    return title.strip() if title and title.strip() else DEFAULT_TITLE


@runtime_checkable
class ConversationStore(Protocol):
    """What the harness's orchestrator needs from a store."""

    def append_entries(
        self,
        conversation_id: str,
        agent_id: str,
        tenant_id: str | None,
        entries: Sequence[JsonDict | Any],
    ) -> list[Entry]: ...

    def read_entries(
        self,
        conversation_id: str,
        types: Sequence[str] | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> list[Entry]: ...

    def list(self, owner_id: str | None = None, tenant_id: Any = ...) -> list[Conversation]: ...

    def list_summaries(self, owner_id: str | None = None, tenant_id: Any = ...) -> list[ConversationSummary]: ...

    def get_status_snapshot(self, conversation_id: str) -> StatusSnapshot | None: ...

    def get(self, conversation_id: str) -> Conversation | None: ...

    def get_with_archive(self, conversation_id: str) -> Conversation | None: ...

    def create(
        self,
        owner_id: str = DEFAULT_OWNER,
        title: str | None = None,
        tenant_id: str | None = None,
        init: JsonDict | None = None,
    ) -> Conversation: ...

    def update(self, conversation: Conversation | JsonDict) -> None: ...

    def rename(self, conversation_id: str, title: str) -> Conversation | None: ...

    def delete(self, conversation_id: str) -> bool: ...

    def append_subagent_result(self, conversation_id: str, result: PendingSubagentResult | JsonDict) -> None: ...

    def clear_callback_lock(self, conversation_id: str) -> Conversation | None: ...

    def list_threads(self, parent_conversation_id: str) -> list[ConversationSummary]: ...
