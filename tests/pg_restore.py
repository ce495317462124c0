"""Restore a committed ``pg_dump`` fixture into a throwaway database on the local server."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.pg_server import SERVER, connect

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@contextmanager
def restored(dump: Path) -> Iterator[str]:
    """A fresh database holding ``dump`` (plain SQL, restored with psql); yields its URL, drops it after."""
    psql = shutil.which("psql")
    if psql is None:
        if os.environ.get("CI") == "true":
            raise RuntimeError("psql is missing: .ci/install-system-deps.sh installs postgresql-client")
        pytest.skip("psql is not installed")
    admin = connect("postgres", autocommit=True)
    name = f"pr_fixture_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        subprocess.run(
            [psql, "-q", "-X", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-v", "ON_ERROR_STOP=1", "-f", str(dump)],
            check=True,
            capture_output=True,
        )
        yield f"{SERVER}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
