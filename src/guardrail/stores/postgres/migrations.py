"""Schema versions in PostgreSQL: each store (component) owns a list of forward migrations.

``guardrail_schema`` holds one row per component with the number of migrations applied. Opening
a store applies the missing ones in one transaction under an advisory lock (two processes
starting at once do not both migrate) and refuses a schema newer than the code.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from guardrail.errors import StoreError


class SchemaTooNew(StoreError):
    """The database was written by a newer guardrail; this code will not touch it."""


_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS guardrail_schema (
    component text PRIMARY KEY,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""


def migrate(
    conn: psycopg.Connection[tuple[object, ...]],
    component: str,
    migrations: Sequence[str],
    where: str,
) -> int:
    """Bring ``component``'s schema up to ``len(migrations)``; returns that version.
    ``where`` (the masked URL) names the store in errors."""
    target = len(migrations)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('guardrail_schema'))")
        conn.execute(_VERSION_TABLE)
        row = conn.execute(
            "SELECT version FROM guardrail_schema WHERE component = %s FOR UPDATE", (component,)
        ).fetchone()
        current = 0 if row is None else int(str(row[0]))
        if current > target:
            raise SchemaTooNew(
                f"{where}: the {component} schema is at version {current}, newer than this "
                f"guardrail understands ({target}); upgrade guardrail before using this database"
            )
        for step in migrations[current:]:
            conn.execute(step.encode(), prepare=False)  # several statements: never prepared
        if row is None:
            conn.execute(
                "INSERT INTO guardrail_schema (component, version) VALUES (%s, %s)",
                (component, target),
            )
        elif current != target:
            conn.execute(
                "UPDATE guardrail_schema SET version = %s, updated_at = now() WHERE component = %s",
                (target, component),
            )
    return target
