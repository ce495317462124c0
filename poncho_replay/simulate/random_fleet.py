"""The random fleet: seeded conversation scripts, run one after another or on a dated timeline.

Each conversation's script (turns, resumes, subagent results, a rename, a
thread) is drawn first, then run. Two timelines run the same scripts:

* ``"sequential"`` (the default): one conversation after another, each
  moved to ``upgrade_to`` at its own seeded point, and 3% of them started
  before the dual-write by a per-conversation flag. Releases coexist for the
  whole fleet, so no date in the data tells them apart: the hardest case
  for the audit's causes.
* ``"dated"``: the conversations overlap in time (each arrives in turn and
  runs over a seeded stretch of the fleet's timeline, its steps interleaved
  with the others'), and each release is deployed to the whole fleet at one
  moment, as SPEC §5 and §7 describe a deployment: pre-0.57 (``"0.56.0"``,
  no dual-write) for the first :data:`DUAL_WRITE_AT` of the timeline, then
  ``harness``, then ``upgrade_to`` at a seeded moment. A conversation that
  spans a deployment is continued by the next release.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from poncho_replay.models import JsonDict
from poncho_replay.simulate.data import Fleet
from poncho_replay.simulate.faults import Faults
from poncho_replay.simulate.harness import Simulator, Turn

Timeline = Literal["sequential", "dated"]

PRE_DUAL_WRITE_RELEASE = "0.56.0"
"""The release a dated fleet starts under: before the dual-write (SPEC §5, 0.57.0)."""
DUAL_WRITE_AT = 0.03
"""The share of a dated fleet's timeline before ``harness`` is deployed (3%, as the
sequential fleet starts 3% of its conversations before the dual-write)."""
UPGRADE_BETWEEN = (0.3, 0.7)
"""Where on a dated fleet's timeline ``upgrade_to`` is deployed (a seeded point)."""
SPAN_BETWEEN = (0.02, 0.3)
"""How much of a dated fleet's timeline one conversation's steps spread over."""

_WORDS = ["plan", "tide", "ship", "rose", "moon", "port", "log", "cert", "node", "🧭", "東京", "naïve", "שלום"]
_TOOLS = ["web_search", "read_file", "calculator", "shell", "db_query"]


@dataclass(frozen=True)
class _Step:
    """One write of a script: ``kind`` names the :class:`Simulator` call, ``turn`` the turn it follows."""

    turn: int
    kind: Literal["turn", "resume", "subagent_result", "callback", "rename", "thread"]
    args: tuple[object, ...] = ()


@dataclass
class _Script:
    """One conversation of the fleet, drawn before it runs."""

    index: int
    owner: str
    tenant: str | None
    dual_write: bool
    turns: int
    pre_dual_write_turn: Turn | None = None
    steps: list[_Step] = field(default_factory=list)
    conversation_id: str = ""
    thread_id: str = ""

    @property
    def title(self) -> str:
        """The conversation's title."""
        return f"Conversation {self.index}"


def fleet(
    n_conversations: int,
    *,
    seed: int = 0,
    faults: Faults | None = None,
    verify: bool = False,
    harness: str = "0.58.0",
    upgrade_to: str | None = None,
    timeline: Timeline = "sequential",
) -> Fleet:
    """A random fleet: same seed (and faults, releases, timeline), same data.

    Each conversation draws 4-12 turns with 0-2 tool steps, and now and then
    a compaction, an approval resume, multi-part content, a subagent result
    with its callback, a thread, a rename, a stale blob or a
    pre-dual-write start. About 50 entries per conversation on average
    under 0.58 (from 0.59.3 only the subagent-result queue is logged).
    Writes go to a :class:`DictBackend` (no store round trip per entry).

    Args:
        harness: the release every conversation starts under (a dated fleet
            deploys it after its pre-0.57 start).
        upgrade_to: a later release. Sequential: each conversation moves to
            it at a seeded point, before its first turn (created after the
            upgrade), between two turns, or after its last one (only a later
            rename or thread runs under it). Dated: the fleet moves to it at
            one seeded moment. The points come from their own generator, so
            the scripts are those of the same fleet without the upgrade.
        timeline: ``"sequential"`` or ``"dated"`` (the module docstring).
    """
    rng = random.Random(seed ^ 0x5EED)
    owners = [f"owner-{i}" for i in range(50)]
    scripts = [_draw(rng, i, owners) for i in range(n_conversations)]
    upgrades = random.Random(seed ^ 0x0612) if upgrade_to is not None else None
    if timeline == "dated":
        sim = Simulator(seed=seed, faults=faults, verify=verify, harness=PRE_DUAL_WRITE_RELEASE)
        _run_dated(sim, scripts, random.Random(seed ^ 0xDA7E), harness, upgrade_to, upgrades)
    else:
        sim = Simulator(seed=seed, faults=faults, verify=verify, harness=harness)
        for script in scripts:
            upgrade_at = upgrades.randint(0, script.turns) if upgrades is not None else None
            _run_sequential(sim, script, upgrade_to, upgrade_at)
    return Fleet.from_simulator(sim)


