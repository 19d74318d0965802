"""Lint reads the pack's watchlist files: bad ones are refused with file and line (#9, 4)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from guardrail.lang.errors import Severity
from guardrail.lang.pack import lint_pack
from support import EXAMPLE_EVENT, STARTER, run_cli

LIST = "data/involved_accounts.csv"


def _pack(tmp_path: Path) -> Path:
    pack = tmp_path / "pack"
    shutil.copytree(STARTER, pack)
    return pack


@pytest.mark.parametrize(
    ("content", "problem", "line"),
    [
        (b"", "no header row", 1),
        (b"6222000011112222\n6222000011113333\n", "header has no 'value' column", 1),
        (b"value\n6222\xff\xfe0001\n", "not UTF-8 text", 2),
    ],
    ids=["empty", "headerless", "not-utf8"],
)
def test_malformed_watchlist_file_fails_lint_and_screen(
    tmp_path: Path, content: bytes, problem: str, line: int
) -> None:
    pack = _pack(tmp_path)
    (pack / LIST).write_bytes(content)
    errors = [d for d in lint_pack(pack) if d.severity is Severity.ERROR]
    assert len(errors) == 1
    assert errors[0].location.file.endswith("involved_accounts.csv")
    assert errors[0].location.line == line
    assert problem in errors[0].message and "involved_accounts" in errors[0].message
    result = run_cli("screen", "--pack", str(pack), str(EXAMPLE_EVENT))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"involved_accounts.csv:{line}:" in result.stderr


def test_watchlist_path_outside_the_pack_is_refused(tmp_path: Path) -> None:
    pack = _pack(tmp_path)
    context = pack / "context.yaml"
    context.write_text(
        context.read_text(encoding="utf-8").replace(f"path: {LIST}", "path: /etc/passwd"),
        encoding="utf-8",
    )
    (error,) = [d for d in lint_pack(pack) if d.severity is Severity.ERROR]
    assert error.location.file.endswith("context.yaml")
    assert "outside the pack folder" in error.message
    (pack / "escape.csv").write_text("value\n1\n", encoding="utf-8")
    context.write_text(
        context.read_text(encoding="utf-8").replace("/etc/passwd", "../pack/../../x.csv"),
        encoding="utf-8",
    )
    assert any("outside the pack folder" in d.message for d in lint_pack(pack))


def test_header_only_watchlist_is_a_warning(tmp_path: Path) -> None:
    pack = _pack(tmp_path)
    (pack / LIST).write_text("# version: 3\nvalue,note\n", encoding="utf-8")
    (warning,) = lint_pack(pack)
    assert warning.severity is Severity.WARNING
    assert "no entries" in warning.message
