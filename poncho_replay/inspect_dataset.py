"""Fleet-wide requests (a DataFrame) and an Inspect AI dataset (JSONL samples).

Each sample's ``input`` is the context the harness sent at a turn's start
(Inspect ``ChatMessage`` dicts with tool calls), its ``target`` the text of
the reply the harness stored for that turn (the model's first answer to
exactly that input; a tool step's calls are in ``metadata.reply_tool_calls``)
and its ``metadata`` the conversation, seq, turn, policy, where the context
came from, and the audit's causes when the conversation diverged. Files are
written with :func:`poncho_replay._js.json_dumps` (lone surrogates escaped as
``JSON.stringify`` does, SPEC §9), one sample per line, which
``inspect_ai.dataset.json_dataset`` reads as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from poncho_replay._js import json_dumps
from poncho_replay.model_requests import build_request, conversation_requests
from poncho_replay.policy import Policy
from poncho_replay.requests import Format, to_inspect_messages, to_model_messages

if TYPE_CHECKING:
    from poncho_replay.workspace import Workspace

__all__ = ["inspect_samples", "llm_requests_df", "write_inspect_dataset"]


def _conversations(ws: Workspace, ids: Iterable[str] | None) -> Iterator[tuple[str, Any]]:
    rows = ws.sql("SELECT DISTINCT source, id FROM conversations ORDER BY source, id")
    wanted = set(ids) if ids is not None else None
    for source, cid in rows.itertuples(index=False):
        if wanted is None or cid in wanted:
            view = ws.conversation(cid, source=source)
            if view.problem is None:
                yield source, view


def llm_requests_df(
    ws: Workspace,
    *,
    format: Format = "anthropic",
    policy: Policy = "0.58",
    system: str | None = None,
    conversations: Iterable[str] | None = None,
    hidden: bool = False,
) -> pd.DataFrame:
    """One row per (conversation, user turn): the request the harness sends at the turn's start.

    Columns: ``source, conversation_id, turn_id, seq, policy, context_source,
    dated_by, messages, request`` (JSON text), ``notes``, ``unavailable``
    (why a blob-reading policy has no context for that turn, else None).
    """
    rows = []
    for source, view in _conversations(ws, conversations):
        for tc, reason in conversation_requests(view.blob, view.entries, policy=policy, hidden=hidden):
            if tc is None:
                rows.append({"source": source, "conversation_id": view.blob.get("conversationId"), "policy": policy, "unavailable": reason})
                continue
            request, notes = build_request(tc.context, format, system)
            rows.append(
                {
                    "source": source,
                    "conversation_id": tc.conversation_id,
                    "turn_id": tc.turn.turn_id if tc.turn else None,
                    "seq": tc.turn.seq if tc.turn else None,
                    "policy": policy,
                    "context_source": tc.reads,
                    "dated_by": tc.dated_by,
                    "messages": len(request["messages"]),
                    "request": json_dumps(request),
                    "notes": [*tc.notes, *notes],
                    "unavailable": None,
                }
            )
    columns = ["source", "conversation_id", "turn_id", "seq", "policy", "context_source", "dated_by", "messages", "request", "notes", "unavailable"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["seq"] = frame["seq"].astype("Int64")
    frame["messages"] = frame["messages"].astype("Int64")
    frame.attrs["system_prompt"] = "given" if system is not None else "not stored by the harness and none given"
    return frame


def _causes(ws: Workspace, policy: Policy) -> dict[tuple[str, str], list[str]]:
    report = ws.parity(policy=policy)
    out: dict[tuple[str, str], list[str]] = {}
    for row in report.to_dict("records"):
        causes = row.get("causes")
        verdict = row.get("verdict")
        if verdict not in (None, "match") and causes is not None:
            out[(row.get("source"), row.get("conversation_id"))] = [str(c) for c in causes]
    return out


def inspect_samples(
    ws: Workspace,
    *,
    policy: Policy = "0.58",
    system: str | None = None,
    conversations: Iterable[str] | None = None,
    hidden: bool = False,
    causes: bool = True,
) -> list[dict[str, Any]]:
    """Inspect AI sample records, one per user turn whose context the policy's source holds."""
    diverged = _causes(ws, policy) if causes else {}
    samples = []
    for source, view in _conversations(ws, conversations):
        for tc, _reason in conversation_requests(view.blob, view.entries, policy=policy, hidden=hidden):
            if tc is None:
                continue
            inputs = to_inspect_messages(to_model_messages(tc.context), system)
            if not inputs:
                continue
            reply = to_inspect_messages([m for m in tc.reply[:1] if isinstance(m, Mapping)])
            first = reply[0] if reply else {"content": ""}
            cid = tc.conversation_id
            sample_id = f"{cid}:{tc.turn.seq if tc.turn else 'blob-' + str(len(tc.context))}"
            samples.append(
                {
                    "id": sample_id,
                    "input": inputs,
                    "target": first.get("content") or "",
                    "metadata": {
                        "source": source,
                        "conversation_id": cid,
                        "seq": tc.turn.seq if tc.turn else None,
                        "turn_id": tc.turn.turn_id if tc.turn else None,
                        "policy": str(policy),
                        "context_source": tc.reads,
                        "dated_by": tc.dated_by,
                        "system_prompt": "given" if system is not None else "not stored by the harness and none given",
                        "reply_tool_calls": first.get("tool_calls", []),
                        "causes": diverged.get((source, cid), []),
                        "notes": tc.notes,
                    },
                }
            )
    return samples


def write_inspect_dataset(samples: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write sample records as JSONL (``JSON.stringify``-style escapes); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for sample in samples:
            out.write(json_dumps(sample) + "\n")
    return path
