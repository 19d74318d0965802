"""What a pack *is*: one hash over every file that can change a decision.

Rules, windows, lexicons and the questionnaire (every YAML file of every layer, ``pack.yaml``
included) and the data of every watchlist the pack declares. A watchlist's version is derived
from its bytes the same way, so a decision that names a list version names the list it used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

VERSION_DIGITS = 12


def content_version(raw: bytes) -> str:
    """The version of a data file: the first 12 hex digits of its sha256."""
    return hashlib.sha256(raw).hexdigest()[:VERSION_DIGITS]


def pack_content_hash(
    layers: Sequence[tuple[str, Sequence[tuple[str, bytes]]]],
    watchlist_data: Mapping[str, bytes],
) -> str:
    """sha256 over every layer's files (``(pack name, [(relative path, bytes)])``, base first)
    and every watchlist's data by list name."""
    digest = hashlib.sha256()
    for name, files in layers:
        digest.update(f"pack:{name}\0".encode())
        for path, content in sorted(files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(content).digest())
    for list_name in sorted(watchlist_data):
        digest.update(f"watchlist:{list_name}\0".encode())
        digest.update(hashlib.sha256(watchlist_data[list_name]).digest())
    return digest.hexdigest()


def read_watchlist_data(paths: Mapping[str, Path]) -> dict[str, bytes]:
    """The bytes of each declared watchlist file (a missing file counts as empty; the loader
    reports it as an error)."""
    data: dict[str, bytes] = {}
    for name, path in paths.items():
        try:
            data[name] = path.read_bytes()
        except OSError:
            data[name] = b""
    return data
