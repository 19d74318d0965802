"""CLI commands that open a store take the same URLs: screen and replay --history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardrail.cli import main

REPO = Path(__file__).resolve().parents[2]
EVENT = REPO / "examples" / "events" / "elderly_cash_on_phone.json"


def test_screen_with_a_history_url(
    postgres_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for url in (postgres_db_url, f"sqlite:///{tmp_path}/h.db", "memory:"):
        assert main(["screen", "--history", url, "--json", str(EVENT)]) == 0
        assert json.loads(capsys.readouterr().out)["action"] == "report"


def test_screen_with_a_bad_history_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["screen", "--history", "postgresql://u:pw@127.0.0.1:1/x", str(EVENT)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("guardrail screen: --history: cannot connect to history store")
    assert "u:***@" in err and ":pw@" not in err and "Traceback" not in err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_replay_on_postgresql_equals_replay_in_memory_and_is_repeatable(
    postgres_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = tmp_path / "events.jsonl"
    assert main(["simulate", "--n", "300", "--seed", "5", "--out", str(stream)]) == 0
    reports = []
    for url in ("memory:", postgres_db_url, postgres_db_url):
        capsys.readouterr()
        code = main(
            [
                "replay",
                "rules/cn-baseline",
                str(stream),
                "--json",
                "--no-progress",
                "--history",
                url,
            ]
        )
        assert code == 0
        report = json.loads(capsys.readouterr().out)
        for timing in ("seconds", "events_per_second", "screen_p50_us", "screen_p99_us"):
            report.pop(timing)
        reports.append(report)
    assert reports[0] == reports[1] == reports[2]
