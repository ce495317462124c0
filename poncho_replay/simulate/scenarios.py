"""Named, scripted scenarios, one per harness case.

Each scenario mirrors a conversation class of the real harness 0.58.0
sample database (its README lists 16): it takes a :class:`Simulator` and
returns ``{title: conversation_id}``. Titles are the keys of each fixture's
``expected.json``. :data:`SCENARIO_CLASSES` groups them into the committed
fixtures; :func:`~poncho_replay.simulate.random_fleet.fleet` draws random
scripts for scale and property tests.
"""

from __future__ import annotations

from collections.abc import Callable

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


def run_scenarios(names: list[str] | None = None, *, seed: int = 0, sim: Simulator | None = None) -> tuple[Simulator, dict[str, str]]:
    """Run the named scenario classes (all by default) on one simulator."""
    sim = sim or Simulator(seed=seed)
    titles: dict[str, str] = {}
    for name in names or list(SCENARIO_CLASSES):
        titles.update(SCENARIO_CLASSES[name](sim))
    sim.flush()
    return sim, titles
