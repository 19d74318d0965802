"""The audit record keeps the score and every cleared rule with what cleared it, and never the
identities of third parties at the counter."""

from __future__ import annotations

from typing import Any

from guardrail.audit.capture import decision_record
from guardrail.audit.masking import Masker
from guardrail.guard import Guard, parse_event
from support import BASELINE

SECRET = b"a-test-secret-key-0123456789abcdef"


def _event(**changes: Any) -> Any:
    data: dict[str, Any] = {
        "event_id": "E-AUD-1",
        "kind": "cash_withdrawal",
        "amount": {"value": "60000"},
        "timestamp": "2025-04-05T11:00:00+08:00",
        "branch": {"id": "B1", "region": "CN-JS"},
        "teller_id": "T1",
        "customer": {"id": "C1", "birth_date": "1950-01-01"},
        "purpose": {"code": "medical"},
        "answers": {"instructed_by_other": False, "family_aware": True},
        "documents": [{"kind": "invoice", "verified": True, "description": "王某住院押金"}],
        "third_parties": [{"role": "family", "phone": "13812345678", "id_number": "110101X1"}],
    }
    data.update(changes)
    return parse_event(data)


def test_cleared_rules_and_score_reach_the_audit_record() -> None:
    guard = Guard.from_path(BASELINE)
    event = _event()
    decision = guard.screen(event)
    assert [c.rule_id for c in decision.cleared] == ["elderly-large-cash-withdrawal"]
    record = decision_record(event, decision, Masker(SECRET))
    (cleared,) = record.cleared
    assert cleared.rule_id == "elderly-large-cash-withdrawal"
    assert "documents.invoice" in {e.feature for e in cleared.cleared_by}
    assert record.score == decision.score
    text = record.model_dump_json()
    assert "13812345678" not in text and "110101X1" not in text and "王某" not in text
    assert record.event.third_party_roles == ("family",)
    assert record.event.documents[0].kind.value == "invoice"
