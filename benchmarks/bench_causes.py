"""Benchmark: the audit's causes measured against the simulator's ground truth (issue 14, item 2).

DESIGN.md's "Cause metric": the unit is a (conversation, cause) pair of a
*diverged* conversation. The truth is what the simulator recorded at the
write site (``Fleet.truth``, :mod:`poncho_replay.simulate.truth`), never
inferred from the data. For each seed, with and without faults, each fleet
is simulated, written in the harness's SQLite layout (``Fleet.to_sqlite``),
loaded and audited under each policy; then per cause:

* **precision**: of the pairs the audit names, the share the truth holds
  for that conversation (any field: a named cause is right if it happened);
* **recall**: of the true pairs that can change what the policy serves (a
  record whose ``fields`` meet the fields the policy reads from the log:
  under ``"0.58"`` all three, under ``"current"`` only the pending results),
  the share the audit names;
* ``unexplained``: diverged conversations the audit names no cause for, and
  ``no truth``: diverged conversations for which the simulator recorded
  nothing that can change a served field (a gap in the truth, or a rule
  naming a divergence the simulator does not make);
* ``missed, compacted over``: the missed true pairs whose every record
  precedes a compaction that moved history to ``compactedHistory``. The
  truth does not yet retire what a compaction hides (it retires what a
  write-back overwrites), so some of these misses are the truth's, not the
  audit's.

Fleets: ``0.58`` (every conversation written by 0.58.0) and ``mixed`` (0.58.0
conversations upgraded to the current release at a seeded point, as a field
database usually is, SPEC §7), each on two timelines (``simulate.fleet``'s
``timeline``): sequential (each conversation moves on at its own point, so
releases coexist for the whole fleet and no date separates them) and
``-dated`` (the conversations overlap in time and each release is deployed
to the whole fleet at one moment, pre-0.57 first, as a deployment runs).
Usage::

    .venv/bin/python benchmarks/bench_causes.py [--seeds 0-99] [--conversations 500]
        [--faults lost=0.02,reorder=0.1,duplicate=0.01,fail=0.01,writeback]
        [--fleets 0.58,mixed,0.58-dated,mixed-dated] [--policies 0.58,current] [--jobs 2] [--examples 3] [--out FILE]

Prints a markdown table per (fleet, faults, policy) and the misattribution
examples (seed, conversation, what the audit said, what the truth holds);
``--out`` writes the same markdown to a file. Asserts nothing: the figures
are measurements, tests/test_cause_truth.py holds what must stay true.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

DEFAULT_FAULTS = "lost=0.02,reorder=0.1,duplicate=0.01,fail=0.01,writeback"
FLEETS: dict[str, dict[str, str]] = {
    "0.58": {"harness": "0.58.0"},
    "mixed": {"harness": "0.58.0", "upgrade_to": "current"},
    "0.58-dated": {"harness": "0.58.0", "timeline": "dated"},
    "mixed-dated": {"harness": "0.58.0", "upgrade_to": "current", "timeline": "dated"},
}
"""The fleets measured: keyword arguments of ``simulate.fleet``."""
SERVED = {"full": {"llm", "display", "pending"}, "pending_all": {"pending"}, "pending_queue": {"pending"}, "blob": set()}
"""The fields a policy's read takes from the log (``ReadPolicy.reads``)."""


@dataclass
class Tally:
    """Pair counts of one (fleet, faults, policy) setting, summed over seeds, with a few examples."""

    conversations: int = 0
    diverged: int = 0
    unexplained: int = 0
    no_truth: int = 0
    named: Counter[str] = field(default_factory=Counter)
    named_right: Counter[str] = field(default_factory=Counter)
    true: Counter[str] = field(default_factory=Counter)
    true_named: Counter[str] = field(default_factory=Counter)
    missed_compacted: Counter[str] = field(default_factory=Counter)
    false_positives: dict[str, list[str]] = field(default_factory=dict)
    misses: dict[str, list[str]] = field(default_factory=dict)
    unexplained_examples: list[str] = field(default_factory=list)
    no_truth_examples: list[str] = field(default_factory=list)

    def add(self, other: Tally, examples: int) -> None:
        """Sum ``other`` into this tally, keeping at most ``examples`` examples of each kind."""
        self.conversations += other.conversations
        self.diverged += other.diverged
        self.unexplained += other.unexplained
        self.no_truth += other.no_truth
        for mine, theirs in ((self.named, other.named), (self.named_right, other.named_right), (self.true, other.true), (self.true_named, other.true_named), (self.missed_compacted, other.missed_compacted)):
            mine.update(theirs)
        for mine_d, theirs_d in ((self.false_positives, other.false_positives), (self.misses, other.misses)):
            for cause, ex in theirs_d.items():
                kept = mine_d.setdefault(cause, [])
                kept.extend(ex[: max(0, examples - len(kept))])
        for mine_l, theirs_l in ((self.unexplained_examples, other.unexplained_examples), (self.no_truth_examples, other.no_truth_examples)):
            mine_l.extend(theirs_l[: max(0, examples - len(mine_l))])


