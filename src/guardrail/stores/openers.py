"""Open a history, session or audit store (or a Guard, an audit log) from a store URL.

``memory:`` (in this process), ``sqlite:///path.db`` (one file on this host),
``postgresql://user@host:port/db`` (shared by every process of the bank). Errors are
:class:`~guardrail.errors.StoreError` naming the URL with its password masked.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from guardrail.audit.keys import AuditKeys
from guardrail.audit.log import AuditLog
from guardrail.audit.sqlite_store import SQLiteStore
from guardrail.audit.store import AuditStore
from guardrail.context.history import (
    HistoryStore,
    InMemoryHistoryStore,
    SQLiteHistoryStore,
    retention_for,
)
from guardrail.counter.session_store import InMemorySessionStore, SessionStore
from guardrail.errors import StoreError
from guardrail.guard import Guard
from guardrail.lang.loader import load_pack
from guardrail.policy.sqlite_stores import SQLiteBreakerStore, SQLiteSnoozeStore
from guardrail.policy.stores import (
    BreakerStore,
    MemoryBreakerStore,
    MemorySnoozeStore,
    SnoozeStore,
)
from guardrail.stores.urls import StoreKind, StoreURL, StoreURLError, parse_store_url

DEFAULT_TIMEOUT_S = 5.0


def _sqlite_error(what: str, url: StoreURL, exc: Exception) -> StoreError:
    return StoreError(f"cannot open {what} {url.masked}: {exc}")


def open_history_store(
    url: str = "memory:",
    *,
    retention: timedelta | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    pool_size: int = 4,
) -> HistoryStore:
    """The executed-history store at ``url``. ``retention`` bounds how long records are kept
    (see :func:`guardrail.context.retention_for`); ``timeout_s`` bounds connecting and each
    query on PostgreSQL, so a screening with the server down fails closed within about that."""
    parsed = parse_store_url(url)
    if parsed.kind is StoreKind.MEMORY:
        return InMemoryHistoryStore(retention)
    if parsed.kind is StoreKind.SQLITE:
        assert parsed.path is not None
        try:
            return SQLiteHistoryStore(parsed.path, retention)
        except Exception as exc:  # sqlite3 errors, OSError
            raise _sqlite_error("history store", parsed, exc) from None
    from guardrail.stores.postgres.history import PostgresHistoryStore

    return PostgresHistoryStore(
        parsed,
        retention=retention,
        pool_size=pool_size,
        timeout_s=timeout_s,
        statement_timeout_ms=int(timeout_s * 1000),
    )


def open_session_store(
    url: str = "memory:", *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> SessionStore:
    """The counter-session store at ``url``."""
    parsed = parse_store_url(url)
    if parsed.kind is StoreKind.MEMORY:
        return InMemorySessionStore()
    if parsed.kind is StoreKind.SQLITE:
        from guardrail.stores.sqlite_sessions import SQLiteSessionStore

        assert parsed.path is not None
        return SQLiteSessionStore(parsed)
    from guardrail.stores.postgres.sessions import PostgresSessionStore

    return PostgresSessionStore(parsed, timeout_s=timeout_s)


def open_audit_store(
    url: str | Path, *, create: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S
) -> AuditStore:
    """The audit store at ``url``; a plain file path means a SQLite file. With ``create`` false
    the log must already exist (verification and reports never create one)."""
    text = str(url)
    if "://" not in text and not text.startswith("memory:"):
        return SQLiteStore(Path(text), create=create)
    parsed = parse_store_url(text)
    if parsed.kind is StoreKind.MEMORY:
        raise StoreURLError(
            f"store URL {parsed.masked!r}: an audit log must be durable; "
            "use sqlite:///path.db or postgresql://..."
        )
    if parsed.kind is StoreKind.SQLITE:
        assert parsed.path is not None
        return SQLiteStore(parsed.path, create=create)
    from guardrail.stores.postgres.audit import PostgresAuditStore

    return PostgresAuditStore(parsed, create=create, timeout_s=timeout_s)


def open_audit_log(url: str | Path, keys: AuditKeys, **options: Any) -> AuditLog:
    """An :class:`AuditLog` on the store at ``url`` (options as for ``AuditLog``)."""
    store = open_audit_store(url)
    try:
        return AuditLog(store, keys, **options)
    except BaseException:
        store.close()
        raise


def guard_from_path(
    path: str | Path,
    *,
    history: str | HistoryStore = "memory:",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    **options: Any,
) -> Guard:
    """``Guard.from_path`` with the history store given as a URL (or a store object)."""
    pack = load_pack(path)
    if isinstance(history, str):
        retention = retention_for(list(pack.windows.values()))
        history = open_history_store(history, retention=retention, timeout_s=timeout_s)
    return Guard(pack, history=history, **options)


def open_snooze_store(url: str | Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> SnoozeStore:
    """The snooze store at ``url`` (a plain path means a SQLite file)."""
    parsed = _policy_url(url)
    if parsed.kind is StoreKind.MEMORY:
        return MemorySnoozeStore()
    if parsed.kind is StoreKind.SQLITE:
        assert parsed.path is not None
        return SQLiteSnoozeStore(parsed.path)
    from guardrail.stores.postgres.policy import PostgresSnoozeStore

    return PostgresSnoozeStore(parsed, timeout_s=timeout_s)


def open_breaker_store(url: str | Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> BreakerStore:
    """The circuit-breaker store at ``url`` (a plain path means a SQLite file)."""
    parsed = _policy_url(url)
    if parsed.kind is StoreKind.MEMORY:
        return MemoryBreakerStore()
    if parsed.kind is StoreKind.SQLITE:
        assert parsed.path is not None
        return SQLiteBreakerStore(parsed.path)
    from guardrail.stores.postgres.policy import PostgresBreakerStore

    return PostgresBreakerStore(parsed, timeout_s=timeout_s)


def _policy_url(url: str | Path) -> StoreURL:
    text = str(url)
    if "://" not in text and not text.startswith("memory:"):
        text = f"sqlite:///{Path(text).resolve()}"
    return parse_store_url(text)
