"""Property: a fleet loaded from PostgreSQL as the harness writes it equals the same fleet loaded from SQLite.

The harness stores every JSONB value as a string scalar (SPEC §4, "On
PostgreSQL"), which can hold U+0000 and lone surrogates; the random fleets
carry both inside message text. SQLite holds the same JSON text, so both
loads must give identical tables (lone surrogates as U+FFFD in both, SPEC §9).
"""

from __future__ import annotations

import copy
import random
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import poncho_replay
from poncho_replay.simulate import fleet
from tests.pg_server import connect
from tests.test_load_postgres import table_rows, url

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.postgres

ODD_TEXT = st.text(alphabet=st.sampled_from(["a", " ", "\x00", "\ud800", "\udfff", "\ud83d", "😀", "é", "\n", '"', "\\"]),
                   max_size=12)  # fmt: skip


def _sprinkle(data: Any, rng: random.Random, texts: list[str]) -> None:
    """Append odd text to some message contents (in place)."""
    if isinstance(data, dict):
        if isinstance(data.get("content"), str) and "role" in data and rng.random() < 0.3:
            data["content"] += rng.choice(texts)
        for value in data.values():
            _sprinkle(value, rng, texts)
    elif isinstance(data, list):
        for value in data:
            _sprinkle(value, rng, texts)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), texts=st.lists(ODD_TEXT, min_size=1, max_size=4))
def test_postgres_string_scalars_load_like_sqlite(seed: int, texts: list[str]) -> None:
    data = fleet(4, seed=seed)
    data.conversations = copy.deepcopy(data.conversations)
    data.entries = copy.deepcopy(data.entries)
    rng = random.Random(seed)
    _sprinkle(data.conversations, rng, texts)
    _sprinkle(data.entries, rng, texts)
    conn = connect()
    name = f"pr_prop_{uuid.uuid4().hex[:10]}"
    try:
        data.to_postgres(conn, name)
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "fleet.db"
            data.to_sqlite(db)
            from_pg, from_file = poncho_replay.open(), poncho_replay.open()
            pg_summary, file_summary = from_pg.load(url(name, password=None)), from_file.load(db)
        assert pg_summary.quarantined == file_summary.quarantined == {}
        assert pg_summary.loaded == file_summary.loaded
        assert pg_summary.loaded["conversation_entries"] == data.entry_count
        assert pg_summary.repaired == file_summary.repaired
        assert table_rows(from_pg) == table_rows(from_file)
    finally:
        conn.rollback()
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.commit()
        conn.close()
