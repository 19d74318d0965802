"""Fixtures for audit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_factory import SECRET

from guardrail.audit import AuditKeys, AuditLog


@pytest.fixture
def keys() -> AuditKeys:
    return AuditKeys.from_secret(SECRET)


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def log(log_path: Path, keys: AuditKeys) -> Iterator[AuditLog]:
    audit = AuditLog.open(log_path, keys=keys, checkpoint_every=4)
    yield audit
    audit.close()
