"""The report opened from disk in headless Chromium: not blank, and the summary text is on the page.

Chromium is a Debian package (``.ci/install-system-deps.sh`` installs it).
Under ``CI=true`` a missing browser fails the test; elsewhere it skips.
The page is loaded from a ``file://`` URL with networking features off, so
a report that needed the network would show broken parts, not fetch them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageStat

import poncho_replay
from poncho_replay.bundled import sample_db

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI") != "true":
    pytest.skip(
        "chromium is not installed (.ci/install-system-deps.sh installs it)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.timeout(300)

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]  # fmt: skip


def chromium(tmp_path: Path, page: Path, *action: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on ``page`` with a throwaway profile."""
    assert CHROMIUM is not None, "CI=true: chromium must be installed (.ci/install-system-deps.sh)"
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *action, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=240, check=True,
    )  # fmt: skip


def screenshot(tmp_path: Path, page: Path) -> Image.Image:
    shot = tmp_path / f"{page.stem}.png"
    chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1280,2000")
    return Image.open(shot).convert("L")


def spread(image: Image.Image) -> tuple[float, float]:
    """Pixel variance, and the share of pixels that are not the page background (white)."""
    stat = ImageStat.Stat(image)
    histogram = image.histogram()
    return stat.var[0], 1 - histogram[255] / sum(histogram)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = poncho_replay.open()
    ws.load(sample_db())
    return ws.report(tmp_path_factory.mktemp("report") / "report.html")


def test_blank_page_reads_as_blank(tmp_path: Path) -> None:
    """The check below can fail: an empty page has no variance."""
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body style='background:#fff'></body></html>")
    variance, inked = spread(screenshot(tmp_path, blank))
    assert variance < 1 and inked < 0.001


def test_report_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    image = screenshot(tmp_path, report)
    assert image.size == (1280, 2000)
    variance, inked = spread(image)
    assert variance > 100 and inked > 0.02
    top, bottom = image.crop((0, 0, 1280, 1000)), image.crop((0, 1000, 1280, 2000))
    assert spread(top)[1] > 0.01 and spread(bottom)[1] > 0.01  # content all the way down


def test_report_text_is_on_the_page(report: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, report, "--dump-dom").stdout
    assert "poncho_replay parity report" in dom
    # From the sample README: 16 conversations, 145 entries.
    assert "<b>16 conversations</b> audited under policy <b>0.58</b>" in dom
    assert "<td>16</td><td>145</td>" in dom
    assert "Printing press history" in dom and "Log as a chat" in dom
