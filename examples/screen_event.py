"""Screen one counter request from Python, as teller software would.

Run from the repository root:  python examples/screen_event.py
"""

from __future__ import annotations

from pathlib import Path

from guardrail.guard import EventError, Guard, parse_event
from guardrail.model import Action

ROOT = Path(__file__).resolve().parent.parent

# Load, check and compile the pack once at start-up; share the Guard between teller threads.
guard = Guard.from_path(ROOT / "rules" / "cn-baseline")

request = {
    "event_id": "SH-0457-20250301-0001",
    "kind": "cash_withdrawal",
    "amount": {"value": "80000.00", "currency": "CNY"},
    "timestamp": "2025-03-01T10:15:00+08:00",
    "branch": {"id": "SH-MINHANG-012", "region": "CN-SH", "timezone": "Asia/Shanghai"},
    "teller_id": "T0457",
    "customer": {"id": "C-88120931", "birth_date": "1949-06-12"},
    "account": {"id": "6222020200112233445", "opened_on": "2003-05-20"},
    "purpose": {"code": "living_expenses", "text": "家里装修用"},
    "observations": {"on_phone": True, "hurried": True},
}

try:
    event = parse_event(request)
except EventError as error:  # malformed input: tell the integrator exactly which field
    raise SystemExit(str(error)) from None

decision = guard.screen(event)
print(f"action: {decision.action.value}  obligations: {[o.value for o in decision.obligations]}")
for hit in decision.hits:
    values = ", ".join(f"{e.feature}={e.value}" for e in hit.evidence)
    print(f"  {hit.rule_id} -> {hit.action.value}: {hit.title_en} ({values})")
    if hit.ask:
        print(f"    ask: {', '.join(hit.ask)}")

if decision.action <= Action.NOTICE:
    # The teller carried the transaction out: only now does it count in same-day totals.
    guard.record_executed(event)
