"""The Java 17 example client (java.net.http only) against a real server process."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from serving import ROOT, Server

from guardrail.audit import SessionStepRecord, read_records


def _jdk() -> tuple[str, str]:
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        message = "a JDK (java and javac) is needed for the Java client test"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs one with apt-get")
        pytest.skip(message)
    return javac, java


@pytest.mark.slow
def test_java_client_screens_and_walks_a_session(server: Server, tmp_path: Path) -> None:
    javac, java = _jdk()
    source = ROOT / "examples/java/GuardrailClient.java"
    compiled = subprocess.run(
        [javac, "--release", "17", "-d", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert compiled.returncode == 0, compiled.stderr
    run = subprocess.run(
        [
            java,
            "-cp",
            str(tmp_path),
            "GuardrailClient",
            server.url,
            server.keys["teller"],
            server.keys["supervisor"],
            str(ROOT / "examples/events/elderly_cash_on_phone.json"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "screen: action=report hits=" + lines[0].split("hits=")[1]
    assert "teller approve refused: 403" in lines
    assert any(line.startswith("supervisor_reject: state=decided") for line in lines)
    assert lines[-1] == "close: state=closed closed=true"
    session_id = lines[1].split("session=")[1].split()[0]
    steps = [
        r.payload.step.value
        for r in read_records(server.audit_path)
        if r.case_id == session_id and isinstance(r.payload, SessionStepRecord)
    ]
    assert steps[-3:] == ["supervisor_rejected", "outcome_recorded", "closed"]
