"""Named, versioned lists (involved accounts, warned customers, surrender agents, fraud phones).

Loaded from CSV or YAML, swapped atomically on reload; a screening holds a snapshot so a reload
in the middle of it changes nothing it sees.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from guardrail.lang.identity import content_version
from guardrail.lang.watchlist_file import WatchlistError, normalise_value, read_watchlist_file

__all__ = [
    "Watchlist",
    "WatchlistError",
    "WatchlistRegistry",
    "load_watchlist",
    "normalise_value",
]


@dataclass(frozen=True, slots=True)
class Watchlist:
    """One named list at one version; ``entries`` hold normalised values."""

    name: str
    version: str  # derived from the content: the same entries always give the same version
    entries: frozenset[str]
    label: str = ""  # the version the file's author wrote (``# version:``), for people only

    @classmethod
    def of(
        cls, name: str, version: str | None, values: Iterable[str], *, label: str = ""
    ) -> Watchlist:
        """Build a list from raw values, normalising each and skipping empty ones; without a
        ``version``, one is derived from the normalised entries."""
        entries = frozenset(v for v in map(normalise_value, values) if v)
        if version is None:
            version = content_version("\n".join(sorted(entries)).encode())
        return cls(name, version, entries, label)

    def contains(self, value: str) -> bool:
        """Whether ``value`` (in any spacing, dashing or case) is on the list."""
        return normalise_value(value) in self.entries

    def __len__(self) -> int:
        return len(self.entries)


def load_watchlist(path: Path, name: str) -> Watchlist:
    """Load a watchlist from ``.csv`` or ``.yaml``/``.yml``; raises WatchlistError when malformed
    (the format is described at ``guardrail.lang.watchlist_file.read_watchlist_file``)."""
    version, label, values = read_watchlist_file(Path(path))
    return Watchlist.of(name, version, values, label=label)


class WatchlistRegistry:
    """The current version of every named list; reloads swap a whole list atomically."""

    def __init__(self, lists: Iterable[Watchlist] = ()) -> None:
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()  # two reloads of one list finish in call order
        # Copy-on-write: the published dict is never mutated, so a snapshot is just a view of it.
        self._lists: Mapping[str, Watchlist] = MappingProxyType({wl.name: wl for wl in lists})

    def register(self, wl: Watchlist) -> None:
        """Add or replace a list."""
        with self._lock:
            self._lists = MappingProxyType({**self._lists, wl.name: wl})

    def reload(self, name: str, path: Path) -> Watchlist:
        """Load ``path`` fully, then replace list ``name``; on error the old list stays."""
        with self._reload_lock:
            loaded = load_watchlist(path, name)  # before the swap: readers are never blocked
            self.register(loaded)
        return loaded

    def snapshot(self) -> Mapping[str, Watchlist]:
        """An immutable view of every list as of now, unaffected by later reloads."""
        return self._lists

    def names(self) -> frozenset[str]:
        """Names of the registered lists."""
        return frozenset(self._lists)

    def __getitem__(self, name: str) -> Watchlist:
        return self._lists[name]
