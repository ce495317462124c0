"""The ``poncho-replay`` command: a thin layer over the library."""

from __future__ import annotations

import json
import sqlite3
import sys

import click
from rich.console import Console
from rich.table import Table

from poncho_replay import dualwrite, rebuild
from poncho_replay.bundled import sample_db
from poncho_replay.models import message_text

console = Console()


@click.group()
def cli() -> None:
    """Load, rebuild, audit and replay poncho harness conversation storage."""


@cli.command()
def demo() -> None:
    """Rebuild every conversation of the bundled harness 0.58.0 sample and check parity.

    Example: poncho-replay demo
    """
    path = sample_db()
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    table = Table(title=f"Harness parity check on {path.name}")
    for col in ("conversation", "entries", "llm ctx (log/blob)", "display (log/blob)", "pending", "harness verdict"):
        table.add_column(col)
    convs = con.execute(
        "SELECT id, title, data, harness_messages FROM conversations ORDER BY created_at"
    ).fetchall()
    for cid, title, data, harness in convs:
        blob = json.loads(data)
        blob_harness = json.loads(harness) if harness else blob.get("_harnessMessages")
        entries = [
            {**json.loads(p), "id": eid, "seq": seq, "createdAt": 0}
            for eid, seq, p in con.execute(
                "SELECT id, seq, payload FROM conversation_entries WHERE conversation_id = ? ORDER BY seq", (cid,)
            )
        ]
        llm = rebuild.build_llm_context(entries)
        display = rebuild.build_display_snapshot(entries, rebuild.MAX_SAFE_INTEGER)
        pending = rebuild.pending_subagent_results(entries)
        verdict = dualwrite.parity_check(entries, blob_harness, blob["messages"], conversation_id=cid)
        table.add_row(
            title,
            str(len(entries)),
            f"{len(llm)}/{len(blob_harness or [])}",
            f"{display.total_messages}/{len(blob['messages'])}",
            str(len(pending)),
            "[green]OK[/]" if verdict.ok else f"[red]MISMATCH ({len(verdict.mismatches)})[/]",
        )
    console.print(table)
    cid, title = con.execute("SELECT id, title FROM conversations WHERE title = 'Vendor comparison'").fetchone()
    entries = [
        {**json.loads(p), "id": eid, "seq": seq, "createdAt": 0}
        for eid, seq, p in con.execute(
            "SELECT id, seq, payload FROM conversation_entries WHERE conversation_id = ? ORDER BY seq", (cid,)
        )
    ]
    state = rebuild.state_at(entries, max(e["seq"] for e in entries))
    console.rule(f"{title}: rebuilt from its {len(entries)} entries")
    console.print("[bold]LLM context[/]")
    for m in state.llm_context:
        console.print(f"  {m['role']:>9}: {message_text(m)[:100]!r}")
    console.print("[bold]Display transcript[/]")
    for m in state.messages:
        console.print(f"  {m['role']:>9}: {message_text(m)[:100]!r}")
    console.print("[bold]Pending subagent results[/]")
    for r in state.pending_subagent_results:
        console.print(f"  {r['subagentId']}: {r['task']} ({r['status']})")


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(standalone_mode=True))
