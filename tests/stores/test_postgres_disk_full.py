"""A full disk under PostgreSQL: a clear error naming the store, nothing acknowledged lost.

The tables are moved to a tablespace on a tiny tmpfs (needs root and permission to mount; the
test skips where the filesystem cannot be simulated)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from context.context_factory import make_event
from guardrail.audit import AuditKeys
from guardrail.context import HistoryRecord
from guardrail.errors import StoreError
from guardrail.guard import Guard
from guardrail.lang.loader import load_pack
from guardrail.stores import open_audit_log, open_history_store

REPO = Path(__file__).resolve().parents[2]
BASE = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture
def small_tablespace(postgres_db_url: str) -> Iterator[str]:
    """The name of a 1 MiB tablespace; the tmpfs is unmounted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="guardrail-full-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        root.rmdir()
        pytest.skip(f"cannot mount a tmpfs to fill: {mounted.stderr.strip()}")
    name = f"full_{root.name.replace('-', '_')[-8:]}"
    try:
        shutil.chown(root, user="postgres")
        with psycopg.connect(postgres_db_url, autocommit=True) as conn:
            conn.execute(f"CREATE TABLESPACE {name} LOCATION '{root}'")
        yield name
    finally:
        with psycopg.connect(postgres_db_url, autocommit=True) as conn:
            for table in ("guardrail_history", "guardrail_audit_records"):
                conn.execute(
                    f"DO $$ BEGIN IF to_regclass('{table}') IS NOT NULL THEN "
                    f"EXECUTE 'DROP TABLE {table} CASCADE'; END IF; END $$"
                )
            conn.execute(f"DROP TABLESPACE IF EXISTS {name}")
        subprocess.run(["umount", str(root)], check=False)
        root.rmdir()


def _move(url: str, table: str, tablespace: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {table} SET TABLESPACE {tablespace}")
        for (index,) in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,)
        ).fetchall():
            conn.execute(f"ALTER INDEX {index} SET TABLESPACE {tablespace}")


def test_history_on_a_full_disk(postgres_db_url: str, small_tablespace: str) -> None:
    store = open_history_store(postgres_db_url)
    _move(postgres_db_url, "guardrail_history", small_tablespace)
    acknowledged = 0
    error: StoreError | None = None
    for batch in range(400):
        records = [
            HistoryRecord.from_event(
                make_event(f"f{batch}-{i}", BASE + dt.timedelta(seconds=batch * 10 + i), "1")
            )
            for i in range(10)
        ]
        try:
            store.record_many(records)
        except StoreError as exc:
            error = exc
            break
        acknowledged += len(records)
    assert error is not None, "the tablespace never filled up"
    message = str(error)
    assert "history store postgresql://postgres@127.0.0.1" in message
    assert "cannot record history" in message and "No space left on device" in message
    assert len(store) == acknowledged  # the failed batch left nothing behind
    guard = Guard(load_pack(REPO / "rules" / "cn-baseline"), history=store)
    decision = guard.screen(make_event("after", BASE + dt.timedelta(hours=2), "30000"))
    assert not decision.failures  # reads still work; screening goes on
    store.close()


def test_audit_log_on_a_full_disk_keeps_a_valid_chain(
    postgres_db_url: str, small_tablespace: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keys = AuditKeys.insecure_development_keys()
    log = open_audit_log(postgres_db_url, keys)
    _move(postgres_db_url, "guardrail_audit_records", small_tablespace)
    guard = Guard(load_pack(REPO / "rules" / "cn-baseline"))
    event = make_event("a", BASE, "30000")
    record = log.decision_record(event, guard.screen(event), case_id="case-a")
    acknowledged: list[int] = []
    error: StoreError | None = None
    for _ in range(300):
        try:
            acknowledged.extend(log.append([record] * 20))
        except StoreError as exc:
            error = exc
            break
    assert error is not None, "the tablespace never filled up"
    assert "No space left on device" in str(error)
    assert "audit log postgresql://postgres@127.0.0.1" in str(error)
    report = log.verify()
    assert report.ok, report.problem
    assert report.records == len(acknowledged)
    log.close()
