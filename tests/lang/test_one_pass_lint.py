"""Issue 13: every mistake of a rule file in one lint run, plain words, stray YAML reported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guardrail.cli import main

LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")

FIVE_MISTAKES = """\
windows:
  - name: cash_today
    aggregate: sum
    measure: amuont
    span: same_day
rules:
  - id: no-title
    title_en: Missing its Chinese title
    source: a test
    condition: amount >= 1
    action: review
  - id: bad-field
    title_zh: 字段
    title_en: Misspelt field
    source: a test
    condition: customer.agee >= 60
    action: review
  - id: bad-type
    title_zh: 类型
    title_en: Type mismatch
    source: a test
    condition: amount >= "lots"
    action: review
  - id: bad-field
    title_zh: 重复
    title_en: Duplicate id
    source: a test
    condition: amount >= 2
    action: review
"""


def _pack(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pack.yaml").write_text('pack:\n  name: t\n  version: "1"\n', encoding="utf-8")
    (folder / "rules.yaml").write_text(text, encoding="utf-8")
    return folder


def _lint(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    status = main(["lint", str(folder)])
    out = capsys.readouterr().out
    return status, [line for line in out.splitlines() if line]


def test_schema_condition_enum_and_duplicate_errors_all_come_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = _lint(_pack(tmp_path, FIVE_MISTAKES), capsys)
    assert status == 1
    assert len(lines) == 5, lines
    parsed = [LOCATED.match(line) for line in lines]
    assert all(parsed), lines
    positions = [(int(m["line"]), int(m["col"])) for m in parsed if m]
    assert positions == sorted(positions)  # sorted by file and line
    text = "\n".join(lines)
    assert re.search(
        r"measure: 'amuont' is not one of amount, [a-z_, ]+; did you mean 'amount'\?", text
    )
    assert "missing required field 'title_zh'" in text
    assert "unknown field 'customer.agee'; did you mean 'customer.age'?" in text
    assert "type mismatch: amount is money" in text
    assert "duplicate rule id 'bad-field' (first at" in text
    assert "Input should be" not in text


def test_a_rule_failing_its_schema_still_has_its_condition_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "rules:\n  - id: r\n    title_zh: x\n    title_en: x\n    source: a test\n"
        "    condition: amont >= 1\n    action: panic\n    enabled: maybe\n"
    )
    status, lines = _lint(_pack(tmp_path, text), capsys)
    assert status == 1
    joined = "\n".join(lines)
    assert "unknown field 'amont'; did you mean 'amount'?" in joined
    assert "action: 'panic' is not one of" in joined
    assert "enabled: expected yes or no (true/false), got 'maybe'" in joined


def test_yaml_files_outside_any_pack_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _pack(tmp_path / "good", "rules: []\n")
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / "broken.yaml").write_text("rules:\n  - id: [unclosed\n")
    (tmp_path / "notes.yml").write_text("just: a note\n")
    status, lines = _lint(tmp_path, capsys)
    assert status == 1  # the broken stray file is an error, not silence
    joined = "\n".join(lines)
    assert "broken.yaml" in joined and "YAML error" in joined
    assert re.search(r"notes\.yml:1:1: warning: belongs to no pack", joined)
    (tmp_path / "drafts" / "broken.yaml").unlink()
    status, lines = _lint(tmp_path, capsys)
    assert status == 0 and any("belongs to no pack" in line for line in lines)
