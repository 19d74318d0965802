"""The README's Python examples run as written, from the repository root; the package root
exports exactly the public names it documents."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import guardrail
from support import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text("utf-8"), re.S)


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int) -> None:
    if BLOCKS[index].startswith("# needs:"):  # a server the test does not start
        compile(BLOCKS[index], f"README.md python block {index}", "exec")
        return
    result = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr


def test_the_public_api_is_importable_from_the_root() -> None:
    from guardrail import (  # noqa: F401 - the import is the test
        Action,
        AuditLog,
        CounterSession,
        Decision,
        Event,
        Guard,
        GuardrailError,
        parse_event,
    )

    assert set(guardrail.__all__) == set(guardrail._EXPORTS)
    for name in guardrail.__all__:
        assert getattr(guardrail, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'screen'"):
        guardrail.screen  # noqa: B018


def test_every_public_exception_derives_from_guardrail_error() -> None:
    for name in guardrail.__all__:
        value = getattr(guardrail, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, guardrail.GuardrailError), name


def test_subpackages_do_not_export_cli_functions() -> None:
    import guardrail.audit
    import guardrail.counter
    import guardrail.engine
    import guardrail.lang

    for package in (guardrail.audit, guardrail.counter, guardrail.engine, guardrail.lang):
        exported = set(package.__all__)
        assert not {name for name in exported if name.endswith("_main")}, package.__name__
        assert "add_audit_subcommands" not in exported
