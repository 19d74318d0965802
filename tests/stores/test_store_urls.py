"""Store URLs: parsing, masking, and the errors a wrong URL or a down server give."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from guardrail.context import InMemoryHistoryStore, SQLiteHistoryStore
from guardrail.counter.session_store import InMemorySessionStore
from guardrail.errors import StoreError
from guardrail.stores import (
    StoreKind,
    StoreURLError,
    mask_url,
    open_audit_store,
    open_history_store,
    open_session_store,
    parse_store_url,
)
from postgres_server import free_port


def test_urls_parse_to_their_kind(tmp_path: Path) -> None:
    assert parse_store_url("memory:").kind is StoreKind.MEMORY
    parsed = parse_store_url(f"sqlite:///{tmp_path}/h.db")
    assert parsed.kind is StoreKind.SQLITE and parsed.path == tmp_path / "h.db"
    assert parse_store_url("sqlite:///rel/h.db").path == Path("rel/h.db")
    assert parse_store_url("postgresql://u@db.bank:5432/guard").kind is StoreKind.POSTGRESQL
    assert parse_store_url("postgres://u:pw@db/guard").kind is StoreKind.POSTGRESQL
    # a server on this host through its Unix-domain socket directory
    socket = parse_store_url("postgresql://u:pw@/guard?host=/run/postgresql")
    assert socket.kind is StoreKind.POSTGRESQL
    assert socket.masked == "postgresql://u:***@/guard?host=/run/postgresql"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "empty store URL"),
        ("mysql://u@h/db", "unknown scheme 'mysql'"),
        ("sqlite://h.db", "three slashes"),
        ("sqlite:///", "no file path"),
        ("postgresql://u:s3cret@h:99999/db", "Port out of range"),
        ("postgresql://u:s3cret@h:5432", "no database name"),
        ("postgresql:///db", "no host"),
        ("nonsense", "no scheme"),
    ],
)
def test_bad_urls_are_named_with_the_password_masked(url: str, says: str) -> None:
    with pytest.raises(StoreURLError) as caught:
        open_history_store(url)
    message = str(caught.value)
    assert says in message
    assert "s3cret" not in message
    assert isinstance(caught.value, StoreError)


def test_mask_url_hides_passwords_everywhere() -> None:
    assert mask_url("postgresql://teller:p%40ss@db:5432/g") == "postgresql://teller:***@db:5432/g"
    assert (
        mask_url("postgresql://db/g?user=u&password=x1") == "postgresql://db/g?user=u&password=***"
    )
    assert mask_url("postgresql://teller@db/g") == "postgresql://teller@db/g"


def test_memory_and_sqlite_open_the_embedded_stores(tmp_path: Path) -> None:
    assert isinstance(open_history_store("memory:"), InMemoryHistoryStore)
    store = open_history_store(f"sqlite:///{tmp_path}/h.db")
    assert isinstance(store, SQLiteHistoryStore)
    store.close()
    assert isinstance(open_session_store(), InMemorySessionStore)
    audit = open_audit_store(f"sqlite:///{tmp_path}/a.db")
    audit.close()
    with pytest.raises(StoreURLError, match="durable"):
        open_audit_store("memory:")


def test_sqlite_in_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"history store sqlite:///.*nowhere"):
        open_history_store(f"sqlite:///{tmp_path}/nowhere/h.db")


def test_a_server_that_is_down_is_named_quickly() -> None:
    url = f"postgresql://teller:s3cret@127.0.0.1:{free_port()}/guardrail"
    for opener in (open_history_store, open_session_store, open_audit_store):
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            opener(url, timeout_s=2)  # type: ignore[operator]
        message = str(caught.value)
        assert "postgresql://teller:***@127.0.0.1" in message
        assert "s3cret" not in message
        assert "refused" in message.lower() or "connect" in message.lower()
        assert time.monotonic() - started < 15


def test_a_database_that_does_not_exist_is_named(postgres_url: str) -> None:
    url = postgres_url.rpartition("/")[0] + "/no_such_db"
    with pytest.raises(StoreError, match=r'no_such_db.*does not exist|database "no_such_db"'):
        open_history_store(url, timeout_s=3)