def compare(parity: pd.DataFrame, truth: pd.DataFrame, reads: str, *, label: str = "", examples: int = 3) -> Tally:
    """Count the audit's causes against the truth over the diverged conversations of one audit.

    Args:
        parity: ``ws.parity(policy)`` (``conversation_id``, ``verdict``, ``causes``, ...).
        truth: ``Fleet.truth`` of the same fleet.
        reads: the policy's ``ReadPolicy.reads`` (which fields it serves from the log).
        label: prefixed to each example (e.g. the seed).
        examples: how many examples of each kind to keep.
    """
    served = SERVED[reads]
    tally = Tally(conversations=len(parity))
    diverged = parity[parity["verdict"] == "diverged"]
    tally.diverged = len(diverged)
    all_true: dict[str, set[str]] = {}
    relevant: dict[str, set[str]] = {}
    last_at: dict[tuple[str, str], int] = {}  # (conversation, cause) -> its last relevant record's position
    last_compaction: dict[str, int] = {}
    for at, (cid, cause, fields) in enumerate(zip(truth["conversation_id"], truth["cause"], truth["fields"], strict=True)):
        all_true.setdefault(cid, set()).add(cause)
        if cause == "compaction_moved_history":
            last_compaction[cid] = at
        if served & set(fields):
            relevant.setdefault(cid, set()).add(cause)
            last_at[cid, cause] = at
    for row in diverged.itertuples(index=False):
        cid, named = row.conversation_id, set(row.causes) - {"unexplained"}
        said = f"{label}{cid} ({row.title}): fields {list(row.diverged_fields)}, audit {sorted(named) or ['unexplained']}"
        said += f", truth {sorted(relevant.get(cid, set()))} (+{sorted(all_true.get(cid, set()) - relevant.get(cid, set()))} not served)"
        if not named:
            tally.unexplained += 1
            _keep(tally.unexplained_examples, said, examples)
        if not relevant.get(cid):
            tally.no_truth += 1
            _keep(tally.no_truth_examples, said, examples)
        for cause in named:
            tally.named[cause] += 1
            if cause in all_true.get(cid, ()):
                tally.named_right[cause] += 1
            else:
                _keep(tally.false_positives.setdefault(cause, []), said, examples)
        for cause in relevant.get(cid, ()):
            tally.true[cause] += 1
            if cause in named:
                tally.true_named[cause] += 1
            else:
                _keep(tally.misses.setdefault(cause, []), said, examples)
                if last_at[cid, cause] < last_compaction.get(cid, -1):
                    tally.missed_compacted[cause] += 1
    return tally


def _keep(into: list[str], example: str, limit: int) -> None:
    if len(into) < limit:
        into.append(example)


def parse_faults(spec: str, seed: int) -> Any:
    """``lost=0.02,reorder=0.1,writeback`` as :class:`~poncho_replay.simulate.Faults` seeded with ``seed``."""
    from poncho_replay.simulate import Faults

    rates: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        if item == "writeback":
            rates["writeback"] = True
        else:
            key, _, value = item.partition("=")
            rates[key] = float(value)
    return Faults(seed=seed, **rates)


def run_seed(seed: int, n: int, faults: str, fleets: list[str], policies: list[str], examples: int) -> dict[tuple[str, str, str], Tally]:
    """One seed: each fleet, without and with faults, audited under each policy."""
    import poncho_replay
    from poncho_replay.policy import resolve_policy
    from poncho_replay.simulate import fleet

    out: dict[tuple[str, str, str], Tally] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in fleets:
            for with_faults in (False, True):
                data = fleet(n, seed=seed, faults=parse_faults(faults, seed) if with_faults else None, **FLEETS[name])
                db = Path(tmp) / f"{name}-{with_faults}.db"
                data.to_sqlite(db)
                ws = poncho_replay.open()
                ws.load(db, progress=False)
                truth = data.truth
                for policy in policies:
                    key = (name, "faults" if with_faults else "none", policy)
                    parity = ws.parity(policy=policy)
                    out[key] = compare(parity, truth, resolve_policy(policy).reads, label=f"seed {seed}: ", examples=examples)
                ws.con.close()
    return out


