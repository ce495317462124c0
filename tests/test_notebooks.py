"""The worked notebooks: committed without outputs, and each runs top to bottom in a real kernel.

"Committed" means as in ``HEAD`` (``git show HEAD:notebooks/...``), not the
working copy: a user who runs a notebook in JupyterLab gets its outputs
autosaved into the file, and that must not fail ``make test``. Clear them
before committing (``jupyter nbconvert --clear-output --inplace notebooks/*.ipynb``).
Outside a git checkout (an unpacked sdist) the working copy is all there
is, and it is checked instead.

They execute with cwd = ``notebooks/`` (they read ``../fixtures/``), in a
``python3`` kernel that runs this interpreter: the kernelspec is written to a
temporary ``JUPYTER_PATH`` (searched first), so a ``python3`` kernel
installed elsewhere on the machine (a user's ``~/.local``) cannot be picked
instead of the venv's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
NAMES = ["01-replay-a-conversation", "02-audit-parity", "03-compaction", "04-replay-into-a-model"]


def committed_notebook(repo: Path, relative: str) -> nbformat.NotebookNode:
    """The notebook as ``HEAD`` holds it; the working copy only outside a git checkout."""
    try:
        shown = subprocess.run(
            ["git", "show", f"HEAD:{relative}"], cwd=repo, capture_output=True, check=True, timeout=60
        )
    except (OSError, subprocess.CalledProcessError):
        inside = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"], cwd=repo, capture_output=True, check=False
        )
        assert inside.returncode != 0, f"{relative} is not committed"
        return nbformat.read(repo / relative, as_version=4)
    return nbformat.reads(shown.stdout.decode("utf-8"), as_version=4)


def test_every_notebook_is_listed() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_without_outputs(name: str) -> None:
    nb = committed_notebook(REPO, f"notebooks/{name}.ipynb")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a worked notebook runs code"
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def test_a_notebook_run_in_place_is_checked_as_committed(tmp_path: Path) -> None:
    """Outputs JupyterLab autosaved into the working copy are not what the check reads."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    subprocess.run([*git, "add", "n.ipynb"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "clean"], cwd=tmp_path, check=True)
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    nb.cells[0].execution_count = 1
    nbformat.write(nb, path)  # what running it in JupyterLab leaves behind
    assert committed_notebook(tmp_path, "n.ipynb").cells[0].outputs == []
    assert nbformat.read(path, as_version=4).cells[0].outputs != []


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JUPYTER_PATH whose ``python3`` kernel is this interpreter."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (poncho_replay tests)",
                "language": "python",
            }
        )
    )
    return root


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(
    name: str, kernel_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    # Quiet the debugger's frozen-modules warning in the kernel's stderr.
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == []
    # Every cell whose last line is an expression displayed something.
    shown = [
        c
        for c in code
        if any(o.output_type in ("execute_result", "display_data", "stream") for o in c.outputs)
    ]
    assert len(shown) >= len(code) - 1
