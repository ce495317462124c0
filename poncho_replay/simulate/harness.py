"""The harness's write sites, 0.56 to 0.61.x, replayed against a backend (SPEC §5, §7).

:class:`Simulator` plays the orchestrator: each public method is one thing
that happens to a conversation (a chat turn, an approval resume, a subagent
result, a callback turn, a thread, a rename) and performs the same blob
writes and the same fire-and-forget entry appends, in the same order, as
``run-conversation-turn.ts`` and ``orchestrator.ts``. Entry dicts come from
:mod:`poncho_replay.dualwrite` (the builders, ``stamp_ids``,
``new_harness_messages_this_turn``, ``guess_first_kept_seq``,
``parity_check``), so there is one owner of each rule.

Each conversation is written by one harness release at a time
(:class:`~poncho_replay.simulate.releases.HarnessRelease`, default 0.58.0;
:meth:`Simulator.upgrade` moves it on): up to 0.56 the blob alone, 0.57.0 to
0.59.2 the transcript dual-write of SPEC §5, from 0.59.3 the blob plus the
subagent-result queue of SPEC §7. Its ``get()`` reads as that release does.

Every entry append goes through :meth:`Simulator._append`, where the
:class:`~poncho_replay.simulate.faults.FaultPlan` decides its fate: the
dual-write's and the 0.59.3+ queue's alike.

Each write site that can make the log and the blob differ also records a
:class:`~poncho_replay.simulate.truth.Truth` in :attr:`Simulator.truth`,
when it happens, under the audit's name for it: the ground truth the
audit's causes are measured against (``benchmarks/bench_causes.py``).
Recording reads the log at most where the harness itself does (compaction,
resume) and never changes what is written.

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
from poncho_replay.simulate.faults import Fate, FaultPlan, Faults
from poncho_replay.simulate.releases import (
    TASK_OUTCOMES,
    HarnessRelease,
    harness_release,
    queue_injected_message,
)
from poncho_replay.simulate.truth import (
    FIELDS,
    QUEUE_TYPES,
    TRANSCRIPT,
    Truth,
    entry_fields,
    fault_fields,
)

_BLOB_KEYS = {"llm": "_harnessMessages", "display": "messages", "pending": "pendingSubagentResults"}

RENAME_DELAY_MS = 60_000
"""How long after the last turn a simulated rename happens."""

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
    dual_write: bool
    release: HarnessRelease
    transcript_logged: bool = False
    """Whether any transcript entry of this conversation ever landed (the log can show moved history)."""

    @property
    def transcript_entries(self) -> bool:
        """Whether this conversation's turns append transcript entries now (SPEC §5)."""
        return self.dual_write and self.release.dual_write


