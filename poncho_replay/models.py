"""Typed models of the harness JSON: the boundary where raw data becomes typed.

Every model reads the harness's camelCase JSON and ``to_dict()`` gives it
back exactly: optional fields that were absent stay absent, explicit
``null`` stays ``null``, and keys the harness added that this kit does not
know (``_subagentCallback``, ``_richToolResults``, ...) survive untouched.
Field types are strict (no ``"5"`` -> ``5`` coercion) so malformed rows are
caught here, named, and can be quarantined instead of silently repaired.

Example:
    >>> from poncho_replay.models import parse_entry
    >>> e = parse_entry({"id": "e1", "seq": 1, "createdAt": 0, "type": "harness_message",
    ...                  "message": {"role": "user", "content": "hi"}, "turnId": "t1"})
    >>> e.message.text
    'hi'
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from poncho_replay.errors import BadEntryError

JsonDict = dict[str, Any]
Number = StrictInt | StrictFloat
Role = Literal["user", "assistant", "system", "tool"]

__all__ = [
    "ENTRY_TYPES",
    "AssistantAmendmentEntry",
    "AssistantMessageEntry",
    "CallbackStartedEntry",
    "CompactionEntry",
    "Conversation",
    "ConversationSummary",
    "DisplaySnapshot",
    "Entry",
    "FilePart",
    "HarnessMessageEntry",
    "Message",
    "MessageMetadata",
    "NewEntry",
    "PendingSubagentResult",
    "StatusSnapshot",
    "SubagentResultEntry",
    "TextPart",
    "UserMessageEntry",
    "entry_to_dict",
    "message_text",
    "parse_conversation",
    "parse_entry",
    "parse_new_entry",
]


class HarnessModel(BaseModel):
    """Base: camelCase aliases, unknown keys kept, exact round trip."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        validate_assignment=False,
    )

    def to_dict(self) -> JsonDict:
        """The harness JSON for this object, exactly as it was read."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="python")

    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        conversation_id: str | None = None,
        seq: int | None = None,
    ):
        """Validate harness JSON, raising ``BadEntryError`` that names the field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _bad(exc, data, conversation_id, seq) from exc


# --- messages -----------------------------------------------------------------


class TextPart(HarnessModel):
    """A text part of a multi-part message."""

    type: Literal["text"]
    text: StrictStr


class FilePart(HarnessModel):
    """A file part: base64 data, a data: URI, a URL or an upload reference."""

    type: Literal["file"]
    data: StrictStr
    media_type: StrictStr
    filename: StrictStr | None = None


ContentPart = Annotated[TextPart | FilePart, Field(discriminator="type")]


class Section(HarnessModel):
    """One rendered section of an assistant bubble (text or tool activity)."""

    type: Literal["text", "tools"]
    content: StrictStr | list[StrictStr]


class MessageMetadata(HarnessModel):
    """Message metadata; the harness adds more keys than these, all kept."""

    id: StrictStr | None = None
    timestamp: Number | None = None
    token_count: Number | None = None
    step: Number | None = None
    run_id: StrictStr | None = None
    tool_activity: list[StrictStr] | None = None
    sections: list[Section] | None = None
    is_compaction_summary: StrictBool | None = None


class Message(HarnessModel):
    """A chat message as the harness stores it (SPEC §1)."""

    role: Role
    content: StrictStr | list[ContentPart]
    metadata: MessageMetadata | None = None

    @property
    def text(self) -> str:
        """The string content, or the text parts concatenated (files ignored)."""
        return message_text(self.to_dict())


def message_text(message: JsonDict) -> str:
    """The *text* of a harness message dict (SPEC §1; the SDK's getTextContent).

    Mirrors JavaScript: a text part whose ``text`` is not a string is
    rendered as ``String(text)`` by ``Array.join``.
    """
    from poncho_replay._js import to_string

    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(
        to_string(part.get("text")) for part in content if isinstance(part, dict) and part.get("type") == "text"
    )


# --- subagent results -----------------------------------------------------------


class PendingSubagentResult(HarnessModel):
    """A finished subagent's result waiting for its parent's callback turn."""

    subagent_id: StrictStr
    task: StrictStr
    status: Literal["completed", "error", "stopped"]
    result: Any = None
    error: Any = None
    timestamp: Number


# --- entries -------------------------------------------------------------------


class _NewEntryBase(HarnessModel):
    id: StrictStr


