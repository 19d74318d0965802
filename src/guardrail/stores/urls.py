"""Store URLs: ``memory:``, ``sqlite:///path.db`` and ``postgresql://user@host:port/db``.

Parsing only; :mod:`guardrail.stores.open` turns a parsed URL into a store. Every message that
shows a URL shows it through :func:`mask_url`, so a password never reaches a log or a screen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from guardrail.errors import StoreError

_PASSWORD = re.compile(r"^(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@?#]*:)(?P<secret>[^@/?#]*)@")
_QUERY_PASSWORD = re.compile(r"(?i)(?P<key>[?&]password=)[^&#]*")


class StoreKind(StrEnum):
    MEMORY = "memory"
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class StoreURLError(StoreError, ValueError):
    """A store URL that cannot be understood; the message shows it masked and says why."""


def mask_url(url: str) -> str:
    """``url`` with any password (``user:secret@`` or ``?password=``) replaced by ``***``."""
    masked = _PASSWORD.sub(r"\g<head>***@", url, count=1)
    return _QUERY_PASSWORD.sub(r"\g<key>***", masked)


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store URL. ``path`` is the SQLite file (``:memory:`` for a private in-memory
    database); ``url`` is the original text (to connect with), ``masked`` what to show."""

    kind: StoreKind
    url: str
    path: Path | None = None

    @property
    def masked(self) -> str:
        return mask_url(self.url)

    def __str__(self) -> str:
        return self.masked


_EXPECTED = "expected memory:, sqlite:///path.db or postgresql://user@host:port/db"


def parse_store_url(url: str) -> StoreURL:
    """Parse ``url``; :class:`StoreURLError` names the (masked) URL and what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise StoreURLError(f"empty store URL ({_EXPECTED})")
    text = url.strip()
    shown = mask_url(text)
    if text in ("memory:", "memory://"):
        return StoreURL(StoreKind.MEMORY, text)
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if not sep:
        raise StoreURLError(f"store URL {shown!r} has no scheme ({_EXPECTED})")
    if scheme == "sqlite":
        if not rest.startswith("///"):
            raise StoreURLError(
                f"store URL {shown!r}: a SQLite URL is sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db (three slashes, then the path)"
            )
        path = rest[3:]
        if not path:
            raise StoreURLError(f"store URL {shown!r}: no file path after sqlite:///")
        return StoreURL(StoreKind.SQLITE, text, Path(path))
    if scheme in ("postgresql", "postgres"):
        try:
            parts = urlsplit(text)
            port = parts.port  # raises ValueError on a port that is not a number
        except ValueError as exc:
            raise StoreURLError(f"store URL {shown!r}: {exc}") from None
        if not parts.hostname and "host=" not in parts.query:
            raise StoreURLError(f"store URL {shown!r}: no host (postgresql://user@host:port/db)")
        if port is not None and not 0 < port < 65536:
            raise StoreURLError(f"store URL {shown!r}: port {port} out of range")
        if not parts.path.strip("/"):
            raise StoreURLError(f"store URL {shown!r}: no database name after the host")
        return StoreURL(StoreKind.POSTGRESQL, text)
    raise StoreURLError(f"store URL {shown!r}: unknown scheme {scheme!r} ({_EXPECTED})")
