"""Issue 13: snoozes and breaker resets from the command line are authorised and audited."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from guardrail.audit.keys import AuditKeys
from guardrail.audit.log import AuditLog
from guardrail.audit.records import ControlRecord
from guardrail.cli import main
from guardrail.model import Action
from guardrail.policy.sqlite_stores import SQLiteBreakerStore
from guardrail.policy.stores import BreakerState
from support import STARTER

SECRET = "policy-cli-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDRAIL_AUDIT_KEY", SECRET)
    monkeypatch.delenv("GUARDRAIL_APPROVERS", raising=False)


def _controls(audit: Path) -> list[ControlRecord]:
    with AuditLog.open(audit, keys=AuditKeys.from_env()) as log:
        return [r.payload for r in log.records() if isinstance(r.payload, ControlRecord)]


def test_snooze_add_list_remove_is_audited_without_the_raw_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, audit = tmp_path / "policy.sqlite", tmp_path / "audit.sqlite"
    until = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    common = ["--store", str(store), "--audit", str(audit), "--by", "officer-7"]
    add = ["snooze", "add", str(STARTER), "elderly-large-cash", "--customer", "C-88120931"]
    assert main([*add, "--until", until, "--reason", "cleared, ticket 42", *common]) == 0
    assert "snoozed for this customer until" in capsys.readouterr().out
    assert main(["snooze", "list", "--store", str(store)]) == 0
    listing = capsys.readouterr().out
    assert "elderly-large-cash" in listing and "…0931" in listing and "C-88120931" not in listing
    refused = ["snooze", "add", str(STARTER), "payee-involved-account", "--payee", "62220000"]
    assert main([*refused, "--until", until, "--reason", "r", *common]) == 2
    assert "reads a watchlist" in capsys.readouterr().err
    remove = ["snooze", "remove", "elderly-large-cash", "--customer", "C-88120931"]
    assert main([*remove, "--reason", "no longer needed", *common]) == 0
    controls = _controls(audit)
    assert [c.control.value for c in controls] == ["snooze_added", "snooze_removed"]
    assert all(c.actor == "officer-7" and c.entity == "customer" for c in controls)
    assert all(c.entity_ref and "C-88120931" not in c.entity_ref for c in controls)


def test_breaker_reset_needs_an_authorised_person_and_is_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path, audit = tmp_path / "policy.sqlite", tmp_path / "audit.sqlite"
    store = SQLiteBreakerStore(store_path)
    moment = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    store.trip(BreakerState("elderly-large-cash", moment, 0.4, 200, 80, Action.REVIEW))
    store.close()
    monkeypatch.setenv("GUARDRAIL_APPROVERS", "head-of-compliance")
    reset = ["breaker", "reset", "elderly-large-cash", "--reason", "threshold fixed"]
    where = ["--store", str(store_path), "--audit", str(audit)]
    assert main([*reset, "--by", "teller-1", *where]) == 2
    assert "not an authorised approver" in capsys.readouterr().err
    assert "elderly-large-cash" in SQLiteBreakerStore(store_path).tripped(["elderly-large-cash"])
    assert main([*reset, "--by", "head-of-compliance", *where]) == 0
    assert "was tripped at 2025-03-01" in capsys.readouterr().out
    assert SQLiteBreakerStore(store_path).tripped(["elderly-large-cash"]) == {}
    (control,) = _controls(audit)
    assert control.control.value == "breaker_reset" and control.actor == "head-of-compliance"
    assert control.reason == "threshold fixed"


def test_a_snooze_in_postgresql_reaches_screening_in_another_process(
    postgres_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    from support import EXAMPLE_EVENT, ROOT

    until = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    add = ["snooze", "add", str(STARTER), "elderly-large-cash", "--customer", "C-88120931"]
    where = ["--store", postgres_db_url, "--audit", postgres_db_url, "--by", "officer-7"]
    assert main([*add, "--until", until, "--reason", "cleared", *where]) == 0
    capsys.readouterr()
    screened = subprocess.run(
        [
            sys.executable,
            "-m",
            "guardrail.cli",
            "screen",
            "--pack",
            str(STARTER),
            "--policy-store",
            postgres_db_url,
            str(EXAMPLE_EVENT),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert screened.returncode == 0, screened.stderr
    assert "snooze: rule elderly-large-cash snoozed for this customer" in screened.stdout
