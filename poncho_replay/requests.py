"""Stored harness messages -> the model request the harness sends (SPEC §8), per provider.

The harness never sends its stored messages as they are: before each model
call it converts them to the Vercel AI SDK's model messages (SPEC §8), and
the SDK's provider adapter builds the request. This module does the same in
two pure steps, with no network:

1. :func:`to_model_messages`: SPEC §8, exactly (tool results parsed from
   their JSON array, assistant tool steps from their ``{"text",
   "tool_calls"}`` JSON, user files resolved or replaced by placeholders);
2. :func:`to_anthropic`, :func:`to_openai`, :func:`to_inspect_messages`:
   the standard mapping of those model messages onto the Anthropic Messages
   API, OpenAI Chat Completions and Inspect AI's ``ChatMessage`` shape.

Each ``to_*`` accepts either stored harness messages or the model messages
of step 1. The system prompt is composed at run time and stored nowhere, so
it is a parameter; files behind ``vfs://`` or upload references are not in
the database and become a placeholder naming the reference.

Example:
    >>> to_openai([{"role": "user", "content": "hi"}], model="gpt-4o")["messages"]
    [{'role': 'user', 'content': 'hi'}]
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from poncho_replay._js import _JS_WS, json_dumps
from poncho_replay.errors import ReplayError

__all__ = [
    "DEFAULT_ANTHROPIC_MODEL",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_OPENAI_MODEL",
    "Format",
    "ModelMessages",
    "RequestValidationError",
    "to_anthropic",
    "to_inspect_messages",
    "to_model_messages",
    "to_openai",
    "validate_request",
]

Format = Literal["anthropic", "openai"]
JsonDict = dict[str, Any]

DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-5"
"""A placeholder model name: the harness stores none per request; pass your own."""
DEFAULT_OPENAI_MODEL = "gpt-4o"
"""A placeholder model name, as for Anthropic."""
DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; the harness's own value is not stored."""

BINARY_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"})
"""Sent as binary attachments (SPEC §8): images and PDFs."""
_TEXT_LIKE = re.compile(r"text/.*|application/(json|xml|x-yaml)|.*\+(json|xml)")
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
_DATA_URL = re.compile(r"data:([^;,]*)(;[^,]*)?,(.*)", re.DOTALL)
_BLANK = re.compile(f"[{_JS_WS}]*")


class RequestValidationError(ReplayError, ValueError):
    """A request the provider SDK's request type does not accept as it is."""


class ModelMessages(list):
    """Model messages (SPEC §8's output) plus ``notes``: what was dropped or could not be resolved."""

    def __init__(self, messages: Iterable[JsonDict] = (), notes: Iterable[str] = ()) -> None:
        super().__init__(messages)
        self.notes: list[str] = list(notes)


# --- step 1: SPEC §8 ---------------------------------------------------------------


def _js_json_parse(text: str) -> tuple[bool, Any]:
    """``JSON.parse``: (ok, value). Python's extras (NaN, Infinity) are refused as JavaScript does."""

    def refuse(name: str) -> Any:
        raise ValueError(name)

    try:
        return True, json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError):
        return False, None


def _stringify(value: Any) -> str:
    """``JSON.stringify``: compact, lone surrogates escaped (SPEC §9)."""
    return json_dumps(value, separators=(",", ":"))


