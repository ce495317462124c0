"""JavaScript string semantics the parity log depends on (``poncho_replay._js``).

Expected values are written by hand from ECMA-262 (``\\s`` = WhiteSpace +
LineTerminator; JSON.stringify escapes ``"`` ``\\`` and C0 controls and,
since ES2019, lone surrogates; ``slice`` counts UTF-16 code units). A
cross-check against Node runs when ``node`` is installed; it is extra
evidence, never the only one.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poncho_replay._js import (
    collapse_ws,
    json_quote,
    number_to_string,
    to_number,
    to_string,
    truthy,
    utf16_len,
    utf16_slice,
)
from tests.strategies import js_text

# --- collapse_ws: text.replace(/\s+/g, " ").trim() -------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("   ", ""),
        ("a\r\n\tb", "a b"),
        ("  a \u00a0\u3000 b\u2028c  ", "a b c"),  # NBSP, ideographic space, line separator
        ("\ufeffx\u2029", "x"),  # BOM and paragraph separator are \s and trimmed
        ("a\u1680\u2000\u200a\u202f\u205fb", "a b"),
        ("\x0b\x0cv\x0b", "v"),
        ("a\u0085b", "a\u0085b"),  # NEL: \s in Python, not in JavaScript
        ("\u0085x\u0085", "\u0085x\u0085"),  # ... so trim() keeps it too
        ("a\u180eb", "a\u180eb"),  # Mongolian vowel separator left Zs in Unicode 6.3
        ("a\u200bb", "a\u200bb"),  # zero-width space is not whitespace
        ("😀  😀", "😀 😀"),
    ],
)
def test_collapse_ws_uses_javascript_whitespace(text: str, expected: str) -> None:
    assert collapse_ws(text) == expected


# --- json_quote: JSON.stringify(string) --------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", '""'),
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("\n\t\r\b\f", '"\\n\\t\\r\\b\\f"'),
        ("\x00\x01\x1f", '"\\u0000\\u0001\\u001f"'),
        ("\x7f\u2028\u2029/", '"\x7f\u2028\u2029/"'),  # DEL, LS, PS and / are not escaped
        ("é旅 😀", '"é旅 😀"'),
        ("a\ud83d", '"a\\ud83d"'),  # a lone high surrogate is escaped (well-formed stringify)
        ("\ude00b", '"\\ude00b"'),  # a lone low surrogate too
        ("\ud83d" + "\ude00", '"😀"'),  # two halves side by side are one character to JavaScript
    ],
)
def test_json_quote_matches_json_stringify(text: str, expected: str) -> None:
    assert json_quote(text) == expected


# --- utf16_slice / utf16_len: String.prototype.slice / .length ---------------------


def test_utf16_len_counts_code_units() -> None:
    assert utf16_len("") == 0
    assert utf16_len("é") == 1
    assert utf16_len("😀") == 2
    assert utf16_len("👍🏽") == 4  # thumbs up + skin tone modifier, both astral
    assert utf16_len("🏳️‍🌈") == 6  # flag (2) + VS16 (1) + ZWJ (1) + rainbow (2)


def test_utf16_slice_cuts_an_emoji_in_half_like_javascript() -> None:
    assert utf16_slice("a😀b", 0, 2) == "a\ud83d"
    assert utf16_slice("a😀b", 2, 4) == "\ude00b"
    assert utf16_slice("a😀b", 1, 3) == "😀"
    assert utf16_slice("abc", 0, 120) == "abc"  # an end past the length is clamped
    assert utf16_slice("abc", 2, 1) == ""


# --- to_string / number_to_string / to_number / truthy ------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),  # as Array.join renders null
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (1.0, "1"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (123456789012345680000.0, "123456789012345680000"),
        (2.0**53 + 2, "9007199254740994"),
        (10**400, "Infinity"),  # a JSON integer too big for a double
        (1.5e300, "1.5e+300"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (math.nan, "NaN"),
        ("x", "x"),
        ([1, "a", None, [2, 3]], "1,a,,2,3"),
        ({"a": 1}, "[object Object]"),
    ],
)
def test_to_string_matches_javascript_string(value: object, expected: str) -> None:
    assert to_string(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 0.0),
        (True, 1.0),
        ("", 0.0),
        (" 12 ", 12.0),
        ("\u3000 7\u2028", 7.0),
        ("0x1f", 31.0),
        (".5", 0.5),
        ("-Infinity", -math.inf),
        ([], 0.0),
        ([4], 4.0),
        ("0x" + "f" * 300, math.inf),
    ],
)
def test_to_number_matches_javascript_number(value: object, expected: float) -> None:
    assert to_number(value) == expected


@pytest.mark.parametrize("value", ["infinity", "1_0", "abc", "-0x1", [1, 2], {}])
def test_to_number_gives_nan_where_javascript_does(value: object) -> None:
    assert math.isnan(to_number(value))


@pytest.mark.parametrize("value", ["", 0, 0.0, None, False, math.nan])
def test_falsy_values(value: object) -> None:
    assert truthy(value) is False


@pytest.mark.parametrize("value", ["0", "false", " ", [], {}, -1, True])
def test_truthy_values(value: object) -> None:
    assert truthy(value) is True


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_to_string_round_trips(value: float) -> None:
    # JavaScript prints the shortest digits that read back as the same double.
    assert float(number_to_string(value)) == value


# --- cross-check with Node on random strings ----------------------------------------

_NODE = shutil.which("node")
_NODE_SCRIPT = r"""
const items = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = items.map(([s, a, b]) => {
  const q = JSON.stringify(s);
  return [q, q.slice(0, 120), s.replace(/\s+/g, " ").trim(), s.length, s.slice(a, b)];
});
process.stdout.write(JSON.stringify(out));
"""


def _canonical(text: str) -> str:
    """Pairs of surrogate code points as one character, as JSON.parse gives them back."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


@pytest.mark.skipif(_NODE is None, reason="node is not installed")
@settings(max_examples=25)
@given(
    st.lists(
        st.tuples(
            js_text(max_size=80, lone_surrogates=True), st.integers(0, 60), st.integers(0, 170)
        ),
        min_size=1,
        max_size=20,
    )
)
def test_js_helpers_agree_with_node(items: list[tuple[str, int, int]]) -> None:
    # json.dumps escapes everything non-ASCII, lone surrogates included, so Node reads the same units.
    run = subprocess.run(
        [_NODE, "-e", _NODE_SCRIPT],
        input=json.dumps(items),
        capture_output=True,
        text=True,
        check=True,
    )
    for (text, a, b), (quoted, cut, collapsed, length, sliced) in zip(
        items, json.loads(run.stdout), strict=True
    ):
        assert json_quote(text) == quoted
        assert utf16_slice(json_quote(text), 0, 120) == cut
        assert _canonical(collapse_ws(text)) == collapsed
        assert utf16_len(text) == length
        assert utf16_slice(text, a, b) == sliced
