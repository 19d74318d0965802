"""YAML aliases and nesting are bounded: a tiny file cannot exhaust memory or the stack (#9, 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

from guardrail.lang.pack import lint_pack, load_pack
from guardrail.lang.source import MAX_ALIASED_VALUES, parse_yaml
from support import STARTER, run_cli

# 352 bytes that expand to 9**9 (387 million) strings when aliases are followed naively.
BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join(['*' + prev] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "rules: [*i]",
    ]
)


def _pack_with_rules(tmp_path: Path, text: str) -> Path:
    pack = tmp_path / "pack"
    shutil.copytree(STARTER, pack)
    (pack / "rules.yaml").write_text(text, encoding="utf-8")
    return pack


def test_billion_laughs_is_refused_with_file_and_line(tmp_path: Path) -> None:
    pack = _pack_with_rules(tmp_path, BILLION_LAUGHS)
    diagnostics = lint_pack(pack)
    assert len(diagnostics) == 1
    (only,) = diagnostics
    assert only.location.file.endswith("rules.yaml")
    assert f"aliases expand to more than {MAX_ALIASED_VALUES} values" in only.message
    result = run_cli("lint", str(pack))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "rules.yaml:" in result.stdout


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    pack = _pack_with_rules(tmp_path, "rules: &r\n  - *r\n")
    (only,) = lint_pack(pack)
    assert "recursive alias" in only.message
    assert (only.location.line, only.location.file.endswith("rules.yaml")) == (1, True)
    result = run_cli("screen", "--pack", str(pack), "-")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "rules.yaml:1:" in result.stderr


def test_deep_nesting_is_refused() -> None:
    for depth in (100, 5000):
        text = "rules: " + "[" * depth + "]" * depth
        source, problems = parse_yaml("deep.yaml", text)
        assert source is None
        assert problems[0].location.file == "deep.yaml"
        assert "deep" in problems[0].message


def test_ordinary_aliases_still_work(tmp_path: Path) -> None:
    text = (STARTER / "rules.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "applies_to: [cash_withdrawal]", "applies_to: &cash [cash_withdrawal]", 1
    ).replace(
        "applies_to: [cash_withdrawal, term_deposit_early_withdrawal]", "applies_to: *cash", 1
    )
    assert "*cash" in text
    pack = load_pack(_pack_with_rules(tmp_path, text))
    assert len(pack.rules) == len(load_pack(STARTER).rules)
