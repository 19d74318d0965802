"""A customer's name written with spaces or separators in free text is redacted too (#9, 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_factory import SECRET, make_decision, make_event
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.audit import AuditKeys, AuditLog, FieldClass, Masker
from guardrail.model import Action

MASKER = Masker(SECRET)
KNOWN = MASKER.known_values([(FieldClass.NAME, "王秀英"), (FieldClass.NAME, "Zhang Wei")])
SEPARATORS = [" ", "  ", "\u3000", "-", "·", ".", "_", "/", "*", ", "]


@settings(max_examples=200, deadline=None)
@given(
    separators=st.lists(st.sampled_from(SEPARATORS), min_size=2, max_size=2),
    before=st.sampled_from(["", "客户", "customer ", "据"]),
    after=st.sampled_from(["", "说要转账", " says", "。"]),
)
def test_spaced_chinese_name_is_redacted(separators: list[str], before: str, after: str) -> None:
    spaced = "王" + separators[0] + "秀" + separators[1] + "英"
    redacted = MASKER.redact_text(before + spaced + after, KNOWN)
    for ch in "王秀英":
        assert ch not in redacted
    assert KNOWN["王秀英"] in redacted


@pytest.mark.parametrize("written", ["zhang wei", "ZHANG-WEI", "Zhang  Wei", "zhangwei"])
def test_latin_name_in_any_case_and_spacing_is_redacted(written: str) -> None:
    redacted = MASKER.redact_text(f"payee told {written} to hurry", KNOWN)
    assert redacted == f"payee told [{KNOWN['Zhang Wei']}] to hurry"


def test_other_text_is_left_alone() -> None:
    assert MASKER.redact_text("王先生和秀英路", KNOWN) == "王先生和秀英路"


def test_spaced_name_never_reaches_the_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog.open(path, keys=AuditKeys.from_secret(SECRET))
    event = make_event(1, name="王秀英", notes="客户 王 秀 英 称接到公安电话")
    log.log_decision(event, make_decision(event, Action.REVIEW, ("R1",)))
    log.close()
    data = path.read_bytes()
    assert "王 秀 英".encode() not in data
    assert "秀".encode() not in data
