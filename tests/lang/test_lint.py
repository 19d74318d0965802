"""A compliance officer gets every mistake in a pack at once, as file:line:col."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from guardrail.cli import main
from guardrail.guard import Guard, parse_event
from guardrail.lang import PackError, lint_pack, load_pack
from support import STARTER, write_pack

LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")

THREE_MISTAKES = """\
rules:
  - id: misspelt
    title_zh: 错字
    title_en: Misspelt field
    source: test
    condition: customer.agee >= 60
    action: inquire
  - id: broken-yaml
    title_zh: 坏
    title_en: Broken
    source: test
    condition: "amount >= 1
    action: review
  - id: mismatch
    title_zh: 类型
    title_en: Type mismatch
    source: test
    condition: amount >= "lots"
    action: review
"""


def _pack(tmp_path: Path, rules_text: str, *extra: tuple[str, str]) -> Path:
    (tmp_path / "pack.yaml").write_text('pack:\n  name: t\n  version: "1"\n', encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(rules_text, encoding="utf-8")
    for name, text in extra:
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_three_mistakes_in_one_file_give_three_located_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = _pack(tmp_path, THREE_MISTAKES)
    assert main(["lint", str(pack)]) != 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 3, lines
    parsed = [LOCATED.match(line) for line in lines]
    assert all(parsed), lines
    found = {(int(m["line"]), int(m["col"])): m["message"] for m in parsed if m}
    assert found[(6, 16)] == "unknown field 'customer.agee'; did you mean 'customer.age'?"
    assert found[(18, 26)].startswith("type mismatch: amount is money")
    yaml_errors = [message for message in found.values() if message.startswith("YAML error")]
    assert yaml_errors and "line 12" in yaml_errors[0]


def test_the_repository_packs_lint_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(STARTER.parent)]) == 0


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("customer.age >= 60 and amont >= 5", "unknown field 'amont'; did you mean 'amount'?"),
        ("customer.age > 'old'", "type mismatch"),
        ("amount > customer.age", "amount is money but customer.age is a count"),
        ("kind > 'transfer'", "unsupported operator '>'"),
        ("kind == 'transfr'", "did you mean 'transfer'?"),
        ("amount >= 0", "always true"),
        ("not (amount >= 0)", "always false"),
        ("true", "always true"),
        ("customer.age", "not a yes/no flag"),
        ("amount = 5", "use '=='"),
        ("amount >= 5 && observations.on_phone", "use 'and'"),
        ("purpose.text == 'x'", "free text"),
        ("purpose.text matches lexicon.nope", "unknown lexicon 'nope'"),
        ("counterparty.account in watchlist.nope", "unknown watchlist 'nope'"),
        ("kind in []", "empty list"),
        ("amount >= 1.234", "two decimals"),
        ("(" * 60 + "amount >= 1" + ")" * 60, "nested deeper"),
        ("amount >= 1 or " * 400 + "amount >= 1", "longer than"),
        ("observations.on_phone == observations.on_phone", "compared with itself"),
    ],
)
def test_condition_mistakes_are_refused_with_a_reason(
    tmp_path: Path, condition: str, message: str
) -> None:
    write_pack(tmp_path, [{"id": "r1", "condition": condition}])
    with pytest.raises(PackError) as caught:
        load_pack(tmp_path)
    text = str(caught.value)
    assert message in text, text
    assert LOCATED.match(text.splitlines()[0])


@pytest.mark.parametrize(
    ("rules_text", "message"),
    [
        ("rules:\n  - id: a\n    id: b\n", "duplicate key 'id'"),
        ("rulez: []\n", "unknown section 'rulez'; did you mean 'rules'?"),
        ("rules: {}\n", "'rules' must be a list"),
        ("- a\n- b\n", "top level must be a mapping"),
        (
            "rules:\n  - id: a\n    title_zh: x\n    title_en: x\n    source: s\n"
            "    condtion: amount >= 1\n"
            "    action: review\n",
            "unknown field 'condtion'; did you mean 'condition'?",
        ),
        (
            "rules:\n  - id: a\n    title_zh: x\n    title_en: x\n    source: s\n"
            "    condition: amount >= 1\n"
            "    action: panic\n",
            "action: 'panic' is not one of proceed, notice, inquire",
        ),
        ("rules:\n  - id: a\n    title_zh: x\n", "missing required field"),
        ("rules:\n  - id: a\n\tbad: tab\n", "YAML error"),
    ],
)
def test_structural_mistakes_are_located(tmp_path: Path, rules_text: str, message: str) -> None:
    _pack(tmp_path, rules_text)
    diagnostics = lint_pack(tmp_path)
    text = "\n".join(str(d) for d in diagnostics)
    assert message in text, text
    assert all(LOCATED.match(str(d)) for d in diagnostics)


def test_duplicate_rule_ids_name_both_places(tmp_path: Path) -> None:
    write_pack(
        tmp_path,
        [{"id": "same", "condition": "amount >= 1"}, {"id": "same", "condition": "amount >= 2"}],
    )
    with pytest.raises(PackError, match=r"duplicate rule id 'same' \(first at .*rules.yaml:2:"):
        load_pack(tmp_path)


def test_missing_pack_file_and_cycles(tmp_path: Path) -> None:
    with pytest.raises(PackError, match=r"needs a pack\.yaml"):
        load_pack(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "pack.yaml").write_text("pack:\n  name: a\n  version: '1'\n  extends: ../a\n")
    with pytest.raises(PackError, match="cycle"):
        load_pack(tmp_path / "a")


def test_overlay_overrides_base_rule_and_needs_to_say_so(tmp_path: Path) -> None:
    base = write_pack(
        tmp_path / "base",
        [{"id": "cash", "condition": "amount >= 50000", "action": "notice"}],
        name="base",
    )
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "pack.yaml").write_text(
        "pack:\n  name: overlay\n  version: '2'\n  extends: ../base\n"
    )
    rule = (
        "rules:\n  - id: cash\n    title_zh: x\n    title_en: x\n    source: seed\n"
        "    condition: amount >= 100000\n    action: review\n"
    )
    (overlay / "rules.yaml").write_text(rule)
    with pytest.raises(PackError, match="duplicate rule id 'cash'"):
        load_pack(overlay)
    (overlay / "rules.yaml").write_text(rule + "    overrides: true\n")
    pack = load_pack(overlay)
    assert [r.id for r in pack.rules] == ["cash"]
    assert pack.rule("cash").spec.action.value == "review"
    assert pack.chain == ("base", "overlay")
    assert pack.content_hash != load_pack(base).content_hash


def test_effective_dates_bound_when_a_rule_fires(tmp_path: Path) -> None:
    write_pack(
        tmp_path,
        [
            {
                "id": "pilot",
                "condition": "amount >= 1",
                "effective_from": dt.date(2025, 3, 1),
                "effective_to": dt.date(2025, 3, 31),
            }
        ],
    )
    guard = Guard.from_path(tmp_path)
    base = {
        "event_id": "e",
        "kind": "cash_withdrawal",
        "amount": {"value": "10"},
        "branch": {"id": "b", "region": "CN-SH"},
        "teller_id": "t",
        "customer": {"id": "c"},
    }
    # 23:30 in Shanghai on 28 February is still February; 16:30 UTC that day is 1 March there.
    assert (
        guard.screen(parse_event(dict(base, timestamp="2025-02-28T23:30:00+08:00"))).rule_ids == ()
    )
    assert guard.screen(
        parse_event(dict(base, timestamp="2025-02-28T16:30:00+00:00"))
    ).rule_ids == ("pilot",)
    assert (
        guard.screen(parse_event(dict(base, timestamp="2025-04-01T00:00:00+08:00"))).rule_ids == ()
    )


def test_disabled_rules_are_not_compiled(tmp_path: Path) -> None:
    write_pack(
        tmp_path,
        [
            {"id": "off", "condition": "amount >= 1", "enabled": False},
            {"id": "on", "condition": "amount >= 1"},
        ],
    )
    assert [r.id for r in load_pack(tmp_path).rules] == ["on"]


def test_hostile_file_contents_do_not_crash_the_loader(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _pack(tmp_path, f"rules:\n  - !!python/object/apply:os.system ['touch {marker}']\n")
    diagnostics = lint_pack(tmp_path)
    assert diagnostics and LOCATED.match(str(diagnostics[0]))
    assert not marker.exists()  # tags are never constructed into objects
    (tmp_path / "rules.yaml").write_bytes(b"\xff\xfe rules")
    assert "not UTF-8" in str(lint_pack(tmp_path)[0])
