"""The kit in a real JupyterLab, driven by headless Chromium: run a notebook, replay, check the styles.

What no kernel-only test can see: the notebook's outputs as JupyterLab
renders them (its CSS right-aligns table cells; the kit's must win), and the
replay widget driven from the page (slider and buttons reach the kernel
and the page it sends back changes).

Setup, all local: ``jupyter lab`` from this venv on a free 127.0.0.1 port
with a random token, no browser, a temporary root holding a copy of
``01-replay-a-conversation`` (and the fixture it reads), its own settings,
workspaces and runtime folders, and a ``python3`` kernel that is this
interpreter. Chromium is Debian's (``.ci/install-system-deps.sh``), driven by
Playwright through ``executable_path``: no browser is ever downloaded.
Under ``CI=true`` a missing browser fails the test; elsewhere it skips.
Screenshots land in the test's ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = "01-replay-a-conversation.ipynb"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI") == "true"

if not IN_CI:
    if CHROMIUM is None:
        pytest.skip(
            "chromium is not installed (.ci/install-system-deps.sh installs it)",
            allow_module_level=True,
        )
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("jupyterlab")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

STEP_MS = 120_000
"""Playwright's wait for any one thing (a 2-core shared machine: be generous)."""
RUN_ALL_S = 240
"""How long the notebook's cells may take to run, all together."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_server(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> None:
    """Poll ``/api/status`` until the server answers (or it dies: then its log says why)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"jupyter lab did not answer in {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running JupyterLab over a temporary root: its base URL, token and root folder."""
    assert CHROMIUM is not None, "CI=true: chromium must be installed (.ci/install-system-deps.sh)"
    home = tmp_path_factory.mktemp("lab")
    root = home / "root"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / NOTEBOOK, root / "notebooks" / NOTEBOOK)
    shutil.copytree(REPO / "fixtures" / "resume", root / "fixtures" / "resume")  # read as ../fixtures/
    kernel = home / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (poncho_replay tests)",
                "language": "python",
            }
        )
    )
    env = {
        **os.environ,
        "JUPYTER_PATH": str(home / "jupyter"),  # searched first: this interpreter's kernel
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    # No "official Jupyter news?" toast over the outputs in the screenshots.
    notification = home / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port, token = _free_port(), secrets.token_hex(16)
    log = home / "jupyter.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyterlab", "--no-browser",
                "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run cells by command
                "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False",
                "--allow-root",  # CI runs as root
            ],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(f"{base}/api/status?token={token}", proc, log)
        yield {"base": base, "token": token, "root": root, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


NOTEBOOK_STATE_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.content.model) { return null; }
  const cells = [];
  for (const cell of panel.content.model.cells) {
    if (cell.type !== 'code') { continue; }
    cells.push({
      count: cell.executionCount,
      outputs: cell.outputs.toJSON().map(o => ({type: o.output_type, ename: o.ename || null})),
    });
  }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {cells, status: kernel ? kernel.status : null};
}
"""


def _td_align(page: Any, selector: str) -> str:
    return page.eval_on_selector(selector, "el => getComputedStyle(el).textAlign")


def _replay_text(page: Any) -> tuple[str, str]:
    """The slider's readout and the replay page's heading ("State at seq N")."""
    widget = page.locator(".widget-vbox").filter(has=page.locator(".widget-slider")).last
    readout = widget.locator(".widget-readout").inner_text().strip()
    heading = widget.locator(".widget-html-content h3").first.inner_text().strip()
    return readout, heading


def test_notebook_runs_and_replays_in_jupyterlab(lab: dict[str, Any], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url = f"{lab['base']}/lab/tree/notebooks/{NOTEBOOK}?token={lab['token']}"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(STEP_MS)
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                timeout=STEP_MS,
            )
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(
                f"() => {{ const s = ({NOTEBOOK_STATE_JS})(); return s && s.status === 'idle'"
                " && s.cells.every(c => c.count !== null); }",
                timeout=RUN_ALL_S * 1000,
                polling=1000,
            )
            state = page.evaluate(NOTEBOOK_STATE_JS)
            page.screenshot(path=str(tmp_path / "01-after-run-all.png"), full_page=True)

            # Every code cell ran, none shows an error, and each but at most one displayed something.
            assert state["cells"] and all(c["count"] is not None for c in state["cells"])
            errors = [o for c in state["cells"] for o in c["outputs"] if o["type"] == "error"]
            assert errors == [], errors
            assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").filter(
                has_text="Traceback"
            ).count() == 0
            shown = [c for c in state["cells"] if c["outputs"]]
            assert len(shown) >= len(state["cells"]) - 1

            # JupyterLab's CSS is in force (a plain pandas table is right-aligned) and the kit's wins.
            outputs = ".jp-OutputArea-output.jp-RenderedHTMLCommon"
            assert _td_align(page, f"{outputs} table.dataframe td") == "right"
            kit_cells = page.locator(f"{outputs} .pr-root table.pr-table td")
            assert kit_cells.count() > 10
            aligns = kit_cells.evaluate_all(
                "els => [...new Set(els.filter(e => !e.classList.contains('pr-num'))"
                ".map(e => getComputedStyle(e).textAlign))]"
            )
            assert aligns == ["left"]

            # The replay widget: slider, ◀ prev / next ▶, and the page they drive.
            slider = page.locator(".widget-slider .noUi-handle").last
            slider.scroll_into_view_if_needed()
            readout, heading = _replay_text(page)
            assert readout == "11" and heading == "State at seq 11"  # opens at the last seq
            page.screenshot(path=str(tmp_path / "02-replay-at-last-seq.png"))

            track = page.locator(".widget-slider .noUi-target").last.bounding_box()
            handle = slider.bounding_box()
            assert track is not None and handle is not None
            page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
            page.mouse.down()
            page.mouse.move(track["x"] + track["width"] * 0.35, handle["y"] + handle["height"] / 2, steps=12)
            page.mouse.up()
            expect(page.locator(".widget-vbox .widget-html-content h3").last).not_to_have_text(
                "State at seq 11", timeout=STEP_MS
            )
            dragged_readout, dragged_heading = _replay_text(page)
            assert dragged_heading == f"State at seq {dragged_readout}"
            assert 1 <= int(dragged_readout) < 11
            page.screenshot(path=str(tmp_path / "03-replay-after-slider.png"))

            seq = int(dragged_readout)
            page.get_by_role("button", name="next ▶").last.click()
            expect(page.locator(".widget-vbox .widget-html-content h3").last).to_have_text(
                f"State at seq {seq + 1}", timeout=STEP_MS
            )
            page.get_by_role("button", name="◀ prev").last.click()
            page.get_by_role("button", name="◀ prev").last.click()
            expect(page.locator(".widget-vbox .widget-html-content h3").last).to_have_text(
                f"State at seq {seq - 1}", timeout=STEP_MS
            )
            assert _replay_text(page)[0] == str(seq - 1)
            page.screenshot(path=str(tmp_path / "04-replay-after-buttons.png"))

            # The replay page's own tables are left-aligned too (a widget's HTML, not a cell output).
            replay_cells = page.locator(".widget-html-content .pr-root table.pr-table td")
            assert replay_cells.count() > 0
            assert replay_cells.evaluate_all(
                "els => [...new Set(els.map(e => getComputedStyle(e).textAlign))]"
            ) == ["left"]
        finally:
            browser.close()
