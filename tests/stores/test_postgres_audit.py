"""The audit log on PostgreSQL: the same chain, verification and reports as on SQLite."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import psycopg
import pytest

from guardrail.audit import AuditKeys, AuditLog
from guardrail.cli import main
from guardrail.errors import StoreError
from guardrail.guard import Guard, parse_event
from guardrail.lang.loader import load_pack
from guardrail.stores import open_audit_log, open_audit_store
from guardrail.stores.postgres.migrations import SchemaTooNew

REPO = Path(__file__).resolve().parents[2]


def _keys() -> AuditKeys:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AuditKeys.insecure_development_keys()


def _fill(log: AuditLog, count: int) -> None:
    guard = Guard(load_pack(REPO / "rules" / "cn-baseline"))
    text = (REPO / "examples" / "events" / "elderly_cash_on_phone.json").read_text()
    base = parse_event(text)
    for index in range(count):
        event = base.model_copy(update={"event_id": f"evt-{index}"})
        log.log_decision(event, guard.screen(event), case_id=event.event_id)


def test_cli_verify_and_report_on_postgresql_match_sqlite(
    postgres_db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sqlite_path = tmp_path / "audit.sqlite"
    for location in (postgres_db_url, str(sqlite_path)):
        log = open_audit_log(location, _keys(), checkpoint_every=5)
        _fill(log, 12)
        log.close()
    reports = []
    for location in (postgres_db_url, str(sqlite_path)):
        assert main(["audit", "verify", location, "--insecure-dev-key"]) == 0
        assert "OK, 12 records" in capsys.readouterr().out
        assert main(["audit", "report", location, "--by", "rule", "--format", "csv"]) == 0
        reports.append(capsys.readouterr().out)
    assert reports[0] == reports[1]
    assert "reg-large-cash-withdrawal" in reports[0]


def test_tampering_in_the_database_is_found(postgres_db_url: str) -> None:
    log = open_audit_log(postgres_db_url, _keys())
    _fill(log, 4)
    log.close()
    with psycopg.connect(postgres_db_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("DELETE FROM guardrail_audit_records WHERE seq = 2")
        # someone with the rights disables the guard and edits a record
        conn.execute("ALTER TABLE guardrail_audit_records DISABLE TRIGGER USER")
        conn.execute("UPDATE guardrail_audit_records SET payload = payload || ' ' WHERE seq = 2")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "guardrail.cli",
            "audit",
            "verify",
            postgres_db_url,
            "--insecure-dev-key",
        ],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "FAILED at seq 2" in done.stdout


def test_cli_errors_name_the_url_and_never_print_a_traceback(
    postgres_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from postgres_server import free_port

    down = f"postgresql://auditor:topsecret@127.0.0.1:{free_port()}/audit"
    assert main(["audit", "verify", down, "--no-key"]) == 2
    err = capsys.readouterr().err
    assert "postgresql://auditor:***@127.0.0.1" in err and "topsecret" not in err
    assert "Traceback" not in err
    assert main(["audit", "report", postgres_db_url]) == 2  # no log in that database
    assert "no audit log in this database" in capsys.readouterr().err
    assert main(["audit", "verify", "mysql://x@y/z", "--no-key"]) == 2
    assert "unknown scheme" in capsys.readouterr().err


def test_a_newer_audit_schema_is_refused(postgres_db_url: str) -> None:
    open_audit_store(postgres_db_url).close()
    with psycopg.connect(postgres_db_url, autocommit=True) as conn:
        conn.execute("UPDATE guardrail_schema SET version = 7 WHERE component = 'audit'")
    with pytest.raises(SchemaTooNew, match="audit schema is at version 7"):
        open_audit_store(postgres_db_url)
    assert isinstance(SchemaTooNew("x"), StoreError)
