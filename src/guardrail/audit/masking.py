"""Protection of customers' personal data before anything reaches the audit log.

Each personal field belongs to a :class:`FieldClass`; a :class:`MaskingPolicy` says how each
class is stored: a keyed hash (``h:3fa9...``, HMAC-SHA256 of the normalised value, so equal
values correlate across records but cannot be read back without the key), a masked display
form (``6222***********3445``), both, dropped, or (explicitly) kept. Free text is redacted:
personal values known from the event and any long run of digits are replaced by keyed hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable, Mapping
from enum import StrEnum
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class FieldClass(StrEnum):
    """Kinds of personal data, each with its own normalisation and mask."""

    ID_NUMBER = "id_number"
    PHONE = "phone"
    NAME = "name"
    ACCOUNT = "account"
    CUSTOMER_ID = "customer_id"
    BIRTH_DATE = "birth_date"
    FREE_TEXT = "free_text"


class Protection(StrEnum):
    """How one field class is stored."""

    KEYED_HASH = "keyed_hash"  # h:<hex>
    MASK = "mask"  # 6222***********3445 (a birth date keeps only its year)
    MASK_AND_HASH = "mask_and_hash"  # 6222***********3445|h:<hex>
    REDACT = "redact"  # free text only: known values and long digit runs become hashes
    DROP = "drop"  # not stored at all
    KEEP = "keep"  # stored raw: only where the bank has a legal basis to keep it


class MaskingPolicy(BaseModel):
    """Per field class protection. The default keeps no raw personal data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id_number: Protection = Protection.KEYED_HASH
    phone: Protection = Protection.KEYED_HASH
    name: Protection = Protection.KEYED_HASH
    account: Protection = Protection.KEYED_HASH
    customer_id: Protection = Protection.KEYED_HASH
    birth_date: Protection = Protection.MASK
    free_text: Protection = Protection.REDACT
    hash_hex_chars: int = Field(default=24, ge=16, le=64)
    min_digit_run: int = Field(default=7, ge=4, le=32)

    def protection(self, field_class: FieldClass) -> Protection:
        value: Protection = getattr(self, field_class.value)
        return value


DEFAULT_POLICY = MaskingPolicy()

_DIGITS_IN_TEXT = re.compile(r"\+?\d[\d \-]*\d[Xx]?")
_SEPARATORS = re.compile(r"[\s\-]")
# What people put between the characters of a name or number in free text: spaces (full-width
# ones become spaces under NFKC), hyphens, dots, middle dots, commas, slashes, asterisks.
_TEXT_SEPARATORS = r"[\s\-_.·•・,，、/\\|*]{0,3}"
_PARK_OPEN = "\ue000"  # private-use code points: never in real input text
_PARK_BASE = 0xE100


def normalise(field_class: FieldClass, value: str) -> str:
    """The canonical form hashed for ``field_class``: equal values give equal hashes."""
    text = unicodedata.normalize("NFKC", value).strip()
    if field_class is FieldClass.PHONE:
        digits = _SEPARATORS.sub("", text)
        for prefix in ("+86", "0086"):
            if digits.startswith(prefix) and len(digits) > len(prefix) + 6:
                digits = digits[len(prefix) :]
        return digits
    if field_class in (FieldClass.ID_NUMBER, FieldClass.ACCOUNT):
        return _SEPARATORS.sub("", text).upper()
    if field_class is FieldClass.NAME:
        return " ".join(text.split()).casefold()
    return text


@lru_cache(maxsize=4096)
def _spread_pattern(raw: str) -> re.Pattern[str]:
    """``raw`` (without its own separators) with any short run of separators between its
    characters, so ``王秀英`` also matches ``王 秀 英`` and ``王-秀-英``."""
    characters = [ch for ch in unicodedata.normalize("NFKC", raw) if not _is_separator(ch)]
    return re.compile(_TEXT_SEPARATORS.join(re.escape(ch) for ch in characters), re.IGNORECASE)


def _is_separator(ch: str) -> bool:
    return re.fullmatch(_TEXT_SEPARATORS, ch) is not None


