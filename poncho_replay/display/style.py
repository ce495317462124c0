"""The CSS every HTML view carries inline, so a saved notebook or report renders alone.

Class names share the ``pr-`` prefix so they never clash with Jupyter's.
Colours read JupyterLab's theme variables with light fallbacks, so the
views stay legible in a dark theme and in a plain browser.

Table rules are written as ``.pr-root table.pr-table td`` (two classes, two
elements) on purpose: JupyterLab's ``:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td``
(two classes, one element) right-aligns every output cell and strips its
borders, and classic Jupyter's ``.rendered_html td`` does the same with
less weight. Ours must out-rank both wherever the view is shown;
``tests/test_jupyterlab_browser.py`` checks the computed style in JupyterLab.
Words are never split mid-word (``overflow-wrap: break-word`` only breaks a
token longer than its line, such as an id); message cells (``pr-cell``) may
break a long JSON run anywhere, so a wide tool call cannot push the table
past its column.
"""

from __future__ import annotations

from poncho_replay._js import printed

__all__ = ["CSS", "wrap"]

CSS = """
<style>
.pr-root{font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;
  color:var(--jp-ui-font-color1,#1f2328);line-height:1.4;max-width:1100px}
.pr-root h3{font-size:15px;margin:6px 0}.pr-root h4{font-size:13px;margin:10px 0 4px}
.pr-meta{color:var(--jp-ui-font-color2,#59636e);font-size:12px;margin-bottom:6px}
.pr-badge{display:inline-block;border-radius:9px;padding:0 7px;margin:0 3px 0 0;font-size:11px;
  border:1px solid rgba(0,0,0,.15);background:rgba(127,127,127,.12);white-space:nowrap}
.pr-ok{background:#dafbe1;color:#116329;border-color:#4ac26b}
.pr-bad{background:#ffebe9;color:#a40e26;border-color:#ff8182}
.pr-warn{background:#fff8c5;color:#7d4e00;border-color:#d4a72c}
.pr-muted{background:#eaeef2;color:#424a53;border-color:#afb8c1}
.pr-msg{border:1px solid rgba(127,127,127,.35);border-radius:8px;padding:5px 9px;margin:5px 0;
  white-space:pre-wrap;word-break:break-word;max-width:85%}
.pr-role-user{background:rgba(9,105,218,.08);margin-left:auto}
.pr-role-assistant{background:rgba(127,127,127,.08)}
.pr-role-tool{background:rgba(191,135,0,.08);font-family:var(--jp-code-font-family,monospace);font-size:12px}
.pr-role-system,.pr-event{background:rgba(130,80,223,.08)}
.pr-hidden{opacity:.6;border-style:dashed}
.pr-summary{border:2px dashed #bf8700;background:rgba(191,135,0,.08);max-width:100%}
.pr-amend{background:rgba(26,127,55,.18);border-bottom:2px solid #1a7f37}
.pr-step{outline:3px solid #0969da}
.pr-head{font-size:11px;color:var(--jp-ui-font-color2,#59636e);white-space:normal;margin-bottom:2px}
.pr-chat{display:flex;flex-direction:column}
.pr-root table.pr-table{border-collapse:collapse;font-size:12px;width:100%;table-layout:auto;margin:0;
  border:none}
.pr-root table.pr-table th,.pr-root table.pr-table td{border:none;
  border-bottom:1px solid rgba(127,127,127,.25);padding:3px 6px;text-align:left;vertical-align:top;
  line-height:1.4;white-space:normal;max-width:none;overflow-wrap:break-word}
.pr-root table.pr-table td.pr-cell{white-space:pre-wrap;max-width:480px;overflow-wrap:anywhere}
.pr-root table.pr-table td.pr-num,.pr-root table.pr-table th.pr-num{text-align:right}
.pr-root .pr-row-eq{color:var(--jp-ui-font-color2,#59636e)}
.pr-root .pr-row-diff td{background:rgba(255,129,130,.14)}
.pr-root .pr-row-step td{background:rgba(9,105,218,.12)}
.pr-agree{color:#116329}
.pr-root code{font-size:11px;word-break:normal;overflow-wrap:break-word}
.pr-root details>summary{cursor:pointer}
.pr-more{margin:4px 0 2px 14px}
.pr-legend{color:var(--jp-ui-font-color2,#59636e);font-size:12px;margin:4px 0}
.pr-fallback pre{white-space:pre-wrap}
.pr-unshowable{max-width:100%;border-style:dashed}
</style>
"""


def wrap(body: str) -> str:
    """A view's HTML inside the styled root container, its text as Node prints it.

    Every HTML view leaves through here (a notebook cell, a report, a
    ``DataFrame``'s ``_repr_html_``), so SPEC §9's rule for plain text is
    applied here once: a lone surrogate becomes U+FFFD.
    """
    return printed(f'<div class="pr-root">{CSS}{body}</div>')
