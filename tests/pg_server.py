"""The local PostgreSQL server the tests use for real (127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import os
from typing import Any

import pytest

SERVER = "postgresql://postgres@127.0.0.1:5432"
TEST_URL = f"{SERVER}/test"


def connect(database: str = "test", **options: Any) -> Any:
    """A psycopg connection to ``database``; without a server the test skips, except under CI=true, where it fails."""
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(f"{SERVER}/{database}", connect_timeout=3, **options)
    except psycopg.OperationalError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 (CI=true makes this a failure)")
