"""JavaScript string semantics the harness's output depends on.

The harness is TypeScript: its parity log lines are built with
``JSON.stringify``, ``String.prototype.slice`` (UTF-16 code units),
``/\\s+/g`` and ``trim()``. Python's equivalents differ on non-ASCII
whitespace, lone surrogates and astral characters, so the exact rules live
here, once.
"""

from __future__ import annotations

import math
import re
from typing import Any

# ECMAScript WhiteSpace + LineTerminator: what /\s/ and String.prototype.trim match.
_JS_WS = "\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_JS_WS_RUN = re.compile(f"[{_JS_WS}]+")
_JS_TRIM = re.compile(f"^[{_JS_WS}]+|[{_JS_WS}]+$")

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def collapse_ws(text: str) -> str:
    """``text.replace(/\\s+/g, " ").trim()`` exactly as JavaScript does it."""
    return _JS_TRIM.sub("", _JS_WS_RUN.sub(" ", text))


def json_quote(text: str) -> str:
    """``JSON.stringify(text)`` for a string (well-formed JSON.stringify, ES2019)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif code < 0x20 or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def utf16_slice(text: str, start: int, end: int) -> str:
    """``text.slice(start, end)`` counting UTF-16 code units.

    Cutting through an astral character leaves a lone surrogate, exactly as
    JavaScript does; the result may then hold a code point in U+D800-U+DFFF.
    """
    units = text.encode("utf-16-le", "surrogatepass")
    return units[2 * start : 2 * end].decode("utf-16-le", "surrogatepass")


def utf16_len(text: str) -> int:
    """``text.length`` in JavaScript."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def to_string(value: Any) -> str:
    """``String(value)`` for the JSON value types, as ``Array.join`` uses it."""
    if value is None:
        return ""  # join() renders null/undefined as the empty string
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(to_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def truthy(value: Any) -> bool:
    """JavaScript truthiness of a JSON value."""
    if isinstance(value, float) and math.isnan(value):
        return False
    if isinstance(value, (list, dict)):
        return True  # [] and {} are truthy in JavaScript
    return bool(value)