def _draw(rng: random.Random, i: int, owners: list[str]) -> _Script:
    """Conversation ``i``'s script, drawn from ``rng`` in the order the fleet always drew it."""
    tenant = "northwind" if rng.random() < 0.05 else None
    owner = rng.choice(owners)
    dual_write = rng.random() >= 0.03
    pre = _random_turn(rng, compact=False) if rng.random() < 0.03 else None
    script = _Script(i, owner, tenant, dual_write, rng.randint(4, 12), pre)
    steps = script.steps
    for t in range(script.turns):
        steps.append(_Step(t, "turn", (_random_turn(rng, compact=t >= 3 and rng.random() < 0.08),)))
        r = rng.random()
        if r < 0.04:
            steps.append(_Step(t, "resume", (" " + _text(rng), rng.random() < 0.7)))
        elif r < 0.07:
            steps.append(_Step(t, "subagent_result", (f"sub-{i}-{t}", _text(rng), _text(rng))))
            if rng.random() < 0.8:
                steps.append(_Step(t, "callback", (_text(rng),)))
    if rng.random() < 0.02:
        steps.append(_Step(script.turns, "rename", (_text(rng),)))
    if rng.random() < 0.02:
        steps.append(_Step(script.turns, "thread", (f"Thread of {i}", _random_turn(rng, compact=False))))
    return script


def _create(sim: Simulator, script: _Script, *, dual_write: bool) -> None:
    script.conversation_id = sim.create(script.owner, script.title, script.tenant, dual_write=dual_write)


def _run_step(sim: Simulator, script: _Script, step: _Step) -> None:
    """One step of a script on its conversation (a thread's first turn runs with it)."""
    cid = script.conversation_id
    if step.kind == "turn":
        sim.turn(cid, *step.args)  # type: ignore[arg-type]
    elif step.kind == "resume":
        text, merge = step.args
        sim.resume(cid, text, merge=merge)  # type: ignore[arg-type]
    elif step.kind == "subagent_result":
        sim.subagent_result(cid, *step.args)  # type: ignore[arg-type]
    elif step.kind == "callback":
        sim.callback(cid, *step.args)  # type: ignore[arg-type]
    elif step.kind == "rename":
        sim.rename(cid, *step.args)  # type: ignore[arg-type]
    else:
        title, turn = step.args
        script.thread_id = sim.thread(cid, title)  # type: ignore[arg-type]
        sim.turn(script.thread_id, turn)  # type: ignore[arg-type]


def _run_sequential(sim: Simulator, script: _Script, upgrade_to: str | None, upgrade_at: int | None) -> None:
    """The script, alone; the conversation moves to ``upgrade_to`` before its step of turn ``upgrade_at``."""
    _create(sim, script, dual_write=script.dual_write)
    if script.pre_dual_write_turn is not None:
        sim.turn(script.conversation_id, script.pre_dual_write_turn)
        sim.set_dual_write(script.conversation_id, True)
    upgraded = upgrade_at is None or upgrade_to is None
    for step in script.steps:
        if not upgraded and step.turn >= upgrade_at and (step.kind == "turn" or step.turn == script.turns):
            sim.upgrade(upgrade_to, script.conversation_id)  # type: ignore[arg-type]
            upgraded = True
        _run_step(sim, script, step)
    if not upgraded:
        sim.upgrade(upgrade_to, script.conversation_id)  # type: ignore[arg-type]


def _run_dated(
    sim: Simulator,
    scripts: list[_Script],
    timeline: random.Random,
    harness: str,
    upgrade_to: str | None,
    upgrades: random.Random | None,
) -> None:
    """The scripts interleaved on one timeline [0, 1), each release deployed fleet-wide at its moment.

    Conversation ``i`` arrives at ``i / n`` and spreads its steps over a
    seeded span after that; the steps of all conversations run in time
    order. Creating a conversation and a pre-0.57 first turn are its first
    steps (the per-conversation dual-write flag is the sequential
    timeline's; here the release of the moment decides).
    """
    n = len(scripts)
    deployments = [(DUAL_WRITE_AT, harness)]
    if upgrade_to is not None and upgrades is not None:
        deployments.append((upgrades.uniform(*UPGRADE_BETWEEN), upgrade_to))
    schedule: list[tuple[float, int, int]] = []  # (time, conversation, step index; -1 creates it)
    for script in scripts:
        start = script.index / max(n, 1)
        span = timeline.uniform(*SPAN_BETWEEN)
        times = sorted(timeline.random() for _ in script.steps)
        schedule.append((start, script.index, -1))
        schedule.extend((start + span * u, script.index, k) for k, u in enumerate(times))
    schedule.sort()
    for at, i, k in schedule:
        while deployments and deployments[0][0] <= at:
            sim.upgrade(deployments.pop(0)[1])
        script = scripts[i]
        if k < 0:
            _create(sim, script, dual_write=True)
            if script.pre_dual_write_turn is not None:
                sim.turn(script.conversation_id, script.pre_dual_write_turn)
        else:
            _run_step(sim, script, script.steps[k])
    for _, release in deployments:
        sim.upgrade(release)


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 6)))


def _random_turn(rng: random.Random, *, compact: bool) -> Turn:
    user: str | list[JsonDict] = _text(rng)
    if rng.random() < 0.03:
        user = [{"type": "text", "text": _text(rng)}, {"type": "file", "data": "upload://f.pdf", "mediaType": "application/pdf"}]
    steps = rng.choice((0, 0, 1, 1, 1, 2))
    tools = [(rng.choice(_TOOLS), _text(rng) if rng.random() < 0.5 else "", _text(rng)) for _ in range(steps)]
    return Turn(
        user,
        reply=_text(rng),
        tools=tools,
        compact_keep=rng.randint(1, 4) if compact else None,
        skip_final_update=rng.random() < 0.01,
    )
