"""Issue 13: ``guardrail diff`` of the baseline against a copy with one threshold changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from guardrail.cli import main
from support import BASELINE

OLD = (
    "customer.is_elderly and amount >= 50000\n    action: inquire\n"
    "    obligations: [signed_risk_notice]"
)


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("diff") / "cn-baseline"
    shutil.copytree(BASELINE, target)
    elderly = target / "elderly.yaml"
    text = elderly.read_text(encoding="utf-8")
    assert text.count(OLD) == 1
    elderly.write_text(text.replace(OLD, OLD.replace("50000", "30000")), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stream") / "events.jsonl"
    assert main(["simulate", "--n", "3000", "--seed", "3", "--out", str(path)]) == 0
    return path


def test_diff_names_the_changed_threshold(
    changed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", str(BASELINE), str(changed)]) == 0
    out = capsys.readouterr().out
    assert "rule elderly-early-term-deposit changed: threshold 50000 -> 30000" in out, out
    assert out.count("rule ") == 1  # nothing else changed
    assert main(["diff", str(BASELINE), str(BASELINE)]) == 0
    assert "no rule or declaration changed" in capsys.readouterr().out


def test_diff_with_a_stream_lists_the_events_that_change(
    changed: Path, stream: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", str(BASELINE), str(changed), "--events", str(stream), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["rule_id"] for r in data["rules"]] == ["elderly-early-term-deposit"]
    impact = data["stream"]
    assert impact["changed"] == len(impact["events"]) > 0
    assert impact["down"] == 0  # a lower threshold can only add hits
    assert impact["up_by_rule"] == {"elderly-early-term-deposit": impact["up"]}
    for event in impact["events"]:
        assert event["rules_added"] == ["elderly-early-term-deposit"]
        assert "signed_risk_notice" in event["gained_obligations"] or event["direction"] == "up"
    old_friction, new_friction = impact["friction_rate"]
    assert new_friction >= old_friction
    assert main(["diff", str(BASELINE), str(changed), "--events", str(stream)]) == 0
    text = capsys.readouterr().out
    assert "decided differently" in text and "friction" in text
    assert impact["events"][0]["event_id"] in text


def test_diff_reports_rules_added_removed_and_action_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from support import write_pack

    old = write_pack(
        tmp_path / "old",
        [
            {"id": "a", "condition": "amount >= 1", "action": "review"},
            {"id": "gone", "condition": "amount >= 2"},
        ],
    )
    new = write_pack(
        tmp_path / "new",
        [
            {
                "id": "a",
                "condition": "amount >= 1",
                "action": "notice",
                "obligations": ["dual_recording"],
            },
            {"id": "fresh", "condition": "amount >= 3"},
        ],
    )
    assert main(["diff", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "rule a changed: action review -> notice (down); obligations +dual_recording" in out
    assert "rule fresh added" in out and "rule gone removed" in out


def test_diff_bad_pack_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(BASELINE), str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "pack folder not found" in err and "Traceback" not in err
