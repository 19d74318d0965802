"""Open the service's stores from their URLs: ``memory:`` and ``sqlite:///path``.

One function per kind of store; each raises ``ConfigError`` for a URL it cannot serve."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from guardrail.audit.keys import AuditKeys
from guardrail.audit.log import AuditLog
from guardrail.context.history import HistoryStore, InMemoryHistoryStore, SQLiteHistoryStore
from guardrail.server.config import ConfigError, ServeConfig
from guardrail.server.keys import KeyStore, SQLiteKeyStore
from guardrail.server.sessions import InMemorySessionStore, SessionStore, SQLiteSessionStore

MEMORY = "memory:"
SQLITE = "sqlite:///"


def _sqlite_path(url: str, what: str) -> Path | None:
    if url.startswith(SQLITE):
        path = Path(url[len(SQLITE) :])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"stores.{what}: cannot create folder {path.parent}: {error.strerror}"
            ) from None
        return path
    return None


def _unsupported(url: str, what: str, choices: str) -> ConfigError:
    scheme = url.split(":", 1)[0] if ":" in url else url
    return ConfigError(f"stores.{what}: unsupported store URL scheme {scheme!r}; use {choices}")


def shared(url: str) -> bool:
    """True when several worker processes see the same data through ``url``."""
    return not url.startswith(MEMORY)


def open_history(url: str, retention: dt.timedelta | None) -> HistoryStore:
    if url == MEMORY:
        return InMemoryHistoryStore(retention)
    path = _sqlite_path(url, "history")
    if path is not None:
        return SQLiteHistoryStore(path, retention)
    raise _unsupported(url, "history", "memory: or sqlite:///PATH")


def open_sessions(url: str) -> SessionStore:
    if url == MEMORY:
        return InMemorySessionStore()
    path = _sqlite_path(url, "sessions")
    if path is not None:
        return SQLiteSessionStore(path)
    raise _unsupported(url, "sessions", "memory: or sqlite:///PATH")


def open_keys(url: str) -> KeyStore:
    path = _sqlite_path(url, "keys")
    if path is not None:
        return SQLiteKeyStore(path)
    raise _unsupported(url, "keys", "sqlite:///PATH (keys must outlive the process)")


def open_audit(url: str, keys: AuditKeys) -> AuditLog:
    path = _sqlite_path(url, "audit")
    if path is not None:
        return AuditLog.open(path, keys=keys)
    raise _unsupported(url, "audit", "sqlite:///PATH (the audit log must outlive the process)")


def audit_keys(config: ServeConfig) -> AuditKeys:
    """The audit secret from the environment variable the config names."""
    return AuditKeys.from_env(
        var=config.audit.key_env, strict=not config.audit.allow_insecure_development_key
    )


def check_sharing(config: ServeConfig) -> None:
    """Refuse in-process stores when several workers would each see their own copy."""
    if config.serve.workers > 1:
        for name in ("history", "sessions"):
            if not shared(getattr(config.stores, name)):
                raise ConfigError(
                    f"stores.{name}: memory: is private to one process; with serve.workers = "
                    f"{config.serve.workers} use sqlite:///PATH (or one worker)"
                )
