"""Shared builders for audit tests: events and decisions made directly from the model."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from guardrail.audit import AuditLog
from guardrail.model import Action, Decision, Event, Evidence, Hit, PackRef

SECRET = b"test-secret-key-0123456789abcdef"
PACK = PackRef(name="cn-baseline", version="1.0.0", content_hash="sha256:" + "ab" * 32)
T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def make_event(
    i: int,
    *,
    kind: str = "cash_withdrawal",
    amount: str = "50000.00",
    branch: str = "B001",
    teller: str = "T01",
    when: dt.datetime | None = None,
    id_number: str = "110101195001011234",
    phone: str = "13800138000",
    account: str = "6222020200112233445",
    name: str = "张伟",
    counterparty_account: str | None = "6217000010012345678",
    counterparty_phone: str | None = "13912345678",
    notes: str = "",
) -> Event:
    data: dict[str, Any] = {
        "event_id": f"E{i:06d}",
        "kind": kind,
        "amount": {"value": amount, "currency": "CNY"},
        "timestamp": (when or T0 + dt.timedelta(minutes=i)).isoformat(),
        "branch": {"id": branch, "region": "CN-ZJ"},
        "teller_id": teller,
        "customer": {
            "id": f"C{i:06d}",
            "birth_date": "1950-01-01",
            "name": name,
            "id_number": id_number,
            "phone": phone,
        },
        "account": {"id": account, "opened_on": "2020-01-01"},
        "notes": notes,
    }
    if counterparty_account is not None:
        data["counterparty"] = {
            "account": counterparty_account,
            "name": "李娜",
            "phone": counterparty_phone,
        }
    return Event.model_validate_json(json.dumps(data))


def make_decision(event: Event, action: Action, rules: tuple[str, ...] = ()) -> Decision:
    hits = tuple(
        Hit(
            rule_id=rule,
            title_zh="规则",
            title_en=f"rule {rule}",
            action=action,
            evidence=(
                Evidence(feature="event.amount_fen", value=event.amount.fen),
                Evidence(
                    feature="counterparty.account",
                    value=event.counterparty.account if event.counterparty else None,
                ),
                Evidence(feature="customer.phone", value=event.customer.phone),
            ),
        )
        for rule in rules
    )
    return Decision(
        event_id=event.event_id, action=action, hits=hits, pack=PACK, backend="reference"
    )


def fill(log: AuditLog, n: int) -> list[int]:
    """Append ``n`` decisions one by one; return their seqs."""
    seqs = []
    for i in range(n):
        event = make_event(i)
        seqs.append(log.log_decision(event, make_decision(event, Action.INQUIRE, ("R1",))))
    return seqs
