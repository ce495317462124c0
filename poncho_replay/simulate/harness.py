"""The harness 0.57/0.58 write sites, replayed against a backend (SPEC §5).

:class:`Simulator` plays the orchestrator: each public method is one thing
that happens to a conversation (a chat turn, an approval resume, a subagent
result, a callback turn, a thread, a rename) and performs the same blob
writes and the same fire-and-forget entry appends, in the same order, as
``run-conversation-turn.ts`` and ``orchestrator.ts``. Entry dicts come from
:mod:`poncho_replay.dualwrite` (the builders, ``stamp_ids``,
``new_harness_messages_this_turn``, ``guess_first_kept_seq``,
``parity_check``), so there is one owner of each rule.

Every dual-write append goes through :meth:`Simulator._append`, where the
:class:`~poncho_replay.simulate.faults.FaultPlan` decides its fate.

Example:
    >>> from poncho_replay.simulate import Simulator, Turn
    >>> sim = Simulator(seed=7)
    >>> cid = sim.create("owner-ines", "Garden")
    >>> sim.turn(cid, Turn("Water how often?", reply="Twice a week.", tools=[("web_search", "Looking.", "ok")]))
    >>> [e["type"] for e in sim.backend.read(cid)][:2]
    ['user_message', 'harness_message']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from poncho_replay import dualwrite as dw
from poncho_replay.errors import StoreError
from poncho_replay.models import JsonDict
from poncho_replay.simulate.backend import Backend, DictBackend
from poncho_replay.simulate.clock import Clock

RENAME_DELAY_MS = 60_000
"""How long after the last turn a simulated rename happens."""
from poncho_replay.simulate.faults import Fate, FaultPlan, Faults

APPROVAL_REQUIRED = "Tool error: approval required"
"""The tool result a step gets when its tool needs an approval (result ``None``)."""

ToolStep = tuple[str, str, str | None]
"""``(tool name, text the model said before calling it, result or None = approval needed)``."""


@dataclass(frozen=True)
class Turn:
    """One user turn as a script.

    Attributes:
        user: the user message content (a string or a list of parts).
        reply: the model's final text ("" = none).
        tools: one model step per tool call, before the final reply.
        compact_keep: compact the history at the turn's first step, keeping
            this many of its last messages (None = no compaction).
        hidden: a system-triggered prompt: written as a hidden
            ``user_message``, kept out of the blob's display messages.
        skip_final_update: the finalize blob write is lost (a stale blob);
            the finalize entries still go out.
    """

    user: str | list[JsonDict]
    reply: str = ""
    tools: Sequence[ToolStep] = ()
    compact_keep: int | None = None
    hidden: bool = False
    skip_final_update: bool = False


@dataclass
class Event:
    """Something the simulator did that the data alone would not tell."""

    conversation_id: str
    site: str
    fate: Fate | str
    detail: str = ""


@dataclass
class _Ref:
    owner_id: str
    tenant_id: str | None
    dual_write: bool = True


class Simulator:
    """Drives a backend through conversations the way the harness orchestrator does.

    Args:
        backend: where to write; default an in-process :class:`DictBackend`.
        faults: the dual-write's faults (default none).
        seed: seeds ids, timestamps and content; faults have their own seed.
        verify: run the parity check after each finalize, as the harness
            does with ``PONCHO_VERIFY_ENTRIES=1``; lines go to :attr:`logs`.
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        faults: Faults | None = None,
        seed: int = 0,
        verify: bool = True,
    ) -> None:
        self.clock = Clock(seed)
        self.backend: Backend = backend if backend is not None else DictBackend(self.clock)
        self.plan = FaultPlan(faults)
        self.verify = verify
        self.logs: list[str] = []
        self.events: list[Event] = []
        self._refs: dict[str, _Ref] = {}
        self.writeback = self.plan.faults.writeback
        """0.58.0's read cutover on every get -> modify -> update (switchable per operation)."""
        self._deferred: dict[str, list[tuple[str, list[JsonDict]]]] = {}


    # --- conversations ------------------------------------------------------------

    def create(
        self, owner_id: str = "local-owner", title: str = "", tenant_id: str | None = None, *, dual_write: bool = True
    ) -> str:
        """A new conversation; ``dual_write=False`` makes it pre-0.57 (blob only)."""
        conv = self.backend.create(owner_id, title, tenant_id)
        cid = conv["conversationId"]
        self._refs[cid] = _Ref(owner_id, tenant_id, dual_write)
        return cid

    def set_dual_write(self, conversation_id: str, on: bool) -> None:
        """Switch the dual-write for one conversation (an upgrade mid-conversation)."""
        self._refs[conversation_id].dual_write = on

    def rename(self, conversation_id: str, title: str) -> None:
        """``store.rename``: get (with the cutover when on) -> retitle -> update.

        A person renames a conversation a while after its last turn, so the
        clock moves on first; that gap is what lets the audit see the later
        blob write (``blob_overwritten_by_rebuild``).
        """
        self.clock.now += RENAME_DELAY_MS
        self.backend.rename(conversation_id, title, cutover=self.writeback)

    def thread(self, parent_id: str, title: str, anchor_index: int = -1) -> str:
        """A thread child anchored on a parent message, holding a copy of the messages up to it.

        The child has no ``_harnessMessages``, so its first turn runs on the
        copied messages and the finalize diff appends all of them.
        """
        parent = self.backend.get(parent_id, cutover=self.writeback)
        ref = self._refs[parent_id]
        messages = parent["messages"]
        idx = anchor_index % len(messages)
        anchor = messages[idx]
        cid = self.create(ref.owner_id, title, ref.tenant_id, dual_write=ref.dual_write)
        child = self.backend.get(cid, cutover=False)
        child["parentConversationId"] = parent_id
        child["parentMessageId"] = (anchor.get("metadata") or {}).get("id")
        child["threadMeta"] = {"parentMessageIndex": idx}
        child["messages"] = list(messages[: idx + 1])
        self.backend.update(child)
        return cid

    # --- a chat turn (runConversationTurn) ---------------------------------------

    def turn(self, conversation_id: str, turn: Turn) -> None:
        """One user turn: user write, optional compaction, finalize (SPEC §5)."""
        conv = self.backend.get(conversation_id, cutover=self.writeback)
        pre_harness = list(conv["_harnessMessages"]) if conv.get("_harnessMessages") else None
        history = pre_harness if pre_harness is not None else list(conv["messages"])
        pre_display = list(conv["messages"])
        turn_id = self.clock.uuid()
        run_id = f"run_{self.clock.uuid()}"
        started = self.clock.tick()

        user_msg = {"role": "user", "content": turn.user, "metadata": {"id": self.clock.uuid(), "timestamp": started}}
        conv["messages"] = pre_display if turn.hidden else [*pre_display, user_msg]
        conv["runStatus"] = "running"
        self.backend.update(conv)
        self._append("user_turn", conversation_id, [dw.user_message_entry(user_msg, turn_id, hidden=turn.hidden)])

        if turn.compact_keep is not None:
            history, conv["messages"] = self._compact(conv, history, pre_display, turn.compact_keep)
            if not turn.hidden:
                conv["messages"] = [*conv["messages"], user_msg]

        transcript, bubble = self._run(turn, user_msg, turn_id, run_id, started)
        conv["_harnessMessages"] = [*history, *transcript]
        if bubble is not None:
            conv["messages"] = [*conv["messages"], bubble]
        conv["runtimeRunId"] = run_id
        conv["runStatus"] = "idle"
        conv["contextTokens"] = 120 * len(conv["_harnessMessages"])
        conv["contextWindow"] = 200_000
        if turn.skip_final_update:
            self.events.append(Event(conversation_id, "finalize", "blob_write_skipped"))
        else:
            self.backend.update(conv)

        new, approximate = dw.new_harness_messages_this_turn(pre_harness, conv["_harnessMessages"])
        if approximate:
            self.logs.append(
                f"[entries-dual-write] {conversation_id} harness-message diff approximate "
                "(blob array shrank this turn — likely compaction); appended full context"
            )
        final = conv["messages"][-1] if conv["messages"] else None
        entries = dw.harness_message_entries(new, turn_id)
        if final is not None and final.get("role") == "assistant":
            entries.append(dw.assistant_message_entry(final, turn_id, run_id))
        self._append("finalize", conversation_id, entries)
        if self.verify and self._refs[conversation_id].dual_write:
            result = dw.parity_check(
                self.backend.read(conversation_id),
                conv["_harnessMessages"],
                conv["messages"],
                conversation_id=conversation_id,
            )
            self.logs.append(result.log_line)

    def _compact(
        self, conv: JsonDict, history: list[JsonDict], pre_display: list[JsonDict], keep: int
    ) -> tuple[list[JsonDict], list[JsonDict]]:
        """Compaction at the first step: the blob's compacted arrays and the guessed entry."""
        kept = history[len(history) - keep :] if 0 < keep <= len(history) else (list(history) if keep else [])
        summary = {
            "role": "user",
            "content": (
                "[CONTEXT COMPACTION] This conversation was automatically compacted. "
                f"The summary below covers earlier messages.\n\n<summary>\n{len(history)} earlier messages.\n</summary>\n\n"
                "Continue from where the conversation left off without re-asking questions."
            ),
            "metadata": {"isCompactionSummary": True, "timestamp": self.clock.tick()},
        }
        removed = max(0, len(pre_display) - len(kept))
        conv["compactedHistory"] = [*(conv.get("compactedHistory") or []), *pre_display[:removed]]
        cid = conv["conversationId"]
        if self._refs[cid].dual_write:
            seqs = [e["seq"] for e in self.backend.read(cid, types=["harness_message"])]
            first_kept = dw.guess_first_kept_seq(seqs, 1 + len(kept))
            entry = dw.compaction_entry(summary, first_kept, tokens_before=conv.get("contextTokens"))
            self._append("compaction", cid, [entry])
        return [summary, *kept], [summary, *kept]

    def _run(
        self, turn: Turn, user_msg: JsonDict, turn_id: str, run_id: str, started: int
    ) -> tuple[list[JsonDict], JsonDict | None]:
        """The model run: its harness transcript and the display bubble (None = no content)."""
        meta = lambda step: {"timestamp": self.clock.tick(), "id": self.clock.uuid(), "step": step, "runId": run_id}
        transcript: list[JsonDict] = [
            {"role": "user", "content": user_msg["content"], "metadata": {"timestamp": self.clock.tick(), "id": self.clock.uuid()}}
        ]
        texts: list[str] = []
        activity: list[str] = []
        sections: list[JsonDict] = []
        for step, (name, said, result) in enumerate(turn.tools, start=1):
            call_id = f"toolu_{self.clock.hex(24)}"
            call = {"text": said, "tool_calls": [{"id": call_id, "name": name, "input": {}}]}
            outcome = APPROVAL_REQUIRED if result is None else result
            tool_result = [{"type": "tool_result", "tool_use_id": call_id, "tool_name": name, "content": outcome}]
            transcript.append({"role": "assistant", "content": _js_json(call), "metadata": meta(step)})
            transcript.append({"role": "tool", "content": _js_json(tool_result), "metadata": meta(step)})
            line = f"- {'error' if result is None else 'done'} `{name}`"
            activity.append(line)
            if said:
                texts.append(said)
                sections.append({"type": "text", "content": said})
            sections.append({"type": "tools", "content": [line]})
        transcript.append({"role": "assistant", "content": turn.reply, "metadata": meta(len(turn.tools) + 1)})
        if turn.reply:
            texts.append(turn.reply)
            sections.append({"type": "text", "content": turn.reply})
        if not texts and not activity:
            return transcript, None
        bubble_meta: JsonDict = {"id": turn_id, "timestamp": started}
        if activity:
            bubble_meta["toolActivity"] = activity
        bubble_meta["sections"] = sections
        return transcript, {"role": "assistant", "content": "\n\n".join(texts), "metadata": bubble_meta}

    # --- resume after an approval or a continuation --------------------------------

    def resume(self, conversation_id: str, text: str, *, merge: bool = True) -> None:
        """A resumed run: amend the last bubble (``merge``) or push a fresh one.

        The blob's transcript gets the resumed message; no ``harness_message``
        entries are written. An amendment targets the latest
        ``assistant_message`` in the log, and is skipped with a warning when
        there is none.
        """
        conv = self.backend.get(conversation_id, cutover=self.writeback)
        run_id = f"run_{self.clock.uuid()}"
        resumed = {"role": "assistant", "content": text, "metadata": {"timestamp": self.clock.tick(), "id": self.clock.uuid(), "step": 1, "runId": run_id}}
        conv["_harnessMessages"] = [*(conv.get("_harnessMessages") or []), resumed]
        last = conv["messages"][-1] if conv["messages"] else None
        merged = merge and last is not None and last.get("role") == "assistant"
        if merged:
            meta = dict(last.get("metadata") or {})
            meta["sections"] = [*(meta.get("sections") or []), {"type": "text", "content": text}]
            content = last["content"] if isinstance(last["content"], str) else ""
            bubble = {**last, "content": content + text, "metadata": meta}
            conv["messages"] = [*conv["messages"][:-1], bubble]
        else:
            bubble = {"role": "assistant", "content": text, "metadata": {"sections": [{"type": "text", "content": text}]}}
            conv["messages"] = [*conv["messages"], bubble]
        conv["runtimeRunId"] = run_id
        conv["runStatus"] = "idle"
        conv["pendingApprovals"] = []
        self.backend.update(conv)
        if not merged:
            self._append("resume", conversation_id, [dw.assistant_message_entry(bubble, f"resume-{conversation_id}", run_id)])
            return
        if not self._refs[conversation_id].dual_write:
            return
        targets = self.backend.read(conversation_id, types=["assistant_message"])
        if not targets:
            self.logs.append(f"[entries-dual-write] {conversation_id} amendment skipped: no assistant_message entry")
            self.events.append(Event(conversation_id, "resume", "amendment_skipped"))
            return
        self._append("resume", conversation_id, [dw.assistant_amendment_entry(targets[-1]["id"], text)])

    # --- subagents ------------------------------------------------------------------

    def subagent_result(
        self, conversation_id: str, subagent_id: str, task: str, response: str, *, status: str = "completed"
    ) -> None:
        """A subagent finished: ``append_subagent_result`` on the blob, one entry in the log."""
        steps = 1 + len(response) % 4
        result = {
            "subagentId": subagent_id,
            "task": task,
            "status": status,
            "result": {"status": status, "response": response, "steps": steps, "duration": 1000 * steps},
            "timestamp": self.clock.tick(),
        }
        self.backend.append_subagent_result(conversation_id, result, cutover=self.writeback)
        self._append("subagent_result", conversation_id, [dw.subagent_result_entry(result)])

    def callback(self, conversation_id: str, reply: str) -> None:
        """A subagent callback turn (``processSubagentCallback``), SPEC §5.

        The blob consumes the pending results, pushes one injected
        ``[Subagent Result]`` message each and copies ``messages`` into
        ``_harnessMessages``; the log gets ``callback_started`` (the seqs of
        every ``subagent_result`` whose subagentId was consumed), one hidden
        ``user_message`` per injected message, the reply's
        ``assistant_message``, and no ``harness_message`` at all.
        """
        conv = self.backend.get(conversation_id, cutover=self.writeback)
        pending = conv.get("pendingSubagentResults") or []
        if not pending:
            return
        count = int(conv.get("subagentCallbackCount") or 0) + 1
        injected = [_injected_message(pr) for pr in pending]
        conv["pendingSubagentResults"] = []
        conv["runningCallbackSince"] = self.clock.tick()
        conv["runStatus"] = "running"
        conv["subagentCallbackCount"] = count
        conv["messages"] = [*conv["messages"], *injected]
        conv["_harnessMessages"] = list(conv["messages"])
        self.backend.update(conv)

        if self._refs[conversation_id].dual_write:
            ids = {pr["subagentId"] for pr in pending}
            consumed = [e["seq"] for e in self.backend.read(conversation_id, types=["subagent_result"]) if e["result"]["subagentId"] in ids]
            self._append("callback_started", conversation_id, [dw.callback_started_entry(consumed)])
        hidden_turn = f"callback-{count}-{conversation_id}"
        self._append("callback_hidden", conversation_id, [dw.user_message_entry(m, hidden_turn, hidden=True) for m in injected])

        fresh = self.backend.get(conversation_id, cutover=self.writeback)
        run_id = f"run_{self.clock.uuid()}"
        bubble = {"role": "assistant", "content": reply, "metadata": {"sections": [{"type": "text", "content": reply}]}}
        fresh["messages"] = [*fresh["messages"], bubble]
        fresh["_harnessMessages"] = list(fresh["messages"])
        fresh["runtimeRunId"] = run_id
        fresh["runStatus"] = "idle"
        fresh.pop("runningCallbackSince", None)
        self.backend.update(fresh)
        self._append("callback_reply", conversation_id, [dw.assistant_message_entry(bubble, f"callback-{conversation_id}", run_id)])

    def clear_callback_lock(self, conversation_id: str) -> None:
        """``store.clear_callback_lock``: get (with the cutover when on) -> unset -> update."""
        self.backend.clear_callback_lock(conversation_id, cutover=self.writeback)

    # --- the fire-and-forget append (appendEntriesSafe) ------------------------------

    def _append(self, site: str, conversation_id: str, entries: list[JsonDict]) -> None:
        """One ``void appendEntriesSafe(...)``, with its drawn fate; never raises."""
        ref = self._refs[conversation_id]
        if not entries or not ref.dual_write:
            return
        fate = self.plan.fate(site)
        if fate != "ok":
            self.events.append(Event(conversation_id, site, fate, f"{len(entries)} entries"))
        if fate == "lost":
            return
        if fate == "reorder":
            self._deferred.setdefault(conversation_id, []).append((site, entries))
            return
        self._write(conversation_id, entries, fail=fate == "fail")
        if fate == "duplicate":
            self._write(conversation_id, entries)
        for _site, held in self._deferred.pop(conversation_id, []):
            self._write(conversation_id, held)

    def flush(self) -> None:
        """Land appends still held back by a reorder (their overtaker never came)."""
        for cid in list(self._deferred):
            for _site, held in self._deferred.pop(cid):
                self._write(cid, held)

    def _write(self, conversation_id: str, entries: list[JsonDict], *, fail: bool = False) -> None:
        ref = self._refs[conversation_id]
        try:
            if fail:
                raise StoreError(f"simulated append failure for conversation {conversation_id}")
            stamped = dw.stamp_ids(entries, self.clock.uuid)
            # The dual-write passes the owner id where the store expects the agent id (SPEC §5).
            self.backend.append(conversation_id, ref.owner_id, ref.tenant_id, stamped)
        except Exception as exc:  # noqa: BLE001 - appendEntriesSafe swallows and logs every failure
            self.logs.append(f"[entries-dual-write] append failed for {conversation_id}: {exc}")


def _injected_message(pr: JsonDict) -> JsonDict:
    """The hidden ``[Subagent Result]`` prompt a callback turn injects for one result."""
    res = pr.get("result")
    if res:
        body = f"Status: {res['status']}\nResponse: {res['response']}\nSteps: {res['steps']}, Duration: {res['duration']}ms"
    else:
        body = "(no result)"
    return {
        "role": "user",
        "content": f"[Subagent Result] Subagent \"{pr['task']}\" ({pr['subagentId']}) {pr['status']}:\n\n{body}",
        "metadata": {"_subagentCallback": True, "subagentId": pr["subagentId"], "task": pr["task"], "timestamp": pr["timestamp"]},
    }


def _js_json(value: Any) -> str:
    """``JSON.stringify(value)``: compact, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
