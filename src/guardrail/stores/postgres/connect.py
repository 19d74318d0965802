"""Connection pools to PostgreSQL, with errors that name the (masked) URL and the cause."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.abc import AdaptContext
from psycopg_pool import ConnectionPool, PoolTimeout

from guardrail.errors import StoreError
from guardrail.stores.urls import StoreURL

DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_STATEMENT_TIMEOUT_MS = 5000


def describe(exc: BaseException, url: StoreURL) -> str:
    """``exc`` as one line, with the URL's password (if any) removed from the text."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    try:
        password = psycopg.conninfo.conninfo_to_dict(url.url).get("password")
    except psycopg.Error:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text[:500]


def store_error(what: str, url: StoreURL, exc: BaseException) -> StoreError:
    """A StoreError for ``what`` failing on ``url``."""
    return StoreError(f"{what} {url.masked}: {describe(exc, url)}")


def open_pool(
    url: StoreURL,
    *,
    max_size: int = 4,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
    what: str = "PostgreSQL store",
    settings: dict[str, str] | None = None,
    prepare_threshold: int | None = 5,
    context: AdaptContext | None = None,
) -> ConnectionPool:
    """An open pool whose first connection has been made (so a bad URL or a server that is
    down fails here, naming the URL). Every connection has ``statement_timeout`` set, so a
    stuck server costs a screening at most that long. ``settings`` are further server settings
    for every connection; ``prepare_threshold`` as in psycopg (uses before a server-side
    prepare); ``context`` the adapters of every connection (psycopg's defaults without it)."""
    options = {"statement_timeout": str(int(statement_timeout_ms)), **(settings or {})}
    kwargs: dict[str, Any] = {
        "connect_timeout": max(1, round(connect_timeout_s)),
        "options": " ".join(f"-c {name}={value}" for name, value in options.items()),
        "prepare_threshold": prepare_threshold,
        "autocommit": True,
        "application_name": "guardrail",
    }
    if context is not None:
        kwargs["context"] = context
    try:  # one direct connection first: a wrong URL or a server that is down fails now
        with psycopg.connect(url.url, **kwargs) as probe:
            probe.execute("SELECT 1")
    except psycopg.Error as exc:
        raise store_error(f"cannot connect to {what}", url, exc) from None
    try:
        pool = ConnectionPool(
            url.url,
            min_size=1,
            max_size=max_size,
            kwargs=kwargs,
            timeout=connect_timeout_s,
            reconnect_timeout=connect_timeout_s,
            open=False,
            name="guardrail",
        )
        pool.open(wait=True, timeout=connect_timeout_s)
    except (psycopg.Error, PoolTimeout, ValueError) as exc:
        raise store_error(f"cannot open {what}", url, exc) from None
    return pool