def _content_text(content: Any) -> str:
    """The text of a content (SPEC §1): the string, or its text parts joined, files ignored."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"] for p in content if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


def _tool_message(message: Mapping[str, Any], notes: list[str], where: str) -> JsonDict | None:
    rich = (message.get("metadata") or {}).get("_richToolResults") if isinstance(message.get("metadata"), Mapping) else None
    if rich is not None:
        # The running turn's rich results are sent as they are; only the live harness holds their shape.
        notes.append(f"{where}: tool message with _richToolResults sent as stored")
        return {"role": "tool", "content": list(rich) if isinstance(rich, list) else [rich]}
    ok, items = _js_json_parse(_content_text(message.get("content")))
    if not ok or not isinstance(items, list):
        notes.append(f"{where}: tool message dropped (content is not a JSON array)")
        return None
    results = []
    for item in items:
        if not (
            isinstance(item, Mapping)
            and isinstance(item.get("tool_use_id"), str)
            and isinstance(item.get("tool_name"), str)
            and isinstance(item.get("content"), str)
        ):
            continue
        text = item["content"]
        parsed_ok, value = (False, None) if text.startswith("Tool error:") else _js_json_parse(text)
        output = {"type": "json", "value": value} if parsed_ok else {"type": "text", "value": text}
        results.append({"type": "tool-result", "toolCallId": item["tool_use_id"], "toolName": item["tool_name"], "output": output})
    if not results:
        notes.append(f"{where}: tool message dropped (no item with string tool_use_id, tool_name and content)")
        return None
    return {"role": "tool", "content": results}


def _assistant_message(message: Mapping[str, Any], notes: list[str], where: str) -> JsonDict | None:
    text = _content_text(message.get("content"))
    ok, value = _js_json_parse(text)
    if ok and isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        parts: list[JsonDict] = []
        if isinstance(value.get("text"), str) and value["text"]:
            parts.append({"type": "text", "text": value["text"]})
        for call in value["tool_calls"]:
            if (
                isinstance(call, Mapping)
                and isinstance(call.get("id"), str)
                and isinstance(call.get("name"), str)
                and isinstance(call.get("input"), dict)
            ):
                parts.append({"type": "tool-call", "toolCallId": call["id"], "toolName": call["name"], "input": call["input"]})
        if not parts:
            notes.append(f"{where}: assistant tool step dropped (no text and no valid tool call)")
            return None
        return {"role": "assistant", "content": parts}
    if _BLANK.fullmatch(text):
        notes.append(f"{where}: assistant message dropped (empty or blank text)")
        return None
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def _file_payload(data: Any) -> tuple[str | None, str | None]:
    """(base64 payload, reference): exactly one is set for usable data; both None for junk."""
    if not isinstance(data, str):
        return None, None
    url = _DATA_URL.fullmatch(data)
    if url:
        if ";base64" in (url[2] or ""):
            return url[3], None
        return base64.b64encode(url[3].encode("utf-8", "surrogatepass")).decode(), None
    if _SCHEME.match(data):
        return None, data  # vfs://, upload://, poncho-upload://, https://: resolved by the live harness
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None, None
    return data, None


def _user_part(part: Any, notes: list[str], where: str) -> JsonDict | None:
    if not isinstance(part, Mapping):
        notes.append(f"{where}: a user part that is not an object was skipped")
        return None
    if part.get("type") == "text":
        return {"type": "text", "text": part.get("text") if isinstance(part.get("text"), str) else ""}
    if part.get("type") != "file":
        notes.append(f"{where}: user part of type {part.get('type')!r} skipped")
        return None
    media = part.get("mediaType") if isinstance(part.get("mediaType"), str) else ""
    name = part.get("filename") if isinstance(part.get("filename"), str) and part.get("filename") else media
    payload, reference = _file_payload(part.get("data"))
    is_binary, is_text = media in BINARY_MEDIA_TYPES, bool(_TEXT_LIKE.fullmatch(media))
    if reference is not None and (is_binary or is_text):
        notes.append(f"{where}: file {name!r} is a reference ({reference}), not in the database")
        return {
            "type": "text",
            "text": f"[File not in the database: {name} ({media}) at {reference}; "
            "the harness resolved it to its bytes when it sent this turn]",
        }
    if is_binary:
        if payload is None:
            notes.append(f"{where}: file {name!r} holds no readable data")
            return {"type": "text", "text": f"[File not in the database: {name} ({media}); its stored data is not base64]"}
        out = {"type": "file", "mediaType": media, "data": payload}
        if isinstance(part.get("filename"), str):
            out["filename"] = part["filename"]
        return out
    if is_text:
        try:
            decoded = base64.b64decode(payload or "", validate=True).decode("utf-8") if payload is not None else None
        except (binascii.Error, ValueError):
            decoded = None
        return {"type": "text", "text": f"[File: {name}]\n{decoded if decoded is not None else '(could not read file)'}"}
    return {
        "type": "text",
        "text": f"[Attached file: {name} ({media}) — this format is not supported by the model and was skipped]",
    }


def _user_message(message: Mapping[str, Any], notes: list[str], where: str) -> JsonDict:
    content = message.get("content")
    if isinstance(content, str):
        return {"role": "user", "content": content}
    parts = [p for p in (_user_part(part, notes, where) for part in content or []) if p is not None]
    return {"role": "user", "content": parts}


def to_model_messages(context: Iterable[Mapping[str, Any]]) -> ModelMessages:
    """SPEC §8: the harness's stored messages as the model messages it sends.

    Dropped messages and unresolved files are listed in the result's
    ``notes`` (nothing is dropped silently). The compaction summary is a
    stored user message and goes as one, as the harness sends it.
    """
    out = ModelMessages()
    for index, message in enumerate(context):
        where = f"message {index}"
        role = message.get("role") if isinstance(message, Mapping) else None
        if role == "tool":
            converted = _tool_message(message, out.notes, where)
        elif role == "assistant":
            converted = _assistant_message(message, out.notes, where)
        elif role == "system":
            converted = {"role": "system", "content": _content_text(message.get("content"))}
        elif role == "user":
            converted = _user_message(message, out.notes, where)
        else:
            out.notes.append(f"{where}: role {role!r} is not a model role; dropped")
            converted = None
        if converted is not None:
            out.append(converted)
    return out


def _model(messages: Iterable[Mapping[str, Any]]) -> ModelMessages:
    """Model messages as they are (a :class:`ModelMessages`), else stored messages converted."""
    return messages if isinstance(messages, ModelMessages) else to_model_messages(messages)


def _user_parts(content: str | list[JsonDict]) -> list[JsonDict]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _result_text(output: Mapping[str, Any]) -> str:
    return output["value"] if output.get("type") == "text" else _stringify(output.get("value"))


# --- step 2: providers ----------------------------------------------------------------


def _anthropic_block(part: JsonDict) -> JsonDict:
    kind = part["type"]
    if kind == "text":
        return {"type": "text", "text": part["text"]}
    if kind == "file":
        source = {"type": "base64", "media_type": part["mediaType"], "data": part["data"]}
        return {"type": "document" if part["mediaType"] == "application/pdf" else "image", "source": source}
    if kind == "tool-call":
        return {"type": "tool_use", "id": part["toolCallId"], "name": part["toolName"], "input": part["input"]}
    if kind == "tool-result":
        return {"type": "tool_result", "tool_use_id": part["toolCallId"], "content": _result_text(part["output"])}
    raise ReplayError(f"no Anthropic block for model part {kind!r}")


def to_anthropic(
    messages: Iterable[Mapping[str, Any]],
    system: str | None = None,
    *,
    model: str = DEFAULT_ANTHROPIC_MODEL,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> JsonDict:
    """An Anthropic Messages API request (``anthropic.types.MessageCreateParamsNonStreaming``).

    Tool results become ``tool_result`` blocks in a user turn, and
    consecutive same-role turns are merged (the API requires alternation), as
    the AI SDK's Anthropic adapter does. ``system`` and leading system
    messages become the top-level ``system``; a system message after the
    conversation started cannot sit there and goes as a ``[system]`` user
    text block (the harness's contexts hold none).
    """
    model_messages = _model(messages)
    systems = [system] if system is not None else []
    turns: list[JsonDict] = []
    for message in model_messages:
        role = message["role"]
        if role == "system" and not turns:
            systems.append(message["content"])
            continue
        if role == "system":
            blocks, role = [{"type": "text", "text": f"[system] {message['content']}"}], "user"
        elif role == "user":
            blocks = [_anthropic_block(p) for p in _user_parts(message["content"])]
        else:
            blocks = [_anthropic_block(p) for p in message["content"]]
            role = "user" if role == "tool" else "assistant"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    request: JsonDict = {"model": model, "max_tokens": max_tokens, "messages": turns}
    if systems:
        request["system"] = "\n\n".join(systems)
    return request


def _data_url(part: JsonDict) -> str:
    return f"data:{part['mediaType']};base64,{part['data']}"


def _openai_user(content: str | list[JsonDict], index: int) -> JsonDict:
    if isinstance(content, str):
        return {"role": "user", "content": content}
    if len(content) == 1 and content[0]["type"] == "text":
        return {"role": "user", "content": content[0]["text"]}  # the AI SDK sends a lone text part as a string
    parts: list[JsonDict] = []
    for number, part in enumerate(content):
        if part["type"] == "text":
            parts.append({"type": "text", "text": part["text"]})
        elif part["mediaType"] == "application/pdf":
            filename = part.get("filename") or f"part-{index}-{number}.pdf"
            parts.append({"type": "file", "file": {"filename": filename, "file_data": _data_url(part)}})
        else:
            parts.append({"type": "image_url", "image_url": {"url": _data_url(part)}})
    return {"role": "user", "content": parts}


def to_openai(
    messages: Iterable[Mapping[str, Any]],
    system: str | None = None,
    *,
    model: str = DEFAULT_OPENAI_MODEL,
) -> JsonDict:
    """An OpenAI Chat Completions request (``CompletionCreateParamsNonStreaming``).

    Assistant tool calls become ``tool_calls`` (arguments as JSON text), and
    each tool result its own ``tool`` message, as the AI SDK's OpenAI adapter
    does; images go as data-URL ``image_url`` parts and PDFs as ``file`` parts.
    """
    out: list[JsonDict] = [{"role": "system", "content": system}] if system is not None else []
    for index, message in enumerate(_model(messages)):
        role = message["role"]
        if role == "system":
            out.append({"role": "system", "content": message["content"]})
        elif role == "user":
            out.append(_openai_user(message["content"], index))
        elif role == "assistant":
            text = "".join(p["text"] for p in message["content"] if p["type"] == "text")
            calls = [
                {
                    "id": p["toolCallId"],
                    "type": "function",
                    "function": {"name": p["toolName"], "arguments": _stringify(p["input"])},
                }
                for p in message["content"]
                if p["type"] == "tool-call"
            ]
            converted: JsonDict = {"role": "assistant", "content": text}
            if calls:
                converted["tool_calls"] = calls
            out.append(converted)
        else:
            for part in message["content"]:
                if part.get("type") == "tool-result":
                    out.append({"role": "tool", "tool_call_id": part["toolCallId"], "content": _result_text(part["output"])})
    return {"model": model, "messages": out}


def to_inspect_messages(messages: Iterable[Mapping[str, Any]], system: str | None = None) -> list[JsonDict]:
    """Inspect AI ``ChatMessage`` dicts (what ``inspect_ai.dataset`` reads as a sample's input).

    Tool calls carry ``id``, ``function`` and ``arguments`` (a dict); each
    tool result is one ``tool`` message with ``tool_call_id`` and
    ``function``; images are ``ContentImage`` and PDFs ``ContentDocument``
    (data URLs).
    """
    out: list[JsonDict] = [{"role": "system", "content": system}] if system is not None else []
    for message in _model(messages):
        role = message["role"]
        if role == "system":
            out.append({"role": "system", "content": message["content"]})
        elif role == "user":
            content = message["content"]
            if not isinstance(content, str):
                content = [
                    {"type": "text", "text": p["text"]}
                    if p["type"] == "text"
                    else {"type": "document", "document": _data_url(p), "mime_type": p["mediaType"], "filename": p.get("filename") or "document.pdf"}
                    if p["mediaType"] == "application/pdf"
                    else {"type": "image", "image": _data_url(p)}
                    for p in content
                ]
            out.append({"role": "user", "content": content})
        elif role == "assistant":
            text = "".join(p["text"] for p in message["content"] if p["type"] == "text")
            calls = [
                {"id": p["toolCallId"], "function": p["toolName"], "arguments": p["input"], "type": "function"}
                for p in message["content"]
                if p["type"] == "tool-call"
            ]
            converted: JsonDict = {"role": "assistant", "content": text}
            if calls:
                converted["tool_calls"] = calls
            out.append(converted)
        else:
            for part in message["content"]:
                if part.get("type") == "tool-result":
                    out.append(
                        {
                            "role": "tool",
                            "content": _result_text(part["output"]),
                            "tool_call_id": part["toolCallId"],
                            "function": part["toolName"],
                        }
                    )
    return out


# --- validation against the SDKs' own request types ------------------------------------


def _adapter(format: Format) -> Any:
    try:
        from pydantic import TypeAdapter

        if format == "anthropic":
            from anthropic.types.message_create_params import (
                MessageCreateParamsNonStreaming as Params,
            )
        elif format == "openai":
            from openai.types.chat.completion_create_params import (
                CompletionCreateParamsNonStreaming as Params,
            )
        else:
            raise ReplayError(f"unknown request format {format!r}: use 'anthropic' or 'openai'")
    except ImportError as exc:
        raise ReplayError(
            f"validating {format} requests needs the SDK: pip install 'poncho_replay[replay]' ({exc})"
        ) from exc
    cache = _ADAPTERS.setdefault(format, TypeAdapter(Params))
    return cache


_ADAPTERS: dict[str, Any] = {}


def _materialise(value: Any) -> Any:
    """Consume pydantic's lazy ``Iterable`` validators (errors surface only when iterated)."""
    if isinstance(value, Mapping):
        return {k: _materialise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, Iterator)) or type(value).__name__ == "ValidatorIterator":
        return [_materialise(v) for v in value]
    return value


def validate_request(request: Mapping[str, Any], format: Format) -> None:
    """Check a request against the official SDK's request param type (offline, no client).

    The SDKs' params are ``TypedDict``s; pydantic validates them with a
    ``TypeAdapter``. Two gaps of plain validation are closed: nested
    ``Iterable`` fields are consumed (pydantic checks them lazily), and the
    validated value must equal the input, so an unknown key (which a
    ``TypedDict`` silently ignores) or a coerced value is an error too.

    Raises:
        RequestValidationError: with pydantic's message, or the first key path that differs.
    """
    from pydantic import ValidationError

    adapter = _adapter(format)
    try:
        validated = _materialise(adapter.validate_python(request))
    except ValidationError as exc:
        raise RequestValidationError(f"{format} request rejected by the SDK's type: {exc}") from exc
    where = _first_difference(request, validated, "request")
    if where is not None:
        raise RequestValidationError(f"{format} request not exactly of the SDK's type at {where} (unknown key or coerced value)")


def _first_difference(a: Any, b: Any, path: str) -> str | None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in a:
            if key not in b:
                return f"{path}.{key}"
            found = _first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, list):
        if len(a) != len(b):
            return path
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if (type(a) is type(b) and a == b) else path
