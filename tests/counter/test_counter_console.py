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


def test_console_shows_instructions_obligations_and_the_whole_notice() -> None:
    result = run("--script", str(SCRIPTS / "case_003.yaml"), "--pack", str(BASELINE))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    flat = "".join(ch for ch in out if not ch.isspace() and ch not in "│┃")  # table wrapping
    assert "柜员指引" in out and "callthepairedpolicestation" in flat
    assert "合规义务 Obligations: 签署风险告知书 signed_risk_notice" in out
    # the whole notice, its last sentence included, in both languages
    assert "本人已知悉上述风险" in flat and "Ihavebeentoldoftheserisks" in flat
    assert "客户签字 Customer's signature" in out


def test_console_runs_from_a_checkout_without_an_installed_package(tmp_path: Path) -> None:
    # a bare interpreter (no site-packages of ours) finds guardrail in the checkout's src/
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONIOENCODING": "utf-8",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if "site-packages" in p),
    }
    result = subprocess.run(
        [sys.executable, "-I", str(CONSOLE), "--help"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--script" in result.stdout


def test_interactive_choices_show_chinese_and_take_a_number_or_a_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util
    import io

    from rich.console import Console

    spec = importlib.util.spec_from_file_location("teller_console", CONSOLE)
    assert spec is not None and spec.loader is not None
    console_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(console_module)
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    answers = iter(["9", "2", "not_known"])
    monkeypatch.setattr("builtins.input", lambda *_: next(answers))
    monkeypatch.setattr(console, "input", lambda *_a, **_k: next(answers))
    chosen = console_module.choose(console, "选择 Choose", ["investment", "medical", "other"])
    assert chosen == "medical"
    text = out.getvalue()
    assert "投资理财 investment" in text and "医疗 medical" in text
    assert "请输入序号或代码" in text  # "9" is out of range
    assert console_module.choose(console, "verdict", ["yes", "no", "not_known"]) == "not_known"
    assert "尚不确定 not_known" in out.getvalue()
