"""Named, scripted scenarios (one per harness case) and the random fleet generator.

Each scenario mirrors a conversation class of the real harness 0.58.0
sample database (its README lists 16): it takes a :class:`Simulator` and
returns ``{title: conversation_id}``. Titles are the keys of each fixture's
``expected.json``. :data:`SCENARIO_CLASSES` groups them into the committed
fixtures; :func:`fleet` draws random scripts for scale and property tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from poncho_replay.models import JsonDict
from poncho_replay.simulate.data import Fleet
from poncho_replay.simulate.faults import Faults
from poncho_replay.simulate.harness import Simulator, Turn

Scenario = Callable[[Simulator], dict[str, str]]


# --- chat ---------------------------------------------------------------------------


def chat(sim: Simulator) -> dict[str, str]:
    """Tool turns, a tenant, multi-part content, unicode, a hidden system prompt."""
    out = {}
    c = sim.create("owner-ines", "Garden plan")
    sim.turn(c, Turn("Water how often?", reply="Twice a week.", tools=[("web_search", "Checking.", "rain 2x")]))
    sim.turn(c, Turn("And the roses?", reply="Daily in July.", tools=[("read_file", "", "roses.md"), ("calculator", "", "7")]))
    sim.turn(c, Turn("Thanks!", reply="Any time."))
    out["Garden plan"] = c

    c = sim.create("nw-analyst", "Shipping delays", tenant_id="northwind")
    sim.turn(c, Turn("Why late?", reply="Port strike."))
    sim.turn(c, Turn("How long?", reply="Two weeks.", tools=[("web_search", "", "news")]))
    out["Shipping delays"] = c

    c = sim.create("owner-rafael", "Invoice check")
    parts = [
        {"type": "text", "text": "Check this "},
        {"type": "file", "data": "upload://inv-7.pdf", "mediaType": "application/pdf", "filename": "inv-7.pdf"},
        {"type": "text", "text": "invoice."},
        {"type": "file", "data": "data:image/png;base64,iVBORw0KGgo=", "mediaType": "image/png"},
    ]
    sim.turn(c, Turn(parts, reply="Totals match."))
    out["Invoice check"] = c

    c = sim.create("owner-ines", "🧳 Reisepläne 旅行 ✈️")
    sim.turn(c, Turn("Grüße\u00a0aus 東京 👩🏽\u200d🚀\u2028שלום", reply="𝒜ngekommen 🇯🇵 e\u0301\tok"))
    out["🧳 Reisepläne 旅行 ✈️"] = c

    c = sim.create("owner-kenji", "Morning check-in")
    sim.turn(c, Turn("[Reminder] daily check-in", reply="Good morning!", hidden=True))
    sim.turn(c, Turn("Plan my day", reply="Gym, then work."))
    out["Morning check-in"] = c
    return out


# --- resume --------------------------------------------------------------------------


def resume(sim: Simulator) -> dict[str, str]:
    """Approval resumes that amend a bubble, push a fresh one, or find no target."""
    out = {}
    c = sim.create("owner-amara", "Backup approval")
    sim.turn(c, Turn("Snapshot prod.", tools=[("db_snapshot", "Needs approval.", None)]))
    sim.resume(c, " Done (38 GB).")
    out["Backup approval"] = c

    c = sim.create("owner-amara", "Certificate renewal")
    sim.turn(c, Turn("Renew the cert."))
    sim.resume(c, "Renewed.")
    out["Certificate renewal"] = c

    c = sim.create("owner-amara", "Lost bubble")
    sim.plan.force("finalize", "lost")
    sim.turn(c, Turn("Delete tmp.", tools=[("shell", "Needs approval.", None)]))
    sim.resume(c, " Deleted.")
    out["Lost bubble"] = c
    return out


# --- compaction ------------------------------------------------------------------------


def compaction(sim: Simulator) -> dict[str, str]:
    """Orchestrator compaction: the guessed firstKeptSeq, the approximate diff, layering, a reorder."""
    out = {}
    c = sim.create("owner-lukas", "Printing press")
    sim.turn(c, Turn("When?", reply="1440."))
    sim.turn(c, Turn("First book?", reply="The Bible."))
    sim.turn(c, Turn("Spread?", reply="250 cities."))
    sim.turn(c, Turn("Recap.", reply="Fast spread.", compact_keep=2))
    out["Printing press"] = c

    c = sim.create("owner-lukas", "Thesis outline")
    sim.turn(c, Turn("Topic?", reply="Tides."))
    sim.turn(c, Turn("Chapters?", reply="Five."))
    sim.turn(c, Turn("Sources?", reply="Ten.", compact_keep=2))
    sim.turn(c, Turn("Title?", reply="Moon pull.", compact_keep=1))
    out["Thesis outline"] = c

    c = sim.create("owner-lukas", "Reordered compaction")
    sim.turn(c, Turn("A?", reply="a."))
    sim.turn(c, Turn("B?", reply="b."))
    sim.plan.force("compaction", "reorder")
    sim.turn(c, Turn("C?", reply="c.", compact_keep=2))
    out["Reordered compaction"] = c
    return out


# --- subagents ---------------------------------------------------------------------------


def subagents(sim: Simulator) -> dict[str, str]:
    """Subagent results and callback turns, with the read cutover on and off."""
    out = {}
    sim.writeback = True
    c = sim.create("owner-rafael", "Vendor comparison")
    sim.turn(c, Turn("Compare vendors", reply="Delegated.", tools=[("spawn_subagent", "", "pending")]))
    sim.subagent_result(c, "sub-a1", "Compare vendors", "Q is cheapest.")
    sim.callback(c, "Q is cheapest.")
    sim.subagent_result(c, "sub-b2", "Check R", "R ships in 3 days.")
    out["Vendor comparison"] = c

    sim.writeback = False
    c = sim.create("owner-kenji", "Log triage")
    sim.turn(c, Turn("Scan logs", reply="Delegated.", tools=[("spawn_subagent", "", "pending")]))
    sim.subagent_result(c, "sub-c3", "Scan logs", "Two bursts.")
    sim.callback(c, "Two bursts overnight.")
    out["Log triage"] = c
    return out


# --- threads -------------------------------------------------------------------------------


def threads(sim: Simulator) -> dict[str, str]:
    """A thread parent and a child holding a copy of its messages up to the anchor."""
    p = sim.create("owner-amara", "Talk ideas")
    sim.turn(p, Turn("Ideas?", reply="Networks."))
    sim.turn(p, Turn("More?", reply="Flaky ones."))
    c = sim.thread(p, "Thread: flaky networks")
    sim.turn(c, Turn("Outline it", reply="Three parts."))
    return {"Talk ideas": p, "Thread: flaky networks": c}


# --- faults --------------------------------------------------------------------------------


def faults(sim: Simulator) -> dict[str, str]:
    """Lost, duplicated and failed appends, a stale blob, a rename write-back, pre-dual-write."""
    out = {}
    c = sim.create("owner-ines", "Lost user turn")
    sim.plan.force("user_turn", "lost")
    sim.turn(c, Turn("Hi", reply="Hello."))
    out["Lost user turn"] = c

    c = sim.create("owner-ines", "Duplicated finalize")
    sim.turn(c, Turn("Hi", reply="Hello."))
    sim.plan.force("finalize", "duplicate")
    sim.turn(c, Turn("Again", reply="Hello again."))
    out["Duplicated finalize"] = c

    c = sim.create("owner-ines", "Failed finalize")
    sim.plan.force("finalize", "fail")
    sim.turn(c, Turn("Hi", reply="Hello."))
    out["Failed finalize"] = c

    c = sim.create("owner-lukas", "Unit conversions")
    sim.turn(c, Turn("1 mi?", reply="1.609 km."))
    sim.turn(c, Turn("1 lb?", reply="0.454 kg.", skip_final_update=True))
    out["Unit conversions"] = c

    c = sim.create("owner-kenji", "Standup notes")
    sim.turn(c, Turn("Notes?", reply="Ship it."))
    sim.turn(c, Turn("Blockers?", reply="None.", skip_final_update=True))
    sim.writeback = True
    sim.rename(c, "  Standup notes 🗒️  ")
    sim.writeback = False
    out["Standup notes 🗒️"] = c

    c = sim.create("owner-ines", "Old notes", dual_write=False)
    sim.turn(c, Turn("Remember milk", reply="Noted.", tools=[("memory_write", "", "ok")]))
    sim.turn(c, Turn("And eggs", reply="Noted too."))
    out["Old notes"] = c

    c = sim.create("owner-ines", "Upgraded mid-way", dual_write=False)
    sim.turn(c, Turn("Before", reply="Old."))
    sim.set_dual_write(c, True)
    sim.turn(c, Turn("After", reply="New."))
    out["Upgraded mid-way"] = c
    return out


SCENARIO_CLASSES: dict[str, Scenario] = {
    "chat": chat,
    "resume": resume,
    "compaction": compaction,
    "subagents": subagents,
    "threads": threads,
    "faults": faults,
}
"""Scenario classes, one committed fixture each (``fixtures/<class>/``)."""


# --- the simulated fleet ---------------------------------------------------------------------


def run_scenarios(names: list[str] | None = None, *, seed: int = 0, sim: Simulator | None = None) -> tuple[Simulator, dict[str, str]]:
    """Run the named scenario classes (all by default) on one simulator."""
    sim = sim or Simulator(seed=seed)
    titles: dict[str, str] = {}
    for name in names or list(SCENARIO_CLASSES):
        titles.update(SCENARIO_CLASSES[name](sim))
    sim.flush()
    return sim, titles


_WORDS = ["plan", "tide", "ship", "rose", "moon", "port", "log", "cert", "node", "🧭", "東京", "naïve", "שלום"]
_TOOLS = ["web_search", "read_file", "calculator", "shell", "db_query"]


def fleet(
    n_conversations: int,
    *,
    seed: int = 0,
    faults: Faults | None = None,
    verify: bool = False,
    harness: str = "0.58.0",
    upgrade_to: str | None = None,
) -> Fleet:
    """A random fleet: same seed (and faults, releases), same data.

    Each conversation draws 4-12 turns with 0-2 tool steps, and now and then
    a compaction, an approval resume, multi-part content, a subagent result
    with its callback, a thread, a rename, a stale blob or a
    pre-dual-write start. About 50 entries per conversation on average
    under 0.58 (from 0.59.3 only the subagent-result queue is logged).
    Writes go to a :class:`DictBackend` (no store round trip per entry).

    Args:
        harness: the release every conversation starts under.
        upgrade_to: a later release each conversation moves to at a seeded
            point: before its first turn (created after the upgrade), between
            two turns, or after its last one (only a later rename or thread
            runs under it). The points come from their own generator, so the
            scripts are those of the same fleet without the upgrade.
    """
    sim = Simulator(seed=seed, faults=faults, verify=verify, harness=harness)
    rng = random.Random(seed ^ 0x5EED)
    upgrades = random.Random(seed ^ 0x0612) if upgrade_to is not None else None
    owners = [f"owner-{i}" for i in range(50)]
    for i in range(n_conversations):
        tenant = "northwind" if rng.random() < 0.05 else None
        cid = sim.create(rng.choice(owners), f"Conversation {i}", tenant, dual_write=rng.random() >= 0.03)
        if rng.random() < 0.03:
            sim.turn(cid, _random_turn(rng, compact=False))
            sim.set_dual_write(cid, True)
        turns = rng.randint(4, 12)
        upgrade_at = upgrades.randint(0, turns) if upgrades is not None else None
        for t in range(turns):
            if t == upgrade_at and upgrade_to is not None:
                sim.upgrade(upgrade_to, cid)
            sim.turn(cid, _random_turn(rng, compact=t >= 3 and rng.random() < 0.08))
            r = rng.random()
            if r < 0.04:
                sim.resume(cid, " " + _text(rng), merge=rng.random() < 0.7)
            elif r < 0.07:
                sim.subagent_result(cid, f"sub-{i}-{t}", _text(rng), _text(rng))
                if rng.random() < 0.8:
                    sim.callback(cid, _text(rng))
        if upgrade_at == turns and upgrade_to is not None:
            sim.upgrade(upgrade_to, cid)
        if rng.random() < 0.02:
            sim.rename(cid, _text(rng))
        if rng.random() < 0.02:
            child = sim.thread(cid, f"Thread of {i}")
            sim.turn(child, _random_turn(rng, compact=False))
    return Fleet.from_simulator(sim)


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
