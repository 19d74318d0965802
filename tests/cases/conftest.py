"""Fixtures for case-ledger and period-report tests: a small simulated quarter, built once."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from case_support import PACK, SECRET

from guardrail.audit import AuditKeys, AuditLog
from guardrail.auditsim import SimulationSummary, simulate_audit_log
from guardrail.cases import CaseLedger
from guardrail.guard import Guard
from guardrail.sim.generator import generate


@pytest.fixture(scope="session")
def guard() -> Guard:
    return Guard.from_path(PACK)


@pytest.fixture
def keys() -> AuditKeys:
    return AuditKeys.from_secret(SECRET)


@pytest.fixture
def ledger(tmp_path: Path, keys: AuditKeys) -> Iterator[CaseLedger]:
    log = AuditLog.open(tmp_path / "audit.db", keys=keys, checkpoint_every=5)
    yield CaseLedger.for_sqlite(log)
    log.close()


@pytest.fixture(scope="session")
def quarter(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulationSummary]:
    """About three months of a simulated bank (3,600 events, 40 a day), seed 0."""
    path = tmp_path_factory.mktemp("quarter") / "quarter.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        guard = Guard.from_path(PACK)
    summary = simulate_audit_log(
        guard,
        generate(3600, 0.02, 0, per_day=40),
        path,
        AuditKeys.from_secret(SECRET),
        seed=0,
        service_complaint_rate=0.02,
    )
    return path, summary
