"""A file workspace under a DuckDB memory limit: how a fleet larger than memory is audited.

``poncho_replay.open(path, memory_limit=..., temp_directory=...)`` sets
DuckDB's limit and spill folder; the audit must give the same answers there
as in memory (the 10M-entry benchmark runs this way).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import poncho_replay

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "faults" / "harness.db"
COLUMNS = [
    "conversation_id", "verdict", "harness_log_line", "causes",
    "llm_matching", "llm_first_position", "display_matching", "display_first_position",
]  # fmt: skip


def test_open_sets_the_memory_limit_and_spill_folder(tmp_path: Path) -> None:
    ws = poncho_replay.open(tmp_path / "w.duckdb", memory_limit="256MB", temp_directory=tmp_path / "spill")
    limit, spill = ws.con.execute(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchone()  # type: ignore[misc]
    assert limit == "244.1 MiB"  # 256,000,000 bytes
    assert spill == str(tmp_path / "spill")


def test_a_limited_file_workspace_audits_like_one_in_memory(tmp_path: Path) -> None:
    in_memory = poncho_replay.open()
    in_memory.load(FIXTURE, name="faults", progress=False)
    on_file = poncho_replay.open(tmp_path / "w.duckdb", memory_limit="256MB", temp_directory=tmp_path / "spill")
    on_file.load(FIXTURE, name="faults", progress=False)
    expected = in_memory.parity()
    got = on_file.parity()
    assert len(got) == len(expected) > 0
    assert (expected["verdict"] == "diverged").any()
    pd.testing.assert_frame_equal(
        pd.DataFrame(got)[COLUMNS].astype(str), pd.DataFrame(expected)[COLUMNS].astype(str)
    )
