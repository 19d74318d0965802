"""Text normalisation for keyword matching: one canonical form for the ways a word can be typed.

``安全帳戶``, ``安全账户``, ``安 全 账 户`` and full-width or zero-width-spiked variants all become
``安全账户``; Latin letters are case-folded. Pack terms and free text go through the same
function, so a match in the normalised text is a match of what the customer meant.
"""

from __future__ import annotations

import threading
import unicodedata
from functools import lru_cache
from typing import Protocol

# Format (zero-width space/joiners, BOM, bidi marks, tag characters), control and surrogate
# code points, and every kind of space or line break.
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})

# Invisible characters outside those categories that are used to split a keyword.
_DROP_EXTRA = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0}
    | set(range(0xFE00, 0xFE10))  # variation selectors
    | set(range(0xE0100, 0xE01F0))  # variation selectors supplement
)

# OpenCC t2s maps 帳 to 帐, while the account sense is written 账 in simplified text; both
# spellings are in daily use, so fold the variant onto the account sense. Applied to pack terms
# too, so 帐篷 still matches itself.
_SIMPLIFIED_VARIANTS = str.maketrans({"帐": "账"})


class _DropTable(dict[int, int | None]):
    """A ``str.translate`` table that classifies each code point once, on first sight."""

    def __missing__(self, code: int) -> int | None:
        char = chr(code)
        drop = (
            code in _DROP_EXTRA or unicodedata.category(char) in _DROP_CATEGORIES or char.isspace()
        )
        result = None if drop else code
        self[code] = result  # a benign race: every thread computes the same value
        return result


_DROP = _DropTable()


class _Converter(Protocol):
    def convert(self, text: str) -> str: ...


_converter: _Converter | None = None
_converter_lock = threading.Lock()


def _t2s() -> _Converter:
    global _converter
    converter = _converter
    if converter is None:
        with _converter_lock:
            if _converter is None:
                import opencc

                _converter = opencc.OpenCC("t2s")
            converter = _converter
    return converter


@lru_cache(maxsize=1024)
def normalise(text: str) -> str:
    """The canonical form of ``text`` for keyword matching.

    NFKC (full-width → half-width, compatibility forms), OpenCC traditional → simplified,
    case-folding, and removal of all whitespace, zero-width, control and surrogate code points.
    Total: never raises for any ``str``.
    """
    if not text:
        return ""
    result = unicodedata.normalize("NFKC", text).translate(_DROP)
    if not result.isascii():
        # Surrogates were dropped above, so the UTF-8 encoding inside OpenCC cannot fail.
        result = _t2s().convert(result).translate(_SIMPLIFIED_VARIANTS)
    result = result.casefold()
    if not result.isascii():
        # Case-folding can decompose (ǰ → j + caron) and NFKC can produce spaces (¨ → space +
        # diaeresis); one more pass settles both.
        result = unicodedata.normalize("NFKC", result).translate(_DROP)
    return result
