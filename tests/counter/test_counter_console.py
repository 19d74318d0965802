"""The teller console runs end to end in scripted mode, against the starter pack and (when it
is there) the baseline pack, including a restart in the middle of a session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from counter_factory import BASELINE, CONSOLE, FULL, ROOT, STARTER

SCRIPTS = Path(__file__).resolve().parent / "scripts"
PACKS = [STARTER, FULL] + ([BASELINE] if (BASELINE / "pack.yaml").is_file() else [])


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, str(CONSOLE), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def last_json(stdout: str) -> dict[str, object]:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_console_script_003_reports_to_police(pack: Path) -> None:
    result = run("--script", str(SCRIPTS / "case_003.yaml"), "--pack", str(pack), "--json-record")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "按预期拒绝 refused as expected" in result.stdout
    assert "结果 Outcome: police_notified" in result.stdout
    record = last_json(result.stdout)
    assert record["outcome"] == "police_notified" and record["prevented"] is True
    assert record["final_action"] in ("intercept", "report")


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_console_script_001_executes_with_at_most_a_notice(pack: Path) -> None:
    result = run("--script", str(SCRIPTS / "case_001.yaml"), "--pack", str(pack), "--json-record")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "结果 Outcome: executed" in result.stdout
    record = last_json(result.stdout)
    assert record["highest_action"] in ("proceed", "notice")


def test_console_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "session.json"
    script = str(SCRIPTS / "case_003.yaml")
    first = run(
        "--script", script, "--pack", str(STARTER), "--state", str(state), "--stop-after", "4"
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Stopped after step 4" in first.stdout
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["next_step"] == 4 and saved["session"]["state"] == "questioning"
    second = run("--script", script, "--pack", str(STARTER), "--state", str(state), "--json-record")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Resumed after step 4" in second.stdout
    assert last_json(second.stdout)["outcome"] == "police_notified"


def test_console_reports_an_unexpected_refusal(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    text = (SCRIPTS / "case_003.yaml").read_text(encoding="utf-8")
    script.write_text(text.replace("  - expect_refused: execute\n", "  - execute\n"), "utf-8")
    result = run("--script", str(script), "--pack", str(STARTER))
    assert result.returncode == 2
    assert "拒绝 REFUSED" in result.stdout and "override" in result.stdout
