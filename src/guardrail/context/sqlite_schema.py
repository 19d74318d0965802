"""Schema versions in a SQLite file: each store (component) owns a list of forward migrations.

Used by every SQLite store (history here; sessions in ``guardrail.stores``). ``guardrail_schema``
holds one row per component with the number of migrations applied; opening a store applies the
missing ones in one ``BEGIN IMMEDIATE`` transaction and refuses a schema newer than the code.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from guardrail.errors import StoreError

# A migration is SQL text, or a function of the connection (for conditional changes).
Migration = str | Callable[[sqlite3.Connection], None]


class SQLiteSchemaTooNew(StoreError):
    """The file was written by a newer guardrail; this code will not touch it."""


def _statements(script: str) -> list[str]:
    """``script`` split into complete statements (``executescript`` would commit first)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending)
            pending = ""
    if pending.strip():
        statements.append(pending)
    return statements


def schema_version(conn: sqlite3.Connection, component: str) -> int:
    """The component's schema version without writing anything (0: never migrated)."""
    known = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'guardrail_schema'"
    ).fetchone()
    if known is None:
        return 0
    row = conn.execute(
        "SELECT version FROM guardrail_schema WHERE component = ?", (component,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def refuse_newer(conn: sqlite3.Connection, component: str, known: int, where: str) -> None:
    """Raise :class:`SQLiteSchemaTooNew` if the file's schema is newer than ``known``
    (for read-only opens, which must not migrate)."""
    current = schema_version(conn, component)
    if current > known:
        raise SQLiteSchemaTooNew(
            f"{where}: the {component} schema is at version {current}, newer than this "
            f"guardrail understands ({known}); upgrade guardrail before using this file"
        )


def migrate_sqlite(
    conn: sqlite3.Connection, component: str, migrations: Sequence[Migration], where: str
) -> int:
    """Bring ``component``'s schema up to ``len(migrations)`` (``conn`` in autocommit mode,
    ``isolation_level=None``); returns that version. ``where`` names the file in errors."""
    target = len(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS guardrail_schema"
            " (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        row = conn.execute(
            "SELECT version FROM guardrail_schema WHERE component = ?", (component,)
        ).fetchone()
        current = 0 if row is None else int(row[0])
        if current > target:
            raise SQLiteSchemaTooNew(
                f"{where}: the {component} schema is at version {current}, newer than this "
                f"guardrail understands ({target}); upgrade guardrail before using this file"
            )
        for step in migrations[current:]:
            if isinstance(step, str):
                for statement in _statements(step):
                    conn.execute(statement)
            else:
                step(conn)
        conn.execute(
            "INSERT INTO guardrail_schema VALUES (?, ?) ON CONFLICT (component)"
            " DO UPDATE SET version = excluded.version",
            (component, target),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return target
