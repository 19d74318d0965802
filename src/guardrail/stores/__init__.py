"""Stores opened by URL: history, counter sessions and the audit log in memory, SQLite or
PostgreSQL. This package sits above ``context``, ``counter`` and ``audit`` (whose protocols its
backends implement) and below the CLI; nothing below imports it."""

from guardrail.stores.openers import (
    guard_from_path,
    open_audit_log,
    open_audit_store,
    open_breaker_store,
    open_history_store,
    open_session_store,
    open_snooze_store,
)
from guardrail.stores.urls import StoreKind, StoreURL, StoreURLError, mask_url, parse_store_url

__all__ = [
    "StoreKind",
    "StoreURL",
    "StoreURLError",
    "guard_from_path",
    "mask_url",
    "open_audit_log",
    "open_audit_store",
    "open_breaker_store",
    "open_history_store",
    "open_session_store",
    "open_snooze_store",
    "parse_store_url",
]
