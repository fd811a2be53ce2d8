"""Text is data: model output, prompts, traces and paths, made safe to show on a terminal or write as JSON.

`shown` is the one function every widget and every plain output line passes such text through: no character of
it can move the cursor, change the terminal (ESC, BEL, C1 controls), reorder text (bidi overrides) or vanish
(NUL, zero-width marks). Each such character becomes ONE visible one-cell stand-in, so the text keeps its length
and its layout (an input's cursor, a column of chips): C0 controls the Unicode control pictures (␛ ␇ ␀), DEL ␡,
C1 controls, invisible format characters and lone surrogates U+FFFD. Everything else, emoji and combining marks
included, is kept.

`json_line` writes a record as one JSON line whose every string is still exact (json.loads gives the very
same text back) but whose bytes hold none of those characters raw, so `cat` of a trace or of --json output is safe.
No third-party imports: the engine, the headless run and the app all use it.
"""

from __future__ import annotations

import json
import re

REPLACEMENT = "\ufffd"

# Format (Cf) and separator (Zl, Zp) characters that are invisible or reorder text. Not ZWJ/ZWNJ (U+200C/D) and not
# the tag characters (U+E0020-E007F): emoji sequences need them and they draw nothing on their own.
_INVISIBLE = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001"
)
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_INVISIBLE}]")
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f\ud800-\udfff{_INVISIBLE}]")  # json.dumps escapes C0 itself


def _stand_in(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ .. ␟
    if code == 0x7F:
        return "\u2421"  # ␡
    return REPLACEMENT  # C1, lone surrogates, invisible format characters: no picture of their own


def shown(text: object, keep: str = "\n") -> str:
    """`text` with every control or invisible character replaced by a visible stand-in; `keep` lists the ones
    (from newline and tab) the caller lays out itself: a multi-line view keeps newlines, a one-line cell keeps none."""
    text = "" if text is None else str(text)
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _stand_in(m.group()), text)


def json_line(record: object) -> str:
    """One line of JSON, readable (non-ASCII kept) and exact, with unsafe characters written as \\u escapes."""
    text = json.dumps(record, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda m: "".join(f"\\u{unit:04x}" for unit in _utf16(m.group())), text)


def _utf16(char: str) -> list[int]:
    code = ord(char)
    if code <= 0xFFFF:
        return [code]
    code -= 0x10000
    return [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]


def from_argv(text: str) -> tuple[str, bool]:
    """A command-line string: bytes that were not UTF-8 (kept by Python as lone surrogates) become U+FFFD.
    Returns the text and whether anything was replaced."""
    if not _SURROGATE.search(text):
        return text, False
    try:  # how Python keeps undecodable argv bytes: one surrogate per byte
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), True
    except UnicodeEncodeError:
        return _SURROGATE.sub(REPLACEMENT, text), True


_SURROGATE = re.compile("[\ud800-\udfff]")
