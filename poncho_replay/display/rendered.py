"""Notebook display that never raises: ``_repr_html_`` falls back to text.

Jupyter hides a failing ``_repr_html_`` behind a traceback, which is the
worst moment to lose sight of the data. Every displayable object of the kit
derives from :class:`HtmlRepr`: it implements ``_html()`` and ``_text()``,
and the mixin turns any error in the HTML path into the escaped text view
plus a one-line note saying what failed.

Both views are where the kit's text leaves Python, so the mixin also applies
SPEC §9's rule there (:func:`poncho_replay._js.printed`): a lone surrogate
(half an emoji from the parity check's 120-unit cut) is shown as U+FFFD,
as Node prints it, instead of breaking the notebook's UTF-8 output.

Example:
    >>> Rendered(lambda: "<b>hi</b>", lambda: "hi")._repr_html_()
    '<b>hi</b>'
"""

from __future__ import annotations

import html
from collections.abc import Callable

from poncho_replay._js import printed

__all__ = ["HtmlRepr", "Rendered"]


class HtmlRepr:
    """Mixin: ``_repr_html_`` and ``__repr__`` that never raise."""

    def _html(self) -> str:
        """The rich view; may raise, the mixin catches it."""
        raise NotImplementedError

    def _text(self) -> str:
        """The plain-text view; may raise, the mixin falls back to the class name."""
        raise NotImplementedError

    def _safe_text(self) -> str:
        try:
            return printed(self._text())
        except Exception as exc:  # noqa: BLE001 - a repr must not raise
            return printed(
                f"<{type(self).__name__} (text view failed: {type(exc).__name__}: {exc})>"
            )

    def _repr_html_(self) -> str:
        """The HTML view, or the escaped text view when rendering fails."""
        try:
            return printed(self._html())
        except Exception as exc:  # noqa: BLE001 - display must not raise
            note = html.escape(
                printed(f"HTML view failed ({type(exc).__name__}: {exc}); showing text.")
            )
            return f'<div class="pr-fallback"><em>{note}</em><pre>{html.escape(self._safe_text())}</pre></div>'

    def __repr__(self) -> str:
        return self._safe_text()


class Rendered(HtmlRepr):
    """Ad-hoc displayable: wraps an HTML producer and a text producer."""

    def __init__(self, html_fn: Callable[[], str], text_fn: Callable[[], str]) -> None:
        self._html_fn = html_fn
        self._text_fn = text_fn

    def _html(self) -> str:
        return self._html_fn()

    def _text(self) -> str:
        return self._text_fn()
