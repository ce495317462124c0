"""Time the notebook views and charts on one large synthetic conversation.

Usage: python benchmarks/display_render.py [turns]

Each turn writes a user_message, two harness_messages and an
assistant_message (dualwrite builders); every 50 turns a compaction keeps
the last 4 harness messages (the orchestrator's guess). Prints seconds per
step; nothing is asserted.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from poncho_replay.display import compactions_df, conversation_html, entries_html, messages_df
from poncho_replay.display.charts import compaction_chart, save_chart
from poncho_replay.dualwrite import (
    assistant_message_entry,
    compaction_entry,
    guess_first_kept_seq,
    harness_message_entries,
    user_message_entry,
)


def build(turns: int) -> tuple[dict, list[dict]]:
    """A blob and a stored log with ``turns`` turns and periodic compactions."""
    entries: list[dict] = []
    harness: list[dict] = []

    def add(entry: dict) -> None:
        entries.append(
            {"id": f"e{len(entries) + 1}", "seq": len(entries) + 1, "createdAt": 0, **entry}
        )

    for t in range(turns):
        user = {"role": "user", "content": f"question {t} " + "lorem ipsum " * 20}
        bot = {"role": "assistant", "content": f"answer {t} " + "dolor sit amet " * 30}
        add(user_message_entry(user, f"t{t}"))
        if t and t % 50 == 0:
            seqs = [e["seq"] for e in entries if e["type"] == "harness_message"]
            summary = {
                "role": "user",
                "content": f"summary {t}",
                "metadata": {"isCompactionSummary": True},
            }
            add(
                compaction_entry(
                    summary, guess_first_kept_seq(seqs, 5), tokens_before=90_000, tokens_after=9_000
                )
            )
            harness = [summary, *harness[-4:]]
        for h in harness_message_entries([user, bot], f"t{t}"):
            add(h)
        harness += [user, bot]
        add(assistant_message_entry(bot, f"t{t}", "run"))
    blob = {"conversationId": "bench", "title": "bench", "ownerId": "o", "tenantId": None,
            "messages": [e["message"] for e in entries if e["type"] in ("user_message", "assistant_message")],
            "_harnessMessages": harness, "createdAt": 0, "updatedAt": 0}  # fmt: skip
    return blob, entries


def timed(label: str, fn) -> object:
    start = time.perf_counter()
    out = fn()
    print(f"{label:<34} {time.perf_counter() - start:8.3f} s")
    return out


def main() -> None:
    turns = int(sys.argv[1]) if len(sys.argv) > 1 else 2500
    blob, entries = build(turns)
    print(
        f"{len(entries):,} entries, {sum(e['type'] == 'compaction' for e in entries)} compactions"
    )
    page = timed("conversation_html", lambda: conversation_html(blob, entries))
    print(f"{'  html size':<34} {len(page) / 1e6:8.2f} MB")
    timed("entries_html (500 rows shown)", lambda: entries_html(entries))
    timed("messages_df", lambda: messages_df(entries))
    timed("compactions_df (with blob)", lambda: compactions_df(entries, blob))
    chart = timed("compaction_chart", lambda: compaction_chart(entries, blob))
    with tempfile.TemporaryDirectory() as tmp:
        timed("save_chart PNG", lambda: save_chart(chart, Path(tmp) / "c.png"))


if __name__ == "__main__":
    main()
