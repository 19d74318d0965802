"""The generator's behaviours are data: a compliance officer adds a typology or a legitimate
behaviour by editing YAML, and a broken file is refused with the file and the entry named."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from guardrail.guard import Guard
from guardrail.sim.behaviours import BUNDLED, BehaviourError, load_behaviours
from guardrail.sim.generator import generate
from guardrail.sim.replay import Replayer, parse_line
from support import BASELINE


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "behaviours"
    shutil.copytree(BUNDLED, folder)
    return folder


def test_a_new_typology_from_yaml_appears_in_the_stream(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "typologies.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["typologies"].append(
        {
            "id": "fake_lottery",
            "title_zh": "中奖诈骗",
            "source": "National Anti-Fraud Center public list (虚假中奖)",
            "weight": 50,
            "phrases": ["中奖了要先交税费"],
            "payees": {"main": {"type": "person", "other_region": 1.0}},
            "variants": [
                {
                    "label": "fee",
                    "steps": [
                        {
                            "kind": ["transfer"],
                            "amount": {"median": 5000},
                            "payee": "main",
                            "purpose": ["other"],
                            "text": 1.0,
                            "answers": {"stated_purpose": "other", "honesty": 1.0},
                        }
                    ],
                }
            ],
        }
    )
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    records = list(generate(3000, 0.1, 3, behaviours=load_behaviours(folder)))
    lottery = [r for r in records if r.typology == "fake_lottery"]
    assert lottery and all(r.event.purpose and r.event.purpose.text for r in lottery)
    assert all(r.when_asked is not None for r in lottery)


def test_a_broken_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "legitimate.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("kind: [cash_withdrawal]", "kind: [cash_grab]", 1),
        encoding="utf-8",
    )
    with pytest.raises(BehaviourError) as raised:
        load_behaviours(folder)
    assert "legitimate.yaml" in str(raised.value) and "kind" in str(raised.value)


def test_an_unknown_fallback_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "legitimate.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("fallback: worker_cash", "fallback: nap", 1),
        encoding="utf-8",
    )
    with pytest.raises(BehaviourError, match="fallback 'nap'"):
        load_behaviours(folder)


def test_victims_answer_as_coached_and_legitimate_customers_reassure() -> None:
    records = list(generate(6000, 0.05, 9))
    asked = [r for r in records if r.when_asked is not None]
    fraud = [r.when_asked for r in asked if r.label == "fraud"]
    legit = [r.when_asked for r in asked if r.label == "legitimate"]
    assert fraud and legit
    assert any(w.answers.instructed_by_other for w in fraud if w is not None)
    assert all(w.answers.instructed_by_other is False for w in legit if w is not None)
    shown = Counter(d.kind.value for w in legit if w is not None for d in w.documents)
    assert shown["invoice"] and shown["contract"]
    assert any(w.family is not None and w.family.confirms for w in legit if w is not None)


def test_replay_reports_recall_before_and_after_answers() -> None:
    guard = Guard.from_path(BASELINE)
    replayer = Replayer(guard)
    for n, record in enumerate(generate(4000, 0.05, 13), 1):
        replayer.feed(parse_line(record.to_json(), n))
    report = replayer.report(1.0)
    assert report.asked > 0
    assert report.recall_intercept_after_answers >= report.recall_intercept
    assert report.friction_rate_after_answers <= report.friction_rate
    text = report.render()
    assert "after answers: recall (>= intercept)" in text
    assert "after answers >=inquire" in text