def _mask_middle(text: str, head: int, tail: int) -> str:
    if len(text) <= head + tail:
        keep = max(0, len(text) // 4)
        return text[:keep] + "*" * (len(text) - keep)
    return text[:head] + "*" * (len(text) - head - tail) + text[len(text) - tail :]


class Masker:
    """Protects personal values with a secret key and a :class:`MaskingPolicy`."""

    def __init__(self, key: bytes, policy: MaskingPolicy = DEFAULT_POLICY) -> None:
        if len(key) < 16:
            raise ValueError("the masking key must be at least 16 bytes")
        self._mac = hmac.new(key, digestmod=hashlib.sha256)  # copied per value: no re-keying
        self.policy = policy

    def keyed_hash(self, field_class: FieldClass, value: str) -> str:
        """``h:<hex>``: HMAC-SHA256 of the normalised value, truncated."""
        message = f"{field_class.value}\x00{normalise(field_class, value)}".encode()
        mac = self._mac.copy()
        mac.update(message)
        digest = mac.hexdigest()
        return "h:" + digest[: self.policy.hash_hex_chars]

    def mask(self, field_class: FieldClass, value: str) -> str:
        """A display form that hides most of the value, e.g. ``138****8000``."""
        text = normalise(field_class, value)
        if field_class is FieldClass.PHONE:
            return _mask_middle(text, 3, 4)
        if field_class in (FieldClass.ID_NUMBER, FieldClass.ACCOUNT, FieldClass.CUSTOMER_ID):
            return _mask_middle(text, 4, 4)
        if field_class is FieldClass.NAME:
            original = " ".join(unicodedata.normalize("NFKC", value).split())
            return original[:1] + "*" * max(1, len(original) - 1)
        if field_class is FieldClass.BIRTH_DATE:
            return text[:4]
        return "*" * len(text)

    def protect(self, field_class: FieldClass, value: str | None) -> str | None:
        """Apply the policy for ``field_class``; ``None`` stays ``None``, dropped gives ``None``."""
        if value is None:
            return None
        protection = self.policy.protection(field_class)
        if protection is Protection.DROP:
            return None
        if protection is Protection.KEEP:
            return value
        if protection is Protection.MASK:
            return self.mask(field_class, value)
        if protection is Protection.MASK_AND_HASH:
            return f"{self.mask(field_class, value)}|{self.keyed_hash(field_class, value)}"
        if protection is Protection.REDACT:
            return self.redact_text(value)
        return self.keyed_hash(field_class, value)

    def known_values(self, values: Iterable[tuple[FieldClass, str | None]]) -> dict[str, str]:
        """Map raw personal values (as they may appear inside free text) to protected forms.

        Names shorter than two characters are left out: replacing them would mangle text.
        """
        table: dict[str, str] = {}
        for field_class, value in values:
            if not value:
                continue
            raw = value.strip()
            if field_class is FieldClass.NAME and len(raw) < 2:
                continue
            replacement = self.keyed_hash(field_class, raw)
            table[raw] = replacement
            compact = _SEPARATORS.sub("", raw)
            if compact != raw and len(compact) >= 4:
                table[compact] = replacement
        return table

    def redact_text(self, text: str, known: Mapping[str, str] | None = None) -> str:
        """Replace known personal values and digit runs of ``min_digit_run`` or more digits."""
        protection = self.policy.free_text
        if protection is Protection.KEEP:
            return text
        if protection is Protection.DROP:
            return ""
        result = unicodedata.normalize("NFKC", text).replace(_PARK_OPEN, "")
        # Known values first, parked behind private-use placeholders so that the digit scan
        # below never rescans them or the hex of their replacements.
        parked: list[str] = []
        if known:
            for raw in sorted(known, key=len, reverse=True):
                pattern = _spread_pattern(raw)
                if not pattern.pattern:
                    continue
                placeholder = _PARK_OPEN + chr(_PARK_BASE + len(parked))
                result, count = pattern.subn(placeholder, result)
                if count:
                    parked.append(known[raw])

        def _replace(match: re.Match[str]) -> str:
            token = match.group(0)
            if sum(ch.isdigit() for ch in token) < self.policy.min_digit_run:
                return token
            return "[" + self.keyed_hash(FieldClass.FREE_TEXT, _SEPARATORS.sub("", token)) + "]"

        result = _DIGITS_IN_TEXT.sub(_replace, result)
        for index, replacement in enumerate(parked):
            result = result.replace(_PARK_OPEN + chr(_PARK_BASE + index), "[" + replacement + "]")
        return result
