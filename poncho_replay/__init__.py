"""poncho_replay: load, rebuild, audit and replay poncho harness conversation storage."""

from poncho_replay import bundled
from poncho_replay.bundled import sample_db
from poncho_replay.errors import BadEntryError, ReplayError, SourceError, StoreError
from poncho_replay.workspace import Workspace, open

__all__ = ["BadEntryError", "ReplayError", "SourceError", "StoreError", "Workspace", "bundled", "open", "sample_db"]
__version__ = "0.1.0"
