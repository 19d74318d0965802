"""Open the service's stores from their URLs (``memory:``, ``sqlite:///path``,
``postgresql://...``): history, sessions and the audit log through ``guardrail.stores``; the
API keys here. Every failure is a ``ConfigError`` or ``StoreError`` naming the masked URL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from guardrail.audit.keys import AuditKeys
from guardrail.audit.log import AuditLog
from guardrail.context.history import HistoryStore
from guardrail.counter.session_store import SessionStore
from guardrail.server.config import ConfigError, ServeConfig
from guardrail.server.keys import KeyStore, SQLiteKeyStore
from guardrail.stores import (
    StoreKind,
    StoreURLError,
    open_audit_log,
    open_history_store,
    open_session_store,
    parse_store_url,
)


def _checked(url: str, what: str) -> StoreKind:
    try:
        parsed = parse_store_url(url)
    except StoreURLError as error:
        raise ConfigError(f"stores.{what}: {error}") from None
    if parsed.kind is StoreKind.SQLITE and parsed.path is not None:
        folder = Path(parsed.path).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"stores.{what}: cannot create folder {folder}: {error.strerror}"
            ) from None
    return parsed.kind


def shared(url: str) -> bool:
    """True when several worker processes see the same data through ``url``."""
    return _checked(url, "?") is not StoreKind.MEMORY


def open_history(url: str, retention: dt.timedelta | None) -> HistoryStore:
    _checked(url, "history")
    return open_history_store(url, retention=retention)


def open_sessions(url: str) -> SessionStore:
    _checked(url, "sessions")
    return open_session_store(url)


def open_keys(url: str) -> KeyStore:
    kind = _checked(url, "keys")
    parsed = parse_store_url(url)
    if kind is StoreKind.SQLITE and parsed.path is not None:
        return SQLiteKeyStore(parsed.path)
    if kind is StoreKind.POSTGRESQL:
        from guardrail.server.keys_postgres import PostgresKeyStore

        return PostgresKeyStore(parsed)
    raise ConfigError("stores.keys: keys must outlive the process: use sqlite:/// or postgresql://")


def open_audit(url: str, keys: AuditKeys) -> AuditLog:
    if _checked(url, "audit") is StoreKind.MEMORY:
        raise ConfigError(
            "stores.audit: the audit log must be durable: sqlite:/// or postgresql://"
        )
    return open_audit_log(url, keys)


def audit_keys(config: ServeConfig) -> AuditKeys:
    """The audit secret from the environment variable the config names."""
    return AuditKeys.from_env(
        var=config.audit.key_env, strict=not config.audit.allow_insecure_development_key
    )


def check_sharing(config: ServeConfig) -> None:
    """Refuse in-process stores when several workers would each see their own copy."""
    for name in ("history", "sessions", "audit", "keys"):
        _checked(getattr(config.stores, name), name)
    if config.serve.workers > 1:
        for name in ("history", "sessions"):
            if not shared(getattr(config.stores, name)):
                raise ConfigError(
                    f"stores.{name}: memory: is private to one process; with serve.workers = "
                    f"{config.serve.workers} use sqlite:/// or postgresql:// (or one worker)"
                )
