"""Turn a solver model (feature values) into an event the teller software could send, and check
by screening that the two packs really decide it differently.

Features read off the event (and the customer's age, the account's age and the local date and
hour, through the birth date, opening date and timestamp) are written back; window and history
values come from the prior transactions ``analysis.history`` finds, recorded before screening;
lexicon matches and watchlist membership are not realised, so a model that needs them may not
reproduce. ``confirm`` screens the event (after its history) on both packs and says whether
they really differ."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from guardrail.guard import Guard, parse_event
from guardrail.lang.catalog import ANSWERS, LOCAL_DATE_KEY, OBSERVATIONS, REGION_KEY_PREFIX
from guardrail.lang.pack import Pack
from guardrail.model.decision import Action, Decision, Obligation
from guardrail.model.event import OPENING_KINDS, TransactionKind

EVENT_ACCOUNT = "6222000000000001"
EVENT_PAYEE = "6222000000000002"


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


def build_event(values: dict[str, object], *, has_payee: bool = False) -> dict[str, Any]:
    """An event JSON object carrying the model's values (defaults for everything else); with
    ``has_payee`` it names a payee account even when no payee field is set."""
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
        "account": {"id": EVENT_ACCOUNT, "opened_on": _opened_on(day, values)},
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
    if counterparty or has_payee:
        event["counterparty"] = {"account": EVENT_PAYEE, **counterparty}
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
        for name in ANSWERS
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


def _opened_on(day: dt.date, values: dict[str, object]) -> str:
    age_days = values.get("account.age_days")
    if isinstance(age_days, int) and 0 <= age_days <= 36500:
        return (day - dt.timedelta(days=age_days)).isoformat()
    return "2020-01-01"


def replay(pack: Pack, event: dict[str, Any], prior: Sequence[dict[str, Any]] = ()) -> Decision:
    """Screen ``event`` on ``pack`` by a fresh guard after recording the ``prior`` executed
    transactions (event JSON objects) in its history."""
    guard = Guard(pack)
    for executed in prior:
        guard.record_executed(parse_event(executed))
    return guard.screen(parse_event(event))


def outcome_of(decision: Decision) -> tuple[Action, tuple[Obligation, ...], tuple[str, ...]]:
    """(action, obligations, sorted rule ids of the hits) of a screened decision."""
    return (
        decision.action,
        tuple(decision.obligations),
        tuple(sorted({hit.rule_id for hit in decision.hits})),
    )


def confirm(
    old: Pack,
    new: Pack,
    event: dict[str, Any],
    prior: Sequence[dict[str, Any]] = (),
    *,
    hits: bool = False,
) -> tuple[
    bool,
    tuple[Action, tuple[Obligation, ...], tuple[str, ...]],
    tuple[Action, tuple[Obligation, ...], tuple[str, ...]],
]:
    """Screen ``event`` (after ``prior``) on both packs: (they differ, old outcome, new
    outcome); action and obligations are compared, and the hit lists too with ``hits``."""
    before = outcome_of(replay(old, event, prior))
    after = outcome_of(replay(new, event, prior))
    compared = 3 if hits else 2
    return before[:compared] != after[:compared], before, after