class _Stored(HarnessModel):
    seq: StrictInt
    created_at: Number


class NewUserMessage(_NewEntryBase):
    type: Literal["user_message"]
    message: Message
    turn_id: StrictStr
    hidden: StrictBool | None = None


class NewAssistantMessage(_NewEntryBase):
    type: Literal["assistant_message"]
    message: Message
    turn_id: StrictStr
    run_id: StrictStr


class NewAssistantAmendment(_NewEntryBase):
    type: Literal["assistant_amendment"]
    target_entry_id: StrictStr
    append_text: StrictStr | None = None


class NewHarnessMessage(_NewEntryBase):
    type: Literal["harness_message"]
    message: Message
    turn_id: StrictStr


class NewCompaction(_NewEntryBase):
    type: Literal["compaction"]
    summary_message: Message
    first_kept_seq: StrictInt
    tokens_before: Number | None = None
    tokens_after: Number | None = None


class NewSubagentResult(_NewEntryBase):
    type: Literal["subagent_result"]
    result: PendingSubagentResult


class NewCallbackStarted(_NewEntryBase):
    type: Literal["callback_started"]
    consumed_seqs: list[StrictInt]


class UserMessageEntry(NewUserMessage, _Stored):
    """A user-role display message; ``hidden`` ones are kept out of the transcript."""


class AssistantMessageEntry(NewAssistantMessage, _Stored):
    """The final assistant bubble of a turn."""


class AssistantAmendmentEntry(NewAssistantAmendment, _Stored):
    """Text appended later to an assistant bubble (approval/continuation resume)."""


class HarnessMessageEntry(NewHarnessMessage, _Stored):
    """One message of the model-visible transcript."""


class CompactionEntry(NewCompaction, _Stored):
    """Compaction overlay: summary + harness messages from ``first_kept_seq`` on."""


class SubagentResultEntry(NewSubagentResult, _Stored):
    """A subagent result delivered to the parent's log."""


class CallbackStartedEntry(NewCallbackStarted, _Stored):
    """Marks which ``subagent_result`` seqs a callback turn consumed."""


Entry = Annotated[
    UserMessageEntry | AssistantMessageEntry | AssistantAmendmentEntry | HarnessMessageEntry | CompactionEntry | SubagentResultEntry | CallbackStartedEntry,
    Field(discriminator="type"),
]
NewEntry = Annotated[
    NewUserMessage | NewAssistantMessage | NewAssistantAmendment | NewHarnessMessage | NewCompaction | NewSubagentResult | NewCallbackStarted,
    Field(discriminator="type"),
]
ENTRY_TYPES: tuple[str, ...] = (
    "user_message",
    "assistant_message",
    "assistant_amendment",
    "harness_message",
    "compaction",
    "subagent_result",
    "callback_started",
)

_ENTRY = TypeAdapter(Entry)
_NEW_ENTRY = TypeAdapter(NewEntry)


def parse_entry(data: Any, *, conversation_id: str | None = None) -> Entry:
    """Validate a stored entry (with ``seq`` and ``createdAt``)."""
    return _validate(_ENTRY, data, conversation_id)


def parse_new_entry(data: Any, *, conversation_id: str | None = None) -> NewEntry:
    """Validate an entry to append (no ``seq``/``createdAt`` yet)."""
    return _validate(_NEW_ENTRY, data, conversation_id)


def entry_to_dict(entry: Any) -> JsonDict:
    """An entry model or dict as a harness JSON dict (dicts pass through)."""
    return entry.to_dict() if isinstance(entry, HarnessModel) else entry


# --- conversations ---------------------------------------------------------------


