"""``Workspace.report``: one self-contained HTML file over the bundled harness 0.58.0 sample.

Counts and titles come from the sample's README (16 conversations, 145
entries, which scenarios diverge), not from the report's output.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest

import poncho_replay
from poncho_replay.bundled import sample_db
from poncho_replay.report import divergence_score

# Scenarios the sample README describes as diverging from their blob under 0.58:
# the approximate compaction diff, the thread copy, the two resumes, the
# uncaptured callback turn, the stale blob.
DIVERGED = {
    "Printing press history", "Thread: flaky networks talk", "Database backup approval",
    "Certificate renewal", "Log triage", "Unit conversions",
}  # fmt: skip
MATCHING = {"Garden irrigation plan", "Invoice check", "Morning check-in"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    ws = poncho_replay.open()
    ws.load(sample_db())
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert ws.report(path) == path
    return path.read_text(encoding="utf-8")


def section(page: str, key: str) -> str:
    """The HTML between the ``<h2 id=key>`` heading and the next ``<h2``."""
    start = page.index(f'<h2 id="{key}">')
    end = page.find("<h2", start + 1)
    return page[start : end if end != -1 else len(page)]


def test_summary_counts(report: str) -> None:
    headline = section(report, "parity-summary")
    assert "<b>16 conversations</b> audited under policy <b>0.58</b>" in headline
    assert (
        f"<b>{len(DIVERGED)} diverged</b>" in headline
        and f"<b>{16 - len(DIVERGED)} match</b>" in headline
    )
    sources = section(report, "sources")
    assert "poncho-sample.db" in sources
    # One row per source: 16 conversations, 145 entries, 1 amendment, no quarantine, 1 no_entries ("Old notes").
    assert re.search(r"poncho-sample\.db</td><td>16</td><td>145</td><td>[^<]*assistant_amendment 1</td>", sources)
    assert re.search(r"<td>0</td><td>1 \(no_entries\)</td></tr>", sources)


def test_parity_table_lists_every_conversation_diverged_first(report: str) -> None:
    table = section(report, "parity-table")
    rows = re.findall(
        r"<tr><td><span class=\"pr-badge ([^\"]*)\">(\w+)</span></td><td><details><summary><b>(.*?)</b>",
        table,
    )
    assert len(rows) == 16
    verdicts = [v for _, v, _ in rows]
    assert verdicts == ["diverged"] * len(DIVERGED) + ["match"] * (16 - len(DIVERGED))
    assert {t for _, v, t in rows if v == "diverged"} == DIVERGED
    assert all(cls.strip() == "pr-bad" for cls, v, _ in rows if v == "diverged")
    assert "resume_not_captured" in table  # a cause badge


def test_worst_conversations_are_diverged_ones(report: str) -> None:
    worst = section(report, "worst")
    titles = re.findall(r'<section class="conv".*?<h3>(.*?)</h3>', worst, flags=re.DOTALL)
    assert len(titles) == 5 and set(titles) <= DIVERGED
    assert not any(t in worst for t in MATCHING)
    assert "Log as a chat" in worst and "Blob vs rebuild (policy 0.58)" in worst


def test_charts_are_inline_png(report: str) -> None:
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', report)
    # The fleet chart, plus one per shown conversation with a compaction (Printing press history).
    assert len(images) >= 2
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    # The README's orchestrator compaction (one) and layered compaction (two).
    fleet = section(report, "compaction")
    assert (
        "3 compaction(s) in 2 conversation(s): Printing press history (1), Thesis outline (2)."
        in fleet
    )
    assert 'alt="fleet compaction chart"' in fleet


def test_nothing_is_fetched(report: str) -> None:
    assert not re.search(r"<(script|link|iframe|object|embed)\b", report, flags=re.IGNORECASE)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", report, flags=re.IGNORECASE)
    assert "@import" not in report and not re.search(r"url\(\s*['\"]?https?:", report)
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', report))


def test_report_of_an_empty_workspace(tmp_path: Path) -> None:
    page = poncho_replay.open().report(tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "<b>0 conversations</b>" in page and "Nothing loaded." in page
    assert "No compaction entries" in page and "No conversation diverges." in page


def test_divergence_score_adds_changed_missing_and_extra() -> None:
    parity = pd.DataFrame(
        {"llm_changed": [1, 0], "llm_missing_in_entries": [2, 0], "display_extra_in_entries": [0, 3],
         "pending_changed": [None, 1]}
    )  # fmt: skip
    assert divergence_score(parity).tolist() == [3, 4]


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample loaded twice, as sources "a" and "b": every title (and id) appears in both."""
    ws = poncho_replay.open()
    ws.load(sample_db(), name="a")
    ws.load(sample_db(), name="b")
    path = tmp_path_factory.mktemp("report2") / "report.html"
    return ws.report(path).read_text(encoding="utf-8")


def test_report_is_by_conversation_not_by_title(two_sources: str) -> None:
    table = section(two_sources, "parity-table")
    lines = re.findall(r"<tr><td><span class=\"pr-badge[^>]*>\w+</span></td><td><details>.*?</details></td><td>(\w)</td>",
                       table, flags=re.DOTALL)  # fmt: skip
    assert sorted(lines) == ["a"] * 16 + ["b"] * 16  # 32 lines, the source on each
    assert "<th>source</th>" in table
    fleet = section(two_sources, "compaction")
    # "Thesis outline" is two conversations (one per source), never one with 4 compactions.
    assert "Thesis outline (a, 2)" in fleet and "Thesis outline (b, 2)" in fleet
    assert "Thesis outline (4)" not in fleet
    ids = re.findall(r'<section class="conv" id="([^"]+)"', section(two_sources, "worst"))
    assert len(ids) == len(set(ids)) == 5


def test_report_breaks_no_words_and_has_a_legend_for_every_colour(report: str) -> None:
    from poncho_replay.display.html import LEGEND

    assert "break-all" not in report
    legend = section(report, "parity-table")
    listed = set(re.findall(r'data-legend="([\w-]+)"', legend))
    assert listed >= {cls for _, cls, _ in LEGEND} | {"cause"}
    # Every colour class the page uses is in the legend.
    colour_classes = {cls for _, cls, _ in LEGEND}
    used = {c for classes in re.findall(r'class="([^"]+)"', report) for c in classes.split() if c in colour_classes}
    assert used and used <= listed
