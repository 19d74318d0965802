"""Where durable-rules cannot load (Python 3.13 and newer), the reference engine still screens
and asking for the durable backend is a clear GuardrailError. Runs on every interpreter: on
one where durable-rules loads, its import is blocked to stand for 3.13."""

from __future__ import annotations

import subprocess
import sys

import pytest

from guardrail import Action, Guard, GuardrailError, parse_event
from guardrail.engine import BackendUnavailable
from support import ROOT, STARTER, example_event_data

BLOCK_DURABLE = (
    "import sys; sys.modules['durable_rules_engine'] = None; "
    "sys.modules.pop('guardrail.engine.durable_backend', None)"
)


@pytest.fixture
def without_durable_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "durable_rules_engine", None)  # import fails as on 3.13
    monkeypatch.delitem(sys.modules, "guardrail.engine.durable_backend", raising=False)


@pytest.mark.usefixtures("without_durable_rules")
def test_the_reference_engine_screens_without_durable_rules() -> None:
    decision = Guard.from_path(STARTER).screen(parse_event(example_event_data()))
    assert decision.action >= Action.REVIEW and not decision.failures


@pytest.mark.usefixtures("without_durable_rules")
def test_asking_for_the_durable_backend_is_a_clear_error() -> None:
    with pytest.raises(BackendUnavailable, match=r"durable-rules.*reference backend") as raised:
        Guard.from_path(STARTER, backend="durable_rules")
    assert isinstance(raised.value, GuardrailError)
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in str(raised.value)


def test_the_cli_names_the_problem_in_one_line_without_a_traceback() -> None:
    event = ROOT / "examples" / "events" / "elderly_cash_on_phone.json"
    code = (
        f"{BLOCK_DURABLE}; from guardrail.cli import main; "
        f"sys.exit(main(['screen', '--pack', {str(STARTER)!r}, '--backend', 'durable_rules', "
        f"{str(event)!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "--backend" in result.stderr