class Conversation(HarnessModel):
    """A conversation blob with every SPEC §4 field; unknown fields kept."""

    conversation_id: StrictStr
    title: StrictStr
    messages: list[Message]
    compacted_history: list[Message] | None = None
    runtime_run_id: StrictStr | None = None
    pending_approvals: list[Any] | None = None
    run_status: StrictStr | None = None
    owner_id: StrictStr
    tenant_id: StrictStr | None
    context_tokens: Number | None = None
    context_window: Number | None = None
    parent_conversation_id: StrictStr | None = None
    parent_message_id: StrictStr | None = None
    thread_meta: Any = None
    subagent_meta: Any = None
    channel_meta: Any = None
    pending_subagent_results: list[PendingSubagentResult] | None = None
    subagent_callback_count: Number | None = None
    running_callback_since: Number | None = None
    last_activity_at: Number | None = None
    continuation_messages: list[Message] | None = Field(
        default=None,
        alias="_continuationMessages",
        validation_alias=AliasChoices("_continuationMessages", "continuation_messages"),
    )
    continuation_count: Number | None = Field(
        default=None,
        alias="_continuationCount",
        validation_alias=AliasChoices("_continuationCount", "continuation_count"),
    )
    harness_messages: list[Message] | None = Field(
        default=None,
        alias="_harnessMessages",
        validation_alias=AliasChoices("_harnessMessages", "harness_messages"),
    )
    tool_result_archive: dict[str, Any] | None = Field(
        default=None,
        alias="_toolResultArchive",
        validation_alias=AliasChoices("_toolResultArchive", "tool_result_archive"),
    )
    created_at: Number
    updated_at: Number


def parse_conversation(data: Any) -> Conversation:
    """Validate a conversation blob, naming the field and conversation on error."""
    cid = data.get("conversationId") if isinstance(data, dict) else None
    return Conversation.from_dict(data, conversation_id=cid if isinstance(cid, str) else None)


class ConversationSummary(HarnessModel):
    """What ``list_summaries`` and ``list_threads`` return (harness shape)."""

    conversation_id: StrictStr
    title: StrictStr
    updated_at: Number
    created_at: Number | None = None
    owner_id: StrictStr
    tenant_id: StrictStr | None = None
    parent_conversation_id: StrictStr | None = None
    message_count: StrictInt | None = None
    has_pending_approvals: StrictBool | None = None
    channel_meta: Any = None


class StatusSnapshot(HarnessModel):
    """Column-only status of a conversation (``get_status_snapshot``)."""

    conversation_id: StrictStr
    updated_at: Number
    message_count: StrictInt
    has_pending_approvals: StrictBool
    has_continuation_messages: StrictBool
    parent_conversation_id: StrictStr | None = None
    owner_id: StrictStr
    tenant_id: StrictStr | None
    run_status: Literal["running", "idle"] | None = None


class DisplaySnapshot(HarnessModel):
    """The display transcript tail: ``messages``, ``totalMessages``, ``headSeq``.

    ``messages`` hold harness JSON dicts, untouched, so a rebuilt transcript
    can be compared byte for byte with a blob.
    """

    messages: list[JsonDict]
    total_messages: StrictInt
    head_seq: StrictInt | None


# --- errors ---------------------------------------------------------------------


def _validate(adapter: TypeAdapter, data: Any, conversation_id: str | None) -> Any:
    if isinstance(data, HarnessModel):
        return data
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise _bad(exc, data, conversation_id, None) from exc


def _bad(exc: ValidationError, data: Any, conversation_id: str | None, seq: int | None) -> BadEntryError:
    """Turn pydantic's report into one line naming the first bad field."""
    if seq is None and isinstance(data, dict) and type(data.get("seq")) is int:
        seq = data["seq"]
    # A union reports one error per branch; the deepest one is the most specific.
    err = max(exc.errors(include_url=False), key=lambda e: len(e["loc"]))
    path = _data_path(err["loc"], data, keep_last=err["type"] == "missing")
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        path.append("type")
        tag = _at(data, path[:-1])
        if err["type"] == "union_tag_not_found":
            reason = "required field is missing"
        elif len(path) == 1:
            reason = f"unknown entry type {tag.get('type')!r}"
        else:
            reason = f"unknown type {tag.get('type')!r}"
    elif err["type"] == "missing":
        reason = "required field is missing"
    else:
        reason = err["msg"]
    return BadEntryError(reason, field=".".join(path) or None, conversation_id=conversation_id, seq=seq)


def _data_path(loc: tuple[Any, ...], data: Any, *, keep_last: bool) -> list[str]:
    """The part of pydantic's ``loc`` that names keys and indexes of ``data``.

    Union branch labels (``str``, ``list[...]``, tag values) are not in the
    data and are dropped; a missing field, by nature absent, is kept last.
    """
    path: list[str] = []
    cur = data
    for i, part in enumerate(loc):
        if isinstance(cur, dict) and isinstance(part, str) and part in cur or isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        elif not (keep_last and i == len(loc) - 1):
            continue
        path.append(str(part))
    return path


def _at(data: Any, path: list[str]) -> Any:
    """The value at a path built by :func:`_data_path` (every step exists)."""
    for part in path:
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data
