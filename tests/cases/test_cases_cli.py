"""``guardrail cases ...`` and ``guardrail simulate --pack --audit``: the same operations as
the Python API, exit 2 with one line naming the problem on bad input, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from case_support import PACK, SECRET

pytestmark = pytest.mark.slow
KEY = SECRET.decode()


def _run(*args: str, key: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("GUARDRAIL_AUDIT_KEY", None)
    if key:
        env["GUARDRAIL_AUDIT_KEY"] = KEY
    return subprocess.run(
        [sys.executable, "-m", "guardrail.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = tmp_path_factory.mktemp("cli") / "month.db"
    done = _run(
        "simulate",
        "--pack",
        str(PACK),
        "--audit",
        str(log),
        "--n",
        "1500",
        "--days",
        "10",
        "--seed",
        "1",
        "--fraud-rate",
        "0.03",
    )
    assert done.returncode == 0, done.stderr
    assert "records:" in done.stderr and "cases" in done.stderr
    return log


def test_simulated_log_verifies_and_holds_every_kind_of_record(small_log: Path) -> None:
    verified = _run("audit", "verify", str(small_log))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(_run("audit", "report", str(small_log), "--format", "json").stdout)
    t = report["total"]
    assert t["screened"]["count"] > 1000 and t["no_outcome"] == 0
    assert t["executed"]["count"] > 0 and t["intercepted"]["count"] > 0
    assert t["cases"]["opened"] > 0 and t["complaints"]["received"] > 0
    assert t["fraud_confirmed"] + t["not_fraud"] > 0
    listed = _run("cases", "list", str(small_log), "--status", "all", "--json", key=False)
    assert listed.returncode == 0
    types = {c["case_type"] for c in json.loads(listed.stdout)}
    assert {"decision", "complaint"} <= types


def test_a_complaint_walked_through_the_cli(small_log: Path, tmp_path: Path) -> None:
    log = tmp_path / "walk.db"
    log.write_bytes(small_log.read_bytes())
    opened = _run(
        "cases",
        "open",
        str(log),
        "--type",
        "friction_complaint",
        "--by",
        "desk",
        "--text",
        "held for 40 minutes",
        "--branch",
        "BR001",
        "--party",
        "complainant:name=王芳,phone=13912345678",
        "--json",
    )
    assert opened.returncode == 0, opened.stderr
    case = json.loads(opened.stdout)["case_id"]
    assert case.startswith("FRC-")
    evidence = tmp_path / "recording-note.txt"
    evidence.write_text("supervisor's note of the call", encoding="utf-8")
    for args in (
        ("assign", str(log), case, "--to", "CO02", "--by", "HQ"),
        ("note", str(log), case, "--text", "apologised by phone", "--by", "CO02"),
        ("attach", str(log), case, str(evidence), "--by", "CO02"),
        ("verdict", str(log), case, "not_fraud", "--by", "CO02"),
        ("close", str(log), case, "--resolution", "complaint_upheld", "--by", "CO02"),
    ):
        done = _run("cases", *args)
        assert done.returncode == 0, (args, done.stderr)
    shown = json.loads(_run("cases", "show", str(log), case, "--json", key=False).stdout)
    assert shown["status"] == "closed" and shown["verdict"] == "not_fraud"
    assert [e["entry"] for e in shown["entries"]] == [
        "opened",
        "assigned",
        "note",
        "evidence_attached",
        "verdict",
        "closed",
    ]
    assert "王芳" not in log.read_bytes().decode("utf-8", "replace")
    assert _run("cases", "verify", str(log)).returncode == 0
    stored = next((log.parent / (log.name + ".evidence")).rglob("*"), None)
    assert stored is not None
    blob = next(p for p in (log.parent / (log.name + ".evidence")).rglob("*") if p.is_file())
    blob.chmod(0o644)
    blob.write_text("edited", encoding="utf-8")
    tampered = _run("cases", "verify", str(log))
    assert tampered.returncode == 1 and "modified" in tampered.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cases", "note", "{log}", "NOPE", "--text", "x", "--by", "a"), "no such case"),
        (("cases", "open", "{log}", "--type", "complaint", "--by", "bad id"), "by"),
        (("cases", "close", "{log}", "X", "--resolution", "done", "--by", "a"), "invalid choice"),
        (("cases", "list", "{missing}"), "no audit log"),
        (("audit", "report", "{log}", "--by", "month,brnch"), "unknown grouping 'brnch'"),
        (("simulate", "--audit", "{new}"), "--audit needs --pack"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    small_log: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    filled = [
        a.format(log=small_log, missing=tmp_path / "none.db", new=tmp_path / "n.db") for a in args
    ]
    done = _run(*filled)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_writing_without_a_key_is_refused(small_log: Path) -> None:
    done = _run("cases", "open", str(small_log), "--type", "manual", "--by", "a", key=False)
    assert done.returncode == 2 and "GUARDRAIL_AUDIT_KEY" in done.stderr
