"""The in-memory reference store against the conformance suite."""

from pathlib import Path
from typing import Any

from poncho_replay.store import MemoryStore
from poncho_replay.testing.store_contract import StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self, tmp_path: Path, **options: Any) -> MemoryStore:
        return MemoryStore(**options)