class Simulator:
    """Drives a backend through conversations the way the harness orchestrator does.

    Args:
        backend: where to write; default an in-process :class:`DictBackend`.
        faults: the faults of the entry appends, dual-write and queue (default none).
        seed: seeds ids, timestamps and content; faults have their own seed.
        verify: run the parity check after each finalize, as the harness
            does with ``PONCHO_VERIFY_ENTRIES=1``; lines go to :attr:`logs`
            (no check from 0.59.3, which deleted it).
        harness: the release new conversations are written by (any version
            :func:`~poncho_replay.policy.resolve_policy` accepts, or
            ``"current"``).
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        faults: Faults | None = None,
        seed: int = 0,
        verify: bool = True,
        harness: str = "0.58.0",
    ) -> None:
        self.release = harness_release(harness)
        """The release new conversations start under."""
        self.clock = Clock(seed)
        self.backend: Backend = backend if backend is not None else DictBackend(self.clock)
        self.plan = FaultPlan(faults)
        self.verify = verify
        self.logs: list[str] = []
        self.events: list[Event] = []
        self.truth: list[Truth] = []
        """Every behaviour that can make a log and its blob differ, recorded where it happened."""
        self._truth_of: dict[str, list[Truth]] = {}
        self._refs: dict[str, _Ref] = {}
        self.writeback = self.plan.faults.writeback
        """0.58.0's read cutover on every get -> modify -> update (switchable per operation)."""
        self._deferred: dict[str, list[tuple[list[JsonDict], Sequence[Truth]]]] = {}

    # --- conversations ------------------------------------------------------------

    def create(
        self, owner_id: str = "local-owner", title: str = "", tenant_id: str | None = None, *, dual_write: bool = True
    ) -> str:
        """A new conversation under :attr:`release`; ``dual_write=False`` keeps its transcript out of the log.

        (A pre-0.57 conversation under a 0.57-0.59.2 simulator; the 0.59.3+
        queue is written whatever the flag says.)
        """
        conv = self.backend.create(owner_id, title, tenant_id)
        cid = conv["conversationId"]
        self._refs[cid] = _Ref(owner_id, tenant_id, dual_write, self.release)
        return cid

    def set_dual_write(self, conversation_id: str, on: bool) -> None:
        """Switch the dual-write for one conversation (an upgrade mid-conversation)."""
        self._refs[conversation_id].dual_write = on

    def upgrade(self, release: str, conversation_id: str | None = None) -> None:
        """Deploy another harness release: for one conversation, or for all and every new one.

        Later writes and reads of the conversation follow ``release``; what
        was written stays, as in a deployment that upgraded (0.58 transcript
        entries continued by 0.61.2's queue-only writes). Recorded as an
        ``upgrade`` :class:`Event` per conversation.
        """
        to = harness_release(release)
        if conversation_id is None:
            self.release = to
        for cid in [conversation_id] if conversation_id is not None else list(self._refs):
            self._refs[cid].release = to
            self.events.append(Event(cid, "upgrade", to.name))

    def _get(self, conversation_id: str) -> JsonDict:
        """The conversation as its release's ``get()`` serves it to a get -> modify -> update."""
        release = self._refs[conversation_id].release
        return self.backend.get(conversation_id, cutover=release.reads_log(self.writeback), policy=release.read)

    # --- ground truth -----------------------------------------------------------------

    def _note(
        self, conversation_id: str, cause: str, fields: Sequence[str], detail: str = "", blob_items: Sequence[JsonDict] = ()
    ) -> Truth:
        """Record one behaviour (see :mod:`poncho_replay.simulate.truth`)."""
        record = Truth(conversation_id, cause, tuple(fields), detail, blob_items=list(blob_items))
        self.truth.append(record)
        self._truth_of.setdefault(conversation_id, []).append(record)
        return record

    def _retire(self, conversation_id: str, fields: Sequence[str], spare: Sequence[Truth] = ()) -> None:
        """Take ``fields`` off earlier records (but ``spare``): a write-back made those fields agree."""
        for record in self._truth_of.get(conversation_id, ()):
            if not any(record is s for s in spare):
                record.fields = tuple(f for f in record.fields if f not in fields)

    def _observe_writeback(self, conversation_id: str, served: JsonDict, path: str, spare: Sequence[Truth] = ()) -> None:
        """A get -> update is about to write ``served`` back: note the write-back, retire what it overwrites.

        ``served`` is what the release's ``get()`` returned. The fields its
        read took from the log (0.58.0 with the cutover on: all three; 0.59.0
        on: the pending results, from 0.59.3 only when the log holds queue
        entries) are about to equal the log's rebuild in the blob, so earlier
        behaviours no longer show in them. Nothing is recorded when the
        rebuild equals the blob (the write-back changed nothing). ``spare``:
        records of the same operation, made before its get, whose effect
        the write-back does not undo (a queue entry lost before the push).
        """
        release = self._refs[conversation_id].release
        if not release.reads_log(self.writeback):
            return
        log = self.backend.read(conversation_id)
        reads = release.read.reads
        if reads == "pending_queue":
            log = [e for e in log if e["type"] in QUEUE_TYPES]
        if not log:
            return
        overwritten = FIELDS if reads == "full" else ("pending",)
        blob = self.backend.get(conversation_id, cutover=False)
        changed = [f for f in overwritten if (served.get(_BLOB_KEYS[f]) or []) != (blob.get(_BLOB_KEYS[f]) or [])]
        # appends a reorder still holds back are not in what this read served: once they land, the log
        # has them and the blob written back here does not (even an overtaken compaction, inert otherwise)
        held = [
            (entries, note)
            for entries, notes in self._deferred.get(conversation_id, [])
            for note in notes
            if note.cause == "lost_or_reordered_append" and note.detail.startswith("reorder")
        ]
        self._retire(conversation_id, overwritten, [*spare, *(note for _, note in held)])
        for entries, note in held:
            fed = set(note.fields) | (set(entry_fields(entries)) & set(overwritten))
            note.fields = tuple(f for f in FIELDS if f in fed)
        if changed:
            self._note(
                conversation_id,
                "blob_overwritten_by_rebuild",
                (),
                f"{path} under {release.name} wrote the log's {', '.join(changed)} into the blob",
            )

    def _observe_helper_writeback(self, conversation_id: str, path: str, spare: Sequence[Truth] = ()) -> None:
        """:meth:`_observe_writeback` for a store helper that does its own get -> update."""
        release = self._refs[conversation_id].release
        if release.reads_log(self.writeback):
            served = self.backend.get(conversation_id, cutover=True, policy=release.read)
            self._observe_writeback(conversation_id, served, path, spare)

    def _note_untracked(self, conversation_id: str, what: str) -> bool:
        """Note a blob-only write of a conversation whose transcript is not logged; whether it was one.

        From 0.59.3 the transcript dual-write is gone (``dual_write_ended``);
        before, a conversation not yet dual-writing is ``pre_dual_write``.
        """
        ref = self._refs[conversation_id]
        if ref.transcript_entries:
            return False
        if ref.release.queue_only:
            self._note(conversation_id, "dual_write_ended", TRANSCRIPT, f"{what} written by {ref.release.name}, no transcript entries")
        else:
            self._note(conversation_id, "pre_dual_write", TRANSCRIPT, f"{what} written before the dual-write ({ref.release.name})")
        return True

    def rename(self, conversation_id: str, title: str) -> None:
        """``store.rename`` as the conversation's release writes it (SPEC §7).

        Up to 0.59.0: get (with the release's read) -> retitle -> update.
        0.59.1-0.59.2: the ``title`` column only (the blob keeps the old
        title). 0.59.3 on: the column and the blob's title; ``updated_at``
        moves, the blob's ``updatedAt`` does not.

        A person renames a conversation a while after its last turn, so the
        clock moves on first; that gap is what lets the audit see the later
        blob write (``blob_overwritten_by_rebuild``).
        """
        self.clock.now += RENAME_DELAY_MS
        release = self._refs[conversation_id].release
        if release.rename == "get_update":
            self._observe_helper_writeback(conversation_id, "rename")
            self.backend.rename(conversation_id, title, cutover=release.reads_log(self.writeback), policy=release.read)
        else:
            self.backend.rename_title_column(conversation_id, title, in_blob=release.rename == "title_column_and_blob")

    def thread(self, parent_id: str, title: str, anchor_index: int = -1) -> str:
        """A thread child anchored on a parent message, holding a copy of the messages up to it.

        The child has no ``_harnessMessages``, so its first turn runs on the
        copied messages and the finalize diff appends all of them.
        """
        parent = self._get(parent_id)
        ref = self._refs[parent_id]
        messages = parent["messages"]
        idx = anchor_index % len(messages)
        anchor = messages[idx]
        cid = self.create(ref.owner_id, title, ref.tenant_id, dual_write=ref.dual_write)
        self._refs[cid].release = ref.release
        child = self.backend.get(cid, cutover=False)
        child["parentConversationId"] = parent_id
        child["parentMessageId"] = (anchor.get("metadata") or {}).get("id")
        child["threadMeta"] = {"parentMessageIndex": idx}
        child["messages"] = list(messages[: idx + 1])
        self.backend.update(child)
        if self._refs[cid].transcript_entries:
            self._note(cid, "thread_copy_not_captured", ("display",), f"{idx + 1} messages copied from {parent_id}")
        return cid

    # --- a chat turn (runConversationTurn) ---------------------------------------

    def turn(self, conversation_id: str, turn: Turn) -> None:
        """One user turn: user write, optional compaction, finalize (SPEC §5).

        From 0.59.3 the same blob writes and no entries (SPEC §7), plus one
        in-flight write of the draft bubble (``metadata.incomplete``) after
        the tool steps: what a stale blob shows when the finalize write is lost.
        """
        ref = self._refs[conversation_id]
        before = len(self._truth_of.get(conversation_id, ()))
        conv = self._get(conversation_id)
        self._observe_writeback(conversation_id, conv, "turn start")
        self._note_untracked(conversation_id, "a turn")
        pre_harness = list(conv["_harnessMessages"]) if conv.get("_harnessMessages") else None
        history = pre_harness if pre_harness is not None else list(conv["messages"])
        pre_display = list(conv["messages"])
        compacted_before = len(conv.get("compactedHistory") or [])
        turn_id = self.clock.uuid()
        run_id = f"run_{self.clock.uuid()}"
        started = self.clock.tick()

        user_msg = {"role": "user", "content": turn.user, "metadata": {"id": self.clock.uuid(), "timestamp": started}}
        conv["messages"] = pre_display if turn.hidden else [*pre_display, user_msg]
        conv["runStatus"] = "running"
        self.backend.update(conv)
        self._append("user_turn", conversation_id, [dw.user_message_entry(user_msg, turn_id, hidden=turn.hidden)])

        if turn.compact_keep is not None:
            history, conv["messages"] = self._compact(
                conv, history, pre_display, turn.compact_keep, blob_written=not turn.skip_final_update
            )
            if not turn.hidden:
                conv["messages"] = [*conv["messages"], user_msg]

        transcript, bubble, draft = self._run(turn, user_msg, turn_id, run_id, started)
        if draft is not None and ref.release.queue_only:
            self.backend.update({**conv, "messages": [*conv["messages"], draft]})
        conv["_harnessMessages"] = [*history, *transcript]
        if bubble is not None:
            conv["messages"] = [*conv["messages"], bubble]
        conv["runtimeRunId"] = run_id
        conv["runStatus"] = "idle"
        conv["contextTokens"] = 120 * len(conv["_harnessMessages"])
        conv["contextWindow"] = 200_000
        notes: list[Truth] = []
        if turn.skip_final_update:
            self.events.append(Event(conversation_id, "finalize", "blob_write_skipped"))
            if ref.transcript_entries:
                notes.append(self._note(conversation_id, "stale_blob", TRANSCRIPT, "the finalize blob write was lost"))
        else:
            self.backend.update(conv)

        new, approximate = dw.new_harness_messages_this_turn(pre_harness, conv["_harnessMessages"])
        if approximate:
            self.logs.append(
                f"[entries-dual-write] {conversation_id} harness-message diff approximate "
                "(blob array shrank this turn — likely compaction); appended full context"
            )
            if ref.transcript_entries:
                notes.append(
                    self._note(conversation_id, "approximate_finalize_diff", ("llm",), f"{len(new)} messages re-appended")
                )
        elif turn.compact_keep is not None and ref.transcript_entries:
            # the compaction did not shrink the array: the length diff appends only its last messages, no warning
            notes.append(
                self._note(
                    conversation_id, "approximate_finalize_diff", ("llm",), f"array did not shrink: only its last {len(new)} messages appended"
                )
            )
        final = conv["messages"][-1] if conv["messages"] else None
        entries = dw.harness_message_entries(new, turn_id)
        if final is not None and final.get("role") == "assistant":
            entries.append(dw.assistant_message_entry(final, turn_id, run_id))
        fate = self._append("finalize", conversation_id, entries, notes=notes)
        if turn.compact_keep is not None and not turn.skip_final_update:
            self._compacted_over(conversation_id, before, conv, compacted_before, history[1:], approximate=approximate, fate=fate)
        if self.verify and ref.transcript_entries:
            result = dw.parity_check(
                self.backend.read(conversation_id),
                conv["_harnessMessages"],
                conv["messages"],
                conversation_id=conversation_id,
            )
            self.logs.append(result.log_line)

    def _compact(
        self, conv: JsonDict, history: list[JsonDict], pre_display: list[JsonDict], keep: int, *, blob_written: bool
    ) -> tuple[list[JsonDict], list[JsonDict]]:
        """Compaction at the first step: the blob's compacted arrays and the guessed entry.

        ``blob_written``: whether the turn's final blob write will happen (a
        lost one never moves the history to ``compactedHistory``).
        """
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
        ref = self._refs[cid]
        notes: list[Truth] = []
        if removed and ref.transcript_logged and blob_written:
            notes.append(self._note(cid, "compaction_moved_history", ("display",), f"{removed} messages to compactedHistory"))
        if ref.transcript_entries:
            logged = self.backend.read(cid, types=["harness_message"])
            seqs = [e["seq"] for e in logged]
            first_kept = dw.guess_first_kept_seq(seqs, 1 + len(kept))
            start = _kept_start(logged, kept)
            if start != first_kept:
                where = "are not in the log" if start is None else f"start at seq {start}"
                notes.append(
                    self._note(cid, "guessed_first_kept_seq_off", ("llm",), f"guessed {first_kept}; the {len(kept)} kept messages {where}")
                )
            entry = dw.compaction_entry(summary, first_kept, tokens_before=conv.get("contextTokens"))
            earlier = [r for r in self._truth_of.get(cid, ()) if r.cause == "guessed_first_kept_seq_off" and r not in notes]
            if self._append("compaction", cid, [entry], notes=notes) not in ("lost", "fail"):
                for record in earlier:  # the context reads the newest compaction only (SPEC §3)
                    record.fields = tuple(f for f in record.fields if f != "llm")
            else:  # the guess never reached the log: no read can serve it (the lost append is its own record)
                for record in notes:
                    if record.cause == "guessed_first_kept_seq_off":
                        record.fields = ()
        return [summary, *kept], [summary, *kept]

    def _compacted_over(
        self, conversation_id: str, before: int, conv: JsonDict, compacted_before: int, kept: list[JsonDict], *, approximate: bool, fate: Fate | None
    ) -> None:
        """Retire from the records made before this turn (the first ``before``) what its written compaction rewrote.

        The display: the blob's ``messages`` became summary + kept history once
        the compaction moved messages to ``compactedHistory``. The context: a
        shrunk array the finalize re-appended whole (the log then holds the
        kept messages too); with no transcript append (0.59.3+, before the
        dual-write) the summary replaced all but the kept messages, so only a
        record whose own blob items were kept still shows.
        """
        earlier = self._truth_of.get(conversation_id, [])[:before]
        if len(conv.get("compactedHistory") or []) > compacted_before:
            for record in earlier:
                record.fields = tuple(f for f in record.fields if f != "display")
        if not approximate or fate in ("lost", "fail"):
            return
        for record in earlier:
            if fate is not None or not any(item in kept for item in record.blob_items):
                record.fields = tuple(f for f in record.fields if f != "llm")

    def _run(
        self, turn: Turn, user_msg: JsonDict, turn_id: str, run_id: str, started: int
    ) -> tuple[list[JsonDict], JsonDict | None, JsonDict | None]:
        """The model run: its harness transcript, the display bubble (None = no content)
        and the draft bubble as it stood after the tool steps (None = no tool step)."""
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
        draft = _bubble(turn_id, started, texts, activity, sections, incomplete=True) if activity else None
        transcript.append({"role": "assistant", "content": turn.reply, "metadata": meta(len(turn.tools) + 1)})
        if turn.reply:
            texts.append(turn.reply)
            sections.append({"type": "text", "content": turn.reply})
        if not texts and not activity:
            return transcript, None, None
        return transcript, _bubble(turn_id, started, texts, activity, sections), draft

    # --- resume after an approval or a continuation --------------------------------

    def resume(self, conversation_id: str, text: str, *, merge: bool = True) -> None:
        """A resumed run: amend the last bubble (``merge``) or push a fresh one.

        The blob's transcript gets the resumed message; no ``harness_message``
        entries are written. An amendment targets the latest
        ``assistant_message`` in the log, and is skipped with a warning when
        there is none. From 0.59.3 the blob writes alone.
        """
        conv = self._get(conversation_id)
        self._observe_writeback(conversation_id, conv, "resume")
        untracked = self._note_untracked(conversation_id, "a resumed turn")
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
            notes = [] if untracked else [self._note(conversation_id, "resume_not_captured", ("llm",), "fresh bubble; no harness messages", [resumed])]
            self._append("resume", conversation_id, [dw.assistant_message_entry(bubble, f"resume-{conversation_id}", run_id)], notes=notes)
            return
        if untracked:
            return
        targets = self.backend.read(conversation_id, types=["assistant_message"])
        if not targets:
            self.logs.append(f"[entries-dual-write] {conversation_id} amendment skipped: no assistant_message entry")
            self.events.append(Event(conversation_id, "resume", "amendment_skipped"))
            self._note(conversation_id, "resume_not_captured", TRANSCRIPT, "amendment skipped: no assistant_message entry", [resumed])
            return
        notes = [self._note(conversation_id, "resume_not_captured", TRANSCRIPT, "merged into the bubble; no harness messages", [resumed])]
        if targets[-1]["message"] != last:
            notes.append(
                self._note(conversation_id, "amendment_wrong_target", ("display",), f"targets {targets[-1]['id']}, not the amended bubble")
            )
        self._append("resume", conversation_id, [dw.assistant_amendment_entry(targets[-1]["id"], text)], notes=notes)

    # --- subagents ------------------------------------------------------------------

    def subagent_result(
        self,
        conversation_id: str,
        subagent_id: str,
        task: str,
        response: str,
        *,
        status: str = "completed",
        task_outcome: str | None = None,
    ) -> None:
        """A subagent finished: its result reaches the parent's blob and log.

        Up to 0.59.2: ``append_subagent_result`` on the blob, then one
        dual-write entry. From 0.59.3 (``appendSubagentResultReliable``,
        SPEC §7): the queue's ``subagent_result`` entry first, then the blob's
        get -> push -> update, retried once. The result carries
        ``taskOutcome`` (``task_outcome``, by default
        :data:`~poncho_replay.simulate.releases.TASK_OUTCOMES` of ``status``)
        and an ``error`` instead of a ``result`` when ``status`` is ``"error"``.
        Since the get reads the pending results from the queue, a queue entry
        that landed first comes back and the blob holds the result twice, as
        the 0.61.2 sample database does.
        """
        steps = 1 + len(response) % 4
        if not self._refs[conversation_id].release.queue_only:
            result = {
                "subagentId": subagent_id,
                "task": task,
                "status": status,
                "result": {"status": status, "response": response, "steps": steps, "duration": 1000 * steps},
                "timestamp": self.clock.tick(),
            }
            self._append_subagent_result(conversation_id, result)
            self._append("subagent_result", conversation_id, [dw.subagent_result_entry(result)])
            return
        result = {"subagentId": subagent_id, "task": task, "status": status}
        result["taskOutcome"] = task_outcome if task_outcome is not None else TASK_OUTCOMES.get(status, "failed")
        if status == "error":
            result["error"] = {"code": "SUBAGENT_ERROR", "message": response}
        else:
            result["result"] = {"status": status, "response": response, "steps": steps, "duration": 1000 * steps}
        result["timestamp"] = self.clock.tick()
        landed = Truth(conversation_id, "", ())  # carries the seq the queue entry lands at
        before = len(self._truth_of.get(conversation_id, ()))
        fate = self._append("subagent_result", conversation_id, [dw.subagent_result_entry(result)], queue=True, notes=[landed])
        spare = self._truth_of.get(conversation_id, [])[before:]  # this append's fault: the push below does not undo it
        try:
            self._append_subagent_result(conversation_id, result, spare)
        except StoreError as first:
            try:
                self._append_subagent_result(conversation_id, result, spare)
            except StoreError as second:
                self.logs.append(
                    f"[poncho][subagent] FAILED to persist result for subagent {subagent_id} to parent "
                    f"{conversation_id} after 2 attempts — the parent will not see this result: {second} "
                    f"(first attempt: {first})"
                )
                if fate not in ("lost", "fail"):
                    self._note(conversation_id, "queued_result_not_in_blob", ("pending",), f"{subagent_id}: blob append failed twice")
                return
        if fate in ("ok", "duplicate"):  # the entry landed before the blob's get, which served it back: pushed again
            self._note(conversation_id, "result_delivered_twice", ("pending",), f"{subagent_id}: served by get(), then pushed").seq = landed.seq

    def _append_subagent_result(self, conversation_id: str, result: JsonDict, spare: Sequence[Truth] = ()) -> None:
        release = self._refs[conversation_id].release
        self._observe_helper_writeback(conversation_id, "append_subagent_result", spare)
        self.backend.append_subagent_result(
            conversation_id, result, cutover=release.reads_log(self.writeback), policy=release.read
        )

    def callback(self, conversation_id: str, reply: str) -> None:
        """A whole subagent callback turn (``processSubagentCallback``): :meth:`begin_callback`
        then, if it consumed anything, :meth:`finish_callback`."""
        if self.begin_callback(conversation_id):
            self.finish_callback(conversation_id, reply)

    def begin_callback(self, conversation_id: str) -> bool:
        """Phase A of a callback turn: consume the pending results and take the lock.

        Returns whether anything was pending (nothing is written otherwise).
        Between this and :meth:`finish_callback` the model replies; results
        arriving then stay pending.

        The blob consumes the pending results, pushes one injected
        ``[Subagent Result]`` message each and copies ``messages`` into
        ``_harnessMessages``. Up to 0.59.2 (SPEC §5) the log gets
        ``callback_started`` (the seqs of every ``subagent_result`` whose
        subagentId was consumed) and one hidden ``user_message`` per injected
        message. From 0.59.3 (SPEC §7) the message names the ``taskOutcome``
        and the queue gets only the ``callback_started``. (Upstream re-reads
        the pending list before the write to keep results that arrived during
        phase A; in a sequential simulation none can, so it is emptied.)
        """
        release = self._refs[conversation_id].release
        conv = self._get(conversation_id)
        pending = conv.get("pendingSubagentResults") or []
        if not pending:
            return False
        self._observe_writeback(conversation_id, conv, "callback start")
        notes = [] if self._note_untracked(conversation_id, "a callback turn") else [
            self._note(conversation_id, "callback_turn_not_captured", TRANSCRIPT, f"{len(pending)} results injected")
        ]
        count = int(conv.get("subagentCallbackCount") or 0) + 1
        injected = [(queue_injected_message if release.queue_only else _injected_message)(pr) for pr in pending]
        conv["pendingSubagentResults"] = []
        conv["runningCallbackSince"] = self.clock.tick()
        conv["runStatus"] = "running"
        conv["subagentCallbackCount"] = count
        conv["messages"] = [*conv["messages"], *injected]
        conv["_harnessMessages"] = list(conv["messages"])
        self.backend.update(conv)
        for record in notes:
            record.blob_items = conv["_harnessMessages"]
        # the blob's context is now a copy of its display: what earlier behaviours left in it is gone
        self._retire(conversation_id, ("llm",), spare=notes)

        if release.queue_only or self._refs[conversation_id].transcript_entries:
            ids = {pr["subagentId"] for pr in pending}
            consumed = [e["seq"] for e in self.backend.read(conversation_id, types=["subagent_result"]) if e["result"]["subagentId"] in ids]
            self._append("callback_started", conversation_id, [dw.callback_started_entry(consumed)], queue=release.queue_only, notes=notes)
        hidden_turn = f"callback-{count}-{conversation_id}"
        self._append("callback_hidden", conversation_id, [dw.user_message_entry(m, hidden_turn, hidden=True) for m in injected])
        return True

    def finish_callback(self, conversation_id: str, reply: str) -> None:
        """Phase B of a callback turn: a fresh get, the reply bubble, the lock released.

        Up to 0.59.2 the reply's ``assistant_message`` is appended; from
        0.59.3 nothing is. The fresh get serves the release's pending results,
        so the write keeps what arrived during the reply.
        """
        fresh = self._get(conversation_id)
        self._observe_writeback(conversation_id, fresh, "callback reply")
        notes = []
        if self._refs[conversation_id].transcript_entries:  # the copy below is the callback turn's again
            notes.append(self._note(conversation_id, "callback_turn_not_captured", ("llm",), "the reply's _harnessMessages copy messages"))
        run_id = f"run_{self.clock.uuid()}"
        bubble = {"role": "assistant", "content": reply, "metadata": {"sections": [{"type": "text", "content": reply}]}}
        fresh["messages"] = [*fresh["messages"], bubble]
        fresh["_harnessMessages"] = list(fresh["messages"])
        for record in notes:
            record.blob_items = fresh["_harnessMessages"]
        fresh["runtimeRunId"] = run_id
        fresh["runStatus"] = "idle"
        fresh.pop("runningCallbackSince", None)
        self.backend.update(fresh)
        self._append("callback_reply", conversation_id, [dw.assistant_message_entry(bubble, f"callback-{conversation_id}", run_id)], notes=notes)

    def clear_callback_lock(self, conversation_id: str) -> None:
        """``store.clear_callback_lock``: get (with the release's read) -> unset -> update."""
        release = self._refs[conversation_id].release
        self._observe_helper_writeback(conversation_id, "clear_callback_lock")
        self.backend.clear_callback_lock(conversation_id, cutover=release.reads_log(self.writeback), policy=release.read)

    # --- the fire-and-forget append (appendEntriesSafe) ------------------------------

    def _append(
        self, site: str, conversation_id: str, entries: list[JsonDict], *, queue: bool = False, notes: Sequence[Truth] = ()
    ) -> Fate | None:
        """One ``void appendEntriesSafe(...)``, with its drawn fate; never raises.

        ``queue`` marks a 0.59.3+ queue append, written whatever the
        transcript dual-write says; otherwise the append is a dual-write one,
        written only while the conversation's release dual-writes. A fate
        other than ``ok`` is recorded as ``lost_or_reordered_append``;
        ``notes`` (and that record) get the seq the entries land at.
        Returns the fate, or None when nothing was to be written.
        """
        ref = self._refs[conversation_id]
        if not entries or not (queue or ref.transcript_entries):
            return None
        fate = self.plan.fate(site)
        if fate != "ok":
            self.events.append(Event(conversation_id, site, fate, f"{len(entries)} entries"))
            fault = self._note(
                conversation_id, "lost_or_reordered_append", fault_fields(site, fate, entries), f"{fate} at {site} ({len(entries)} entries)"
            )
            fault.blob_items = [e["message"] for e in entries if e["type"] == "harness_message"]
            notes = [*notes, fault]
        if fate == "lost":
            return fate
        if fate == "reorder":
            self._deferred.setdefault(conversation_id, []).append((entries, notes))
            return fate
        failure = f"[entries-queue] {site} append failed" if queue else "[entries-dual-write] append failed"
        self._write(conversation_id, entries, notes, fail=fate == "fail", failure=failure)
        if fate == "duplicate":
            self._write(conversation_id, entries, notes)
        for held, held_notes in self._deferred.pop(conversation_id, []):
            self._write(conversation_id, held, held_notes)
        return fate

    def flush(self) -> None:
        """Land appends still held back by a reorder (their overtaker never came)."""
        for cid in list(self._deferred):
            for held, held_notes in self._deferred.pop(cid):
                self._write(cid, held, held_notes)

    def _write(
        self,
        conversation_id: str,
        entries: list[JsonDict],
        notes: Sequence[Truth] = (),
        *,
        fail: bool = False,
        failure: str = "[entries-dual-write] append failed",
    ) -> None:
        ref = self._refs[conversation_id]
        try:
            if fail:
                raise StoreError(f"simulated append failure for conversation {conversation_id}")
            stamped = dw.stamp_ids(entries, self.clock.uuid)
            # The dual-write passes the owner id where the store expects the agent id (SPEC §5).
            seqs = self.backend.append(conversation_id, ref.owner_id, ref.tenant_id, stamped)
        except Exception as exc:  # noqa: BLE001 - appendEntriesSafe swallows and logs every failure
            self.logs.append(f"{failure} for {conversation_id}: {exc}")
            return
        ref.transcript_logged = ref.transcript_logged or any(e["type"] not in QUEUE_TYPES for e in entries)
        for note in notes:
            if note.seq is None and seqs:
                note.seq = seqs[0]


def _bubble(
    turn_id: str, started: int, texts: list[str], activity: list[str], sections: list[JsonDict], *, incomplete: bool = False
) -> JsonDict:
    """The display bubble of a turn's text and tool activity (a copy: the run goes on appending)."""
    meta: JsonDict = {"id": turn_id, "timestamp": started}
    if activity:
        meta["toolActivity"] = list(activity)
    meta["sections"] = list(sections)
    if incomplete:
        meta["incomplete"] = True
    return {"role": "assistant", "content": "\n\n".join(texts), "metadata": meta}


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


def _kept_start(logged: Sequence[JsonDict], kept: Sequence[JsonDict]) -> int | None:
    """The seq where the blob's kept messages start among the logged harness messages, or None.

    The last place the kept messages stand together, in order, in the log
    (a compaction that keeps nothing keeps from one past the last, as the
    harness's guess does). This is the simulator looking at its own write
    at the moment of the compaction, where the harness had to guess.
    """
    if not kept:
        return (logged[-1]["seq"] if logged else 0) + 1
    messages = [e["message"] for e in logged]
    k = len(kept)
    for start in range(len(messages) - k, -1, -1):
        if messages[start : start + k] == list(kept):
            return logged[start]["seq"]
    return None
