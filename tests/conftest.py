"""Shared test set-up: one hypothesis profile, and a clean read-cutover environment.

The machine is small and shared, so property tests default to a modest
example count; ``HYPOTHESIS_PROFILE=thorough`` raises it for a local soak.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=100,
    deadline=None,  # no wall-clock assertions, even hypothesis's own
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _no_harness_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without the harness's switches, whatever the shell exported."""
    monkeypatch.delenv("PONCHO_READ_ENTRIES", raising=False)
    monkeypatch.delenv("PONCHO_VERIFY_ENTRIES", raising=False)
