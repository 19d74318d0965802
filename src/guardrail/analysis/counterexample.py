"""Turn a solver model (feature values) into an event the teller software could send, and check
by screening that the two packs really decide it differently.

Only features read off the event (and the customer's age and the local date and hour, through
the birth date and timestamp) are written back; windows, history, lexicon and watchlist
features come from context the event alone cannot set, so a model that needs them may not
reproduce. ``confirm`` screens the built event on both packs and says whether it does."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from decimal import Decimal
from typing import Any

from guardrail.guard import Guard, parse_event
from guardrail.lang.catalog import LOCAL_DATE_KEY, OBSERVATIONS, REGION_KEY_PREFIX
from guardrail.lang.pack import Pack
from guardrail.model.decision import Action, Obligation
from guardrail.model.event import OPENING_KINDS, TransactionKind

_ANSWERS = (
    "stated_purpose",
    "knows_payee",
    "payee_relationship",
    "met_payee_in_person",
    "instructed_by_other",
    "told_to_keep_secret",
    "family_aware",
    "promised_return_pct",
    "paid_to_open",
    "lends_account",
)


def _yuan(fen: object) -> dict[str, str]:
    assert isinstance(fen, int)
    return {"value": str(Decimal(fen) / 100), "currency": "CNY"}


_REGION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,8}){0,3}$")


def _branch_region(values: dict[str, object]) -> str:
    """The most specific region code the model names for the branch (region-scoped overlays
    compare the region cut to N parts), else a default."""
    named = [
        value
        for key, value in values.items()
        if (key == "branch.region" or key.startswith(REGION_KEY_PREFIX))
        and isinstance(value, str)
        and _REGION.match(value)
    ]
    return max(named, key=lambda code: code.count("-"), default="CN-SH")


def build_event(values: dict[str, object]) -> dict[str, Any]:
    """An event JSON object carrying the model's values (defaults for everything else)."""
    kind = str(values.get("kind") or TransactionKind.TRANSFER.value)
    local_date = values.get(LOCAL_DATE_KEY)
    day = dt.date(2025, 3, 1)
    if isinstance(local_date, int):
        with contextlib.suppress(ValueError):
            day = dt.datetime.strptime(str(local_date), "%Y%m%d").date()
    hour = values.get("event.local_hour")
    hour = hour if isinstance(hour, int) and 0 <= hour <= 23 else 10
    event: dict[str, Any] = {
        "event_id": "analyze-counterexample",
        "kind": kind,
        "amount": _yuan(values.get("amount") or 0),
        "timestamp": f"{day.isoformat()}T{hour:02d}:00:00+08:00",
        "branch": {"id": "ANALYZE-BRANCH", "region": _branch_region(values)},
        "teller_id": "T0001",
        "customer": {"id": "C-ANALYZE"},
        "account": {"id": "6222000000000001", "opened_on": "2020-01-01"},
    }
    if isinstance(values.get("currency"), str):
        event["amount"]["currency"] = values["currency"]
    for key in ("channel", "cross_border"):
        if values.get(key) is not None:
            event[key] = values[key]
    if isinstance(values.get("new_daily_limit"), int):
        event["new_daily_limit"] = _yuan(values["new_daily_limit"])
    age = values.get("customer.age")
    if isinstance(age, int):
        birth = day.replace(year=day.year - age) if not (day.month == 2 and day.day == 29) else day
        event["customer"]["birth_date"] = birth.isoformat()
    for key in ("party_type", "segment"):
        if values.get(f"customer.{key}") is not None:
            event["customer"][key] = values[f"customer.{key}"]
    if values.get("account.account_class") is not None:
        event["account"]["account_class"] = values["account.account_class"]
    counterparty = {
        key: values[f"counterparty.{key}"]
        for key in ("same_name", "party_type")
        if values.get(f"counterparty.{key}") is not None
    }
    if counterparty:
        event["counterparty"] = {"account": "6222000000000002", **counterparty}
    if values.get("purpose.code") is not None:
        event["purpose"] = {"code": values["purpose.code"]}
    observed = {
        name: values[f"observations.{name}"]
        for name in OBSERVATIONS
        if values.get(f"observations.{name}") is not None
    }
    if observed:
        event["observations"] = observed
    answers = {
        name: values[f"answers.{name}"]
        for name in _ANSWERS
        if values.get(f"answers.{name}") is not None
    }
    if answers:
        event["answers"] = answers
    if kind in {k.value for k in OPENING_KINDS}:
        opening = {
            key: values[f"opening.{key}"]
            for key in ("purpose", "accounts_at_other_banks", "accompanied")
            if values.get(f"opening.{key}") is not None
        }
        if opening:
            event["opening"] = opening
    return event


def confirm(
    old: Pack, new: Pack, event: dict[str, Any]
) -> tuple[bool, tuple[Action, tuple[Obligation, ...]], tuple[Action, tuple[Obligation, ...]]]:
    """Screen ``event`` on both packs: (they differ, old decision, new decision)."""
    parsed = parse_event(event)
    before = Guard(old).screen(parsed)
    after = Guard(new).screen(parsed)
    old_outcome = (before.action, tuple(before.obligations))
    new_outcome = (after.action, tuple(after.obligations))
    return old_outcome != new_outcome, old_outcome, new_outcome