def parse_seeds(spec: str) -> list[int]:
    """``0-99`` or ``1,4,7`` or ``0-9,20``."""
    seeds: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi or lo) + 1))
    return seeds


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "n/a"


def table(key: tuple[str, str, str], t: Tally, seeds: int) -> Iterator[str]:
    """One markdown table: per cause, pairs named / right / true / found, precision, recall."""
    fleet_name, faults, policy = key
    yield f"### fleet {fleet_name}, faults {faults}, policy {policy} ({seeds} seeds)"
    yield ""
    yield (
        f"{t.conversations} conversations, {t.diverged} diverged, **{t.unexplained} unexplained**, "
        f"{t.no_truth} diverged with no served truth"
    )
    yield ""
    yield "| cause | named | named & true | precision | true (served) | true & named | recall | missed, compacted over |"
    yield "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for cause in sorted(set(t.named) | set(t.true)):
        yield (
            f"| {cause} | {t.named[cause]} | {t.named_right[cause]} | {_ratio(t.named_right[cause], t.named[cause])} "
            f"| {t.true[cause]} | {t.true_named[cause]} | {_ratio(t.true_named[cause], t.true[cause])} "
            f"| {t.missed_compacted[cause]} |"
        )
    yield ""


def example_lines(key: tuple[str, str, str], t: Tally) -> Iterator[str]:
    """The kept examples of one setting: false positives, misses, unexplained, divergence without truth."""
    groups: list[tuple[str, Iterable[str]]] = [
        *((f"named `{c}`, truth lacks it", ex) for c, ex in sorted(t.false_positives.items())),
        *((f"true `{c}` (served), not named", ex) for c, ex in sorted(t.misses.items())),
        ("unexplained", t.unexplained_examples),
        ("diverged, no served truth", t.no_truth_examples),
    ]
    lines = [f"- {title}:\n" + "\n".join(f"  - {e}" for e in ex) for title, ex in groups if ex]
    if lines:
        yield f"#### examples: fleet {key[0]}, faults {key[1]}, policy {key[2]}"
        yield ""
        yield from lines
        yield ""


def main(argv: list[str] | None = None) -> None:
    """Run the protocol and print (and with ``--out`` write) the markdown."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0-99", help="seeds, e.g. 0-99 or 1,4,7")
    ap.add_argument("--conversations", type=int, default=500)
    ap.add_argument("--faults", default=DEFAULT_FAULTS, help="the faulty run's Faults (seeded with the seed)")
    ap.add_argument("--fleets", default=",".join(FLEETS), help=f"comma-separated, of {', '.join(FLEETS)}")
    ap.add_argument("--policies", default="0.58,current")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (one seed each)")
    ap.add_argument("--examples", type=int, default=3, help="examples kept per misattribution kind")
    ap.add_argument("--out", type=Path, help="also write the markdown here")
    args = ap.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    fleets, policies = args.fleets.split(","), args.policies.split(",")
    totals: dict[tuple[str, str, str], Tally] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        jobs = [pool.submit(run_seed, s, args.conversations, args.faults, fleets, policies, args.examples) for s in seeds]
        for done, job in enumerate(jobs, start=1):
            for key, tally in job.result().items():
                totals.setdefault(key, Tally()).add(tally, args.examples)
            print(f"seed {done}/{len(seeds)} done", file=sys.stderr)
            if args.out:  # the seeds so far, so a long run stopped early still leaves its figures
                args.out.write_text(report(totals, f"{args.seeds} ({done} of {len(seeds)} done)", done, args) + "\n", encoding="utf-8")
    text = report(totals, args.seeds, len(seeds), args)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


def report(totals: dict[tuple[str, str, str], Tally], seeds: str, done: int, args: argparse.Namespace) -> str:
    """The markdown: a table per setting, then the examples."""
    lines = [
        f"## Audit causes vs simulator truth: seeds {seeds}, {args.conversations} conversations each",
        "",
        f"Faults (when on): `{args.faults}`. Unit: (conversation, cause) pairs of diverged conversations.",
        "",
    ]
    for key in sorted(totals):
        lines.extend(table(key, totals[key], done))
    for key in sorted(totals):
        lines.extend(example_lines(key, totals[key]))
    return "\n".join(lines)

if __name__ == "__main__":
    main()
