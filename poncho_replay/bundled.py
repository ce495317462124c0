"""Paths of the data shipped inside the package (the demo's default input)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_db() -> Path:
    """The real harness 0.58.0 sample database bundled with the package."""
    return Path(str(resources.files("poncho_replay") / "data" / "poncho-sample.db"))
