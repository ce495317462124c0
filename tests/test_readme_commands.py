"""The README's two commands, as written there, on a fresh clone.

One ``git clone`` of this checkout into a temporary folder (no ``.venv``, no
caches). The working tree's tracked and untracked-but-not-ignored files are
copied over the clone, so a developer runs the clone the next commit would
give; in CI the checkout is already clean and the copy changes nothing.

- The first command (``make demo``) runs exactly as written: it builds
  ``.venv`` from ``pyproject.toml`` and runs the demo on the bundled data.
- The second (``make test``) runs the whole suite, which contains this test:
  running it here would recurse and build everything twice. So the test
  checks, with ``make -n``, that the command is the venv's pytest over the
  suite, then runs that same pytest on one test file in the clone's venv.
  That proves the environment the first command built is the one the second
  needs; the suite itself is what CI runs through ``make test``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _sh(args: list[str] | str, cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PONCHO_", "VIRTUAL_ENV"))}
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        shell=isinstance(args, str),
    )  # fmt: skip


def readme_commands(readme: str) -> list[str]:
    """The commands of the first shell block after the "Two commands" heading, comments removed."""
    section = readme.split("Two commands", 1)[1]
    block = re.search(r"```(?:bash|sh|console)?\n(.*?)```", section, re.DOTALL)
    assert block, "the README's 'Two commands' section has no code block"
    lines = (line.split("#", 1)[0].strip() for line in block.group(1).splitlines())
    return [line for line in lines if line]


def fresh_clone(target: Path) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("the README test needs git and a git checkout")
    clone = target / "clone"
    done = _sh(["git", "clone", "--quiet", str(REPO), str(clone)], cwd=target)
    assert done.returncode == 0, done.stderr
    listed = _sh(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO)
    for name in filter(None, listed.stdout.split("\0")):
        source, copy = REPO / name, clone / name
        if source.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
        elif copy.exists():  # deleted in the working tree, not yet in a commit
            copy.unlink()
    assert not (clone / ".venv").exists()
    return clone


def test_readme_commands_work_on_a_fresh_clone(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path)
    commands = readme_commands((clone / "README.md").read_text(encoding="utf-8"))
    assert len(commands) == 2, commands
    demo, test = commands

    ran = _sh(demo, cwd=clone)
    assert ran.returncode == 0, f"{demo!r} failed:\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    assert (clone / ".venv" / "bin" / "poncho-replay").exists()
    report = clone / "report.html"
    assert f"report written to {report}" in ran.stdout
    assert report.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")

    assert test.startswith("make "), f"unexpected test command {test!r}"
    plan = _sh([*shlex.split(test), "-n"], cwd=clone)
    assert plan.returncode == 0, plan.stderr
    pytest_lines = [line for line in plan.stdout.splitlines() if "-m pytest" in line]
    assert len(pytest_lines) == 1, plan.stdout
    recipe = shlex.split(pytest_lines[0])
    assert recipe[0] == ".venv/bin/python", recipe
    proof = _sh([*recipe, "-x", "-p", "no:cacheprovider", "tests/test_models.py"], cwd=clone)
    assert proof.returncode == 0, proof.stdout[-3000:] + proof.stderr[-3000:]
    assert re.search(r"\d+ passed", proof.stdout), proof.stdout[-500:]
