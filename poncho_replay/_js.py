"""JavaScript string semantics the harness's output depends on.

The harness is TypeScript: its parity log lines are built with
``JSON.stringify``, ``String.prototype.slice`` (UTF-16 code units),
``/\\s+/g`` and ``trim()``. Python's equivalents differ on non-ASCII
whitespace, lone surrogates and astral characters, so the exact rules live
here, once.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

# ECMAScript WhiteSpace + LineTerminator: what /\s/ and String.prototype.trim match.
_JS_WS = "\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_JS_WS_RUN = re.compile(f"[{_JS_WS}]+")
_JS_TRIM = re.compile(f"^[{_JS_WS}]+|[{_JS_WS}]+$")

_JS_DECIMAL = re.compile(r"[+-]?(Infinity|[0-9]+\.?[0-9]*([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?)")
_JS_RADIX = re.compile(r"0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+")

# What JSON.stringify escapes: quote, backslash, controls, and (after pairs are joined) lone surrogates.
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\ud800-\udfff]')
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def collapse_ws(text: str) -> str:
    """``text.replace(/\\s+/g, " ").trim()`` exactly as JavaScript does it."""
    return _JS_TRIM.sub("", _JS_WS_RUN.sub(" ", text))


def json_quote(text: str) -> str:
    """``JSON.stringify(text)`` for a string (well-formed JSON.stringify, ES2019)."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, _join_surrogate_pairs(text)) + '"'


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _SHORT_ESCAPES.get(ch) or f"\\u{ord(ch):04x}"


def _join_surrogate_pairs(text: str) -> str:
    """Merge adjacent high+low surrogate code points into the astral character.

    A Python ``str`` can hold a pair as two code points (for example after
    concatenating two halves); JavaScript sees one character there.
    """
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


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
    if isinstance(value, (int, float)):
        return number_to_string(_as_double(value))
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(to_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def number_to_string(value: float) -> str:
    """``Number.prototype.toString()``: shortest round-trip digits, JavaScript layout.

    Differs from Python's ``repr`` on exponents (``1e-7`` not ``1e-07``),
    integral values up to 1e21 (``123456789012345680000``, not the exact
    binary value) and the non-finite names.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"  # also -0
    if value < 0:
        return "-" + number_to_string(-value)
    _, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    all_digits = "".join(map(str, digit_tuple))
    # value = 0.<all_digits> x 10**n (ECMA-262 Number::toString's n).
    n = len(all_digits) + int(exponent)
    digits = all_digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    sign = "+" if n - 1 >= 0 else "-"
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{head}e{sign}{abs(n - 1)}"


def to_number(value: Any) -> float:
    """``Number(value)`` for JSON values, as relational comparisons coerce them."""
    if value is None:
        return 0.0
    if isinstance(value, (bool, int, float)):
        return _as_double(value)
    if isinstance(value, list):
        return to_number(to_string(value))
    if isinstance(value, str):
        body = _JS_TRIM.sub("", value)
        if body == "":
            return 0.0
        if _JS_DECIMAL.fullmatch(body):
            return float(body.replace("Infinity", "inf"))
        if _JS_RADIX.fullmatch(body):
            return _as_double(int(body, 0))
    return math.nan


def _as_double(value: float) -> float:
    """A JSON number as JavaScript holds it: a double, huge integers becoming Infinity."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def truthy(value: Any) -> bool:
    """JavaScript truthiness of a JSON value."""
    if isinstance(value, float) and math.isnan(value):
        return False
    if isinstance(value, (list, dict)):
        return True  # [] and {} are truthy in JavaScript
    return bool(value)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def printed(text: str) -> str:
    """The string as Node writes it to UTF-8 (a log, a page, a terminal): lone surrogates become U+FFFD.

    SPEC §9's rule for plain text, applied at every place the kit writes
    text (HTML files and views, CLI output). Strings from :func:`utf16_slice`
    may end in half an emoji; JavaScript keeps the lone surrogate in memory,
    but UTF-8 (and a DuckDB VARCHAR) can only hold the replacement character.
    A pair held as two code points is one character to JavaScript, so it is
    printed as that character, not as two replacements.
    """
    if _SURROGATE.search(text) is None:
        return text
    return _LONE_SURROGATE.sub("\ufffd", _join_surrogate_pairs(text))


def json_dumps(value: Any, **options: Any) -> str:
    """JSON text of ``value`` the way ``JSON.stringify`` writes its strings: UTF-8-safe, nothing lost.

    SPEC §9's rule for JSON the kit writes (``--json``, JSONL): non-ASCII
    stays as it is, and a lone surrogate becomes the escape ``\\ud83d``
    (``json.dumps(ensure_ascii=False)`` would leave the raw code point,
    which no UTF-8 file or stdout can encode). ``json.loads`` of the result
    gives back the same Python string. ``options`` go to :func:`json.dumps`.
    """
    text = json.dumps(value, ensure_ascii=False, **options)
    if _SURROGATE.search(text) is None:
        return text
    # Raw surrogates can only sit inside string literals, so escaping them in place keeps the JSON valid.
    return _LONE_SURROGATE.sub(_escape, _join_surrogate_pairs(text))
