"""The throwaway server the PostgreSQL tests run against."""

from __future__ import annotations

import psycopg


def test_server_answers_and_databases_are_separate(postgres_url: str, postgres_db_url: str) -> None:
    assert "127.0.0.1" in postgres_url
    with psycopg.connect(postgres_db_url) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
        version = conn.execute("SHOW server_version_num").fetchone()
        assert version is not None and int(version[0]) >= 120000
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT to_regclass('t')").fetchone() == (None,)
