"""Events, packs and a deterministic clock for the counter-session tests."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from guardrail.guard import Guard
from guardrail.lang.loader import load_pack
from guardrail.lang.pack import Pack
from guardrail.model import Event

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "rules" / "starter"
BASELINE = ROOT / "rules" / "cn-baseline"
FULL = Path(__file__).resolve().parent / "packs" / "full-questionnaire"
CONSOLE = ROOT / "examples" / "teller_console.py"
CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2023, 3, 1, 10, 0, tzinfo=CST)
INVOLVED_ACCOUNT = "6222020200998877665"  # rules/starter/data/involved_accounts.csv


@cache
def pack(path: Path) -> Pack:
    return load_pack(path)


def guard(path: Path = STARTER) -> Guard:
    """A fresh guard (empty history) over a pack loaded once per test run."""
    return Guard(pack(path))


class Clock:
    """Ticks ``step`` seconds at each call: sessions get deterministic timestamps."""

    def __init__(self, start: dt.datetime = T0, step: int = 30) -> None:
        self.now = start
        self.step = dt.timedelta(seconds=step)

    def __call__(self) -> dt.datetime:
        current = self.now
        self.now += self.step
        return current


def clock() -> Callable[[], dt.datetime]:
    return Clock()


def event(**changes: Any) -> Event:
    base: dict[str, Any] = {
        "event_id": "evt-1",
        "kind": "transfer",
        "amount": {"value": "20000.00", "currency": "CNY"},
        "timestamp": "2023-03-01T10:00:00+08:00",
        "branch": {"id": "SH-PD-001", "region": "CN-SH"},
        "teller_id": "T0001",
        "customer": {"id": "C-1", "birth_date": "1980-01-01"},
        "account": {"id": "6222000011112222", "opened_on": "2010-01-01"},
        "counterparty": {"account": "6217000099998888", "name": "王某", "region": "CN-SH"},
    }
    base.update(changes)
    return Event.model_validate_json(json.dumps(base, ensure_ascii=False))


def case_003() -> Event:
    """003_4d407a81b1856394.txt: Uncle Du transfers 'to buy a house'; it is a tree-planting
    investment promising up to 30% a year."""
    return event(
        event_id="seed-003-du",
        amount={"value": "300000.00", "currency": "CNY"},
        customer={"id": "C-DU", "birth_date": "1950-05-01", "region": "CN-SH"},
        counterparty={"account": "6217999900001111", "name": "林某", "region": "CN-YN"},
        purpose={"code": "house_purchase", "text": "买房"},
    )


def case_001() -> Event:
    """001_6b9bfe12de2be323.txt: an elderly customer, a matured wealth product rolled over, wants
    the money out at once; resolved by a product transfer. Legitimate."""
    return event(
        event_id="seed-001-rollover",
        kind="wealth_redemption",
        amount={"value": "200000.00", "currency": "CNY"},
        timestamp="2022-05-16T09:40:00+08:00",
        branch={"id": "ZJ-SX-WZB-01", "region": "CN-ZJ"},
        customer={"id": "C-SX-1", "birth_date": "1948-02-02", "region": "CN-ZJ"},
        counterparty=None,
        purpose={"code": "other", "text": "理财到期续滚，要求马上取回"},
    )


def involved_payee() -> Event:
    return event(
        event_id="evt-involved",
        counterparty={"account": INVOLVED_ACCOUNT, "name": "李某", "region": "CN-GD"},
    )


def elderly_cash_on_phone() -> Event:
    return event(
        event_id="evt-cash-phone",
        kind="cash_withdrawal",
        amount={"value": "80000.00", "currency": "CNY"},
        customer={"id": "C-2", "birth_date": "1949-06-12"},
        counterparty=None,
        purpose={"code": "living_expenses", "text": "家里装修用"},
    )
