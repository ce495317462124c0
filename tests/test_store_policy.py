"""The stores' release rules that live outside the contract: how ``rename`` writes, per release."""

from __future__ import annotations

import pytest

from poncho_replay.policy import resolve_policy
from poncho_replay.simulate.releases import harness_release
from poncho_replay.store.rowstore import rename_write

RELEASES = [
    "0.56.0",
    "0.57.2",
    "0.58",
    "0.58.0",
    "0.59.0",
    "0.59.1",
    "0.59.2",
    "0.59.3",
    "0.60.1",
    "0.61.2",
    "current",
]


@pytest.mark.parametrize(
    ("policy", "how"),
    [
        ("blob", "get_update"),
        ("0.57.0", "get_update"),
        ("0.58", "get_update"),
        ("0.59.0", "get_update"),
        ("0.59.1", "title_column"),
        ("0.59.2", "title_column"),
        ("0.59.3", "title_column_and_blob"),
        ("0.61.2", "title_column_and_blob"),
        ("current", "title_column_and_blob"),
    ],
)
def test_rename_write_by_release(policy: str, how: str) -> None:
    # SPEC §7: get -> update until 0.59.0, the title column in 0.59.1-0.59.2, column and blob from 0.59.3.
    assert rename_write(policy) == how
    assert rename_write(resolve_policy(policy)) == how


@pytest.mark.parametrize("release", RELEASES)
def test_stores_and_simulator_rename_alike(release: str) -> None:
    # The rule exists twice (the stores' rename, the simulator's write sites): hold them equal.
    assert rename_write(release) == harness_release(release).rename
