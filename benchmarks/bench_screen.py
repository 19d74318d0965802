"""screen() benchmark: a 50-rule pack on both backends against raw durable-rules and zen-engine.

One run measures, on the same ~2,000 deterministic events and the same 50 rules
(``benchmarks/packs/bench50``):

* ``Guard.screen()`` with the ``reference`` and the ``durable_rules`` backend, end to end
  (enrichment, windows, lexicons, watchlists, engine, decide and the pydantic Decision);
* each backend's ``evaluate()`` alone, over precomputed features (the engine share of screen());
* raw durable-rules: the same 50 conditions hand-written as a durable-rules ruleset, driven
  through its C core (assert a fact, collect every activation, retract), over the same
  precomputed flat features;
* zen-engine: the same 50 conditions as one decision table (hit policy ``collect``) built in
  code, evaluated with the synchronous ``ZenEngine.evaluate`` over the same flat features;
* screen() again with 1,000,000 executed records in the history store: spread over 200,000
  customers (about five each; the target), then all on the 20,000 screened customers (about
  fifty each; a stress figure): throughput, latency and RSS before/after loading.

Before timing, every event goes through all four and the hit sets must agree; any
disagreement is printed and the script exits with status 1.

    .venv/bin/python benchmarks/bench_screen.py [--quick] [--events N] [--rounds N]
        [--history-records N] [--no-history] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import itertools
import json
import os
import platform
import pstats
import random
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import durable_rules_engine as durable_core
import zen

from guardrail.context.history import HistoryRecord, InMemoryHistoryStore, retention_for
from guardrail.guard import Guard
from guardrail.lang.loader import load_pack
from guardrail.lang.pack import Pack
from guardrail.model.event import (
    DIRECTION_OF_KIND,
    Account,
    AccountClass,
    Answers,
    Branch,
    Channel,
    Counterparty,
    Customer,
    Event,
    Observations,
    PartyType,
    Purpose,
    PurposeCode,
    Relationship,
    Segment,
    TransactionKind,
)
from guardrail.model.money import Currency, Money

PACK_DIR = Path(__file__).resolve().parent / "packs" / "bench50"
SEED = 20250301
CUSTOMERS = 20_000
TZ = dt.timezone(dt.timedelta(hours=8))
DAY = dt.datetime(2025, 3, 1, tzinfo=TZ)  # every screened event falls on this local day

# -- workload --------------------------------------------------------------------------------

K = TransactionKind
KIND_WEIGHTS = [
    (K.CASH_WITHDRAWAL, 30),
    (K.CASH_DEPOSIT, 14),
    (K.TRANSFER, 30),
    (K.REMITTANCE, 8),
    (K.TERM_DEPOSIT_EARLY_WITHDRAWAL, 6),
    (K.WEALTH_REDEMPTION, 4),
    (K.INSURANCE_SURRENDER, 3),
    (K.ACCOUNT_OPENING, 3),
    (K.LIMIT_CHANGE, 2),
]
OUTGOING = {K.CASH_WITHDRAWAL, K.TRANSFER, K.REMITTANCE, K.TERM_DEPOSIT_EARLY_WITHDRAWAL}
PAYING = {K.TRANSFER, K.REMITTANCE}
REGIONS = ["CN-ZJ", "CN-HE", "CN-GD", "CN-GD-SZ", "CN-SH", "CN-BJ", "CN-SC"]
LEGIT_TEXT = {
    PurposeCode.LIVING_EXPENSES: ["生活费", "交房租", "日常开销"],
    PurposeCode.MEDICAL: ["住院押金", "给老伴看病"],
    PurposeCode.EDUCATION: ["给孙子交学费", "培训班学费"],
    PurposeCode.HOUSE_PURCHASE: ["买房首付", "装修房子"],
    PurposeCode.CAR_PURCHASE: ["买车"],
    PurposeCode.LOAN_REPAYMENT: ["还房贷", "还信用卡"],
    PurposeCode.FAMILY_SUPPORT: ["给女儿的生活费", "家里急用"],
    PurposeCode.GIFT: ["结婚随礼", "红包"],
    PurposeCode.TRAVEL: ["出国旅游"],
    PurposeCode.BUSINESS: ["货款", "进货"],
}
INVOLVED = ["6222020200998877665", "6222600000000000013", "6222600000000000029"]
FRAUD_PHONES = ["17000000001", "17100000003"]
WARNED = ["C000007", "C000042", "C000099", "C000123"]
# Typologies of the risky share: what the customer writes or says, what the teller sees.
TYPOLOGIES = {
    "police": {
        "text": ["对方说我涉嫌洗钱，要把钱转到安全账户配合调查", "公检法让我自证清白"],
        "obs": [
            "on_phone",
            "nervous",
            "hurried",
            "screen_sharing",
            "evasive",
            "demands_instant_arrival",
        ],
        "answers": {"payee_relationship": Relationship.OFFICIAL, "told_to_keep_secret": True},
    },
    "investment": {
        "text": ["老师带单，年化收益30%", "林业种植项目，保本保息", "朋友介绍的高回报项目"],
        "obs": ["reading_from_phone", "hurried", "purpose_changed"],
        "answers": {"stated_purpose": PurposeCode.INVESTMENT, "promised_return_pct": 20},
    },
    "rebate": {
        "text": ["网上兼职刷单，先垫付任务", "充值返利，任务卡单了要解冻"],
        "obs": ["reading_from_phone", "on_phone"],
        "answers": {"instructed_by_other": True, "knows_payee": False, "family_aware": False},
    },
    "pension": {
        "text": ["交养老公寓床位预定费", "养老项目投资，每月返利"],
        "obs": [
            "group_with_same_purpose",
            "companion_answers",
            "refuses_family_contact",
            "payee_only_takes_cash",
        ],
        "answers": {"promised_return_pct": 12, "family_aware": False},
    },
    "loan": {
        "text": ["贷款要先交解冻费", "对方要求刷流水验资后放款"],
        "obs": ["on_phone", "nervous"],
        "answers": {"instructed_by_other": True, "knows_payee": False},
    },
    "refund": {
        "text": ["客服说商品质量问题要退款", "快递理赔，按对方指导操作"],
        "obs": ["screen_sharing", "on_phone", "earpiece"],
        "answers": {"knows_payee": False, "told_to_keep_secret": True},
    },
    "romance": {
        "text": ["男朋友说要投资虚拟货币", "网友急需用钱"],
        "obs": ["evasive", "refuses_family_contact"],
        "answers": {
            "payee_relationship": Relationship.MET_ONLINE,
            "met_payee_in_person": False,
            "knows_payee": False,
            "family_aware": False,
        },
    },
    "surrender": {
        "text": ["代理退保，可以全额退保"],
        "obs": ["third_party_agent_present"],
        "answers": {},
    },
    "credit": {
        "text": ["征信修复服务费", "注销校园贷"],
        "obs": ["on_phone"],
        "answers": {"instructed_by_other": True},
    },
}


def customer_id(number: int) -> str:
    return f"C{number:06d}"


def account_of(number: int) -> str:
    return f"6217{number:08d}0"


def payee_of(number: int, which: int) -> str:
    return f"6222{(number * 7 + which) % 500_000:08d}"


def _customer(number: int) -> tuple[Customer, dt.date, AccountClass]:
    """The same customer every time the number comes up (birth date, region, account)."""
    rng = random.Random(number * 7919 + 17)
    age = min(95, max(18, int(rng.gauss(48, 18))))
    born = dt.date(2025 - age, rng.randrange(1, 13), rng.randrange(1, 29))
    business = rng.random() < 0.04
    customer = Customer(
        id=customer_id(number),
        party_type=PartyType.NON_NATURAL_PERSON if business else PartyType.NATURAL_PERSON,
        birth_date=None if business or rng.random() < 0.02 else born,
        segment=Segment.BUSINESS
        if business
        else rng.choice([Segment.MASS, Segment.MASS, Segment.AFFLUENT]),
        region=rng.choice(REGIONS),
        phone=f"13{rng.randrange(10**9):09d}",
    )
    opened = dt.date(2025, 3, 1) - dt.timedelta(days=rng.randrange(30, 9000))
    account_class = AccountClass.II if rng.random() < 0.1 else AccountClass.I
    return customer, opened, account_class


def _age(customer: Customer) -> int:
    born = customer.birth_date
    return 0 if born is None else 2025 - born.year


def _amount(rng: random.Random, low: float, high: float) -> Money:
    value = Decimal(round(10 ** rng.uniform(low, high)))
    if rng.random() < 0.3:
        value += Decimal(rng.randrange(100)) / 100
    return Money(value=value)


def make_events(count: int, seed: int = SEED) -> list[Event]:
    """``count`` events on DAY, about 12% of them risky, built with the pydantic models."""
    rng = random.Random(seed)
    kinds = [kind for kind, _ in KIND_WEIGHTS]
    weights = [weight for _, weight in KIND_WEIGHTS]
    events = []
    for index in range(count):
        number = rng.randrange(CUSTOMERS)
        if rng.random() < 0.01:
            number = int(rng.choice(WARNED)[1:])
        risky = rng.random() < 0.12
        customer, opened, account_class = _customer(number)
        while risky and rng.random() < 0.6 and _age(customer) < 60:  # scams pick on the elderly
            number = rng.randrange(CUSTOMERS)
            customer, opened, account_class = _customer(number)
        kind = rng.choices(kinds, weights)[0]
        name = rng.choice(sorted(TYPOLOGIES)) if risky else ""
        typology = TYPOLOGIES.get(name)
        if name == "surrender":
            kind = K.INSURANCE_SURRENDER
        elif typology is not None and kind not in OUTGOING and rng.random() < 0.7:
            kind = rng.choice([K.TRANSFER, K.CASH_WITHDRAWAL, K.REMITTANCE])
        amount = _amount(rng, 4.0, 5.7) if risky else _amount(rng, 2.0, 5.0)
        if kind is K.ACCOUNT_OPENING:
            amount = Money(value=Decimal(rng.choice([0, 10, 100])))
        if kind is K.CASH_WITHDRAWAL and rng.random() < 0.03:
            amount = Money(value=amount.value, currency=Currency.USD)
        if risky and rng.random() < 0.15:
            opened = dt.date(2025, 3, 1) - dt.timedelta(days=rng.randrange(0, 10))
        hour = rng.choices(
            [rng.randrange(7, 20), rng.randrange(20, 24), rng.randrange(5, 7)], [90, 7, 3]
        )[0]
        timestamp = DAY.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))
        counterparty = None
        if kind in PAYING:
            payee = payee_of(number, rng.randrange(8))
            if risky and rng.random() < 0.2:
                payee = rng.choice(INVOLVED)
            counterparty = Counterparty(
                account=payee,
                bank=rng.choice(["ICBC", "CCB", "ABC", "BOC", "CMB"]),
                region=rng.choice(REGIONS),
                same_name=rng.random() < 0.1,
                party_type=PartyType.NON_NATURAL_PERSON
                if rng.random() < 0.15
                else PartyType.NATURAL_PERSON,
                phone=rng.choice(FRAUD_PHONES) if risky and rng.random() < 0.1 else None,
            )
        purpose = None
        if kind in OUTGOING or kind is K.CASH_DEPOSIT:
            code = rng.choice(sorted(LEGIT_TEXT, key=lambda c: c.value))
            text = rng.choice(LEGIT_TEXT[code]) if rng.random() < 0.6 else ""
            if typology is not None:
                code = rng.choice(
                    [PurposeCode.HOUSE_PURCHASE, PurposeCode.INVESTMENT, PurposeCode.FAMILY_SUPPORT]
                )
                if rng.random() < 0.6:
                    text = rng.choice(typology["text"])
            purpose = Purpose(code=code, text=text)
        observed: dict[str, bool] = {}
        answers: dict[str, Any] = {}
        notes = ""
        if typology is not None:
            for name in rng.sample(typology["obs"], rng.randrange(0, len(typology["obs"]) + 1)):
                observed[name] = True
            answers = {k: v for k, v in typology["answers"].items() if rng.random() < 0.7}
            if rng.random() < 0.5:
                notes = "客户称" + rng.choice(typology["text"])
            if rng.random() < 0.4:
                answers["purpose_detail"] = rng.choice(typology["text"])
        else:
            if rng.random() < 0.04:
                observed[rng.choice(["nervous", "hurried", "on_phone"])] = True
            if purpose is not None and rng.random() < 0.3:
                answers = {
                    "stated_purpose": purpose.code if rng.random() < 0.95 else PurposeCode.OTHER,
                    "knows_payee": rng.random() < 0.97,
                    "family_aware": rng.random() < 0.9,
                }
        events.append(
            Event(
                event_id=f"E{index:06d}",
                kind=kind,
                amount=amount,
                channel=rng.choices(
                    [Channel.COUNTER, Channel.ATM, Channel.SELF_SERVICE], [85, 10, 5]
                )[0],
                timestamp=timestamp,
                branch=Branch(id=f"B{rng.randrange(20):03d}", region=rng.choice(REGIONS[:3])),
                teller_id=f"T{rng.randrange(100):03d}",
                customer=customer,
                account=Account(
                    id=account_of(number),
                    account_class=account_class,
                    opened_on=opened,
                    last_activity_on=DAY.date()
                    - dt.timedelta(days=rng.choice([1, 3, 10, 40, 400])),
                ),
                counterparty=counterparty,
                purpose=purpose,
                cross_border=kind is K.REMITTANCE and rng.random() < 0.3,
                new_daily_limit=Money(value=Decimal(rng.choice([50_000, 100_000, 300_000])))
                if kind is K.LIMIT_CHANGE
                else None,
                observations=Observations(**observed),
                answers=Answers(**answers),
                notes=notes,
            )
        )
    return events


# -- the 50 conditions, written by hand for the peers ----------------------------------------
# A condition is a disjunction of conjunctions of (feature, op, value) tests over the flat
# features guardrail computes (money in fen). A missing (None) feature makes a test false, as
# in guardrail. ``F(name)`` on the right compares two features.


@dataclass(frozen=True)
class F:
    key: str


YUAN = 100  # fen


def kinds(*names: str) -> tuple[str, str, tuple[str, ...]]:
    return ("kind", "in", names)


CW, CD, TR, RM = "cash_withdrawal", "cash_deposit", "transfer", "remittance"
TD, WR, IS, LC = (
    "term_deposit_early_withdrawal",
    "wealth_redemption",
    "insurance_surrender",
    "limit_change",
)
ON = True

Test = tuple[str, str, Any]
PEER_RULES: dict[str, list[list[Test]]] = {
    "large-cash-report": [[kinds(CW), ("window.cash_out_today", ">=", 50_000 * YUAN)]],
    "large-cash-deposit-report": [[kinds(CD), ("amount", ">=", 50_000 * YUAN)]],
    "elderly-large-cash": [
        [kinds(CW, TD), ("customer.age", ">=", 60), ("amount", ">=", 50_000 * YUAN)]
    ],
    "very-elderly-cash": [[kinds(CW), ("customer.age", ">=", 75), ("amount", ">=", 20_000 * YUAN)]],
    "inbound-then-cash-out": [
        [
            kinds(CW, TR),
            ("account.age_days", "<=", 30),
            ("history.inbound_24h", ">=", F("amount")),
            ("amount", ">=", 5_000 * YUAN),
        ]
    ],
    "new-account-large-out": [
        [kinds(TR, RM), ("account.age_days", "<=", 7), ("amount", ">=", 20_000 * YUAN)]
    ],
    "dormant-account-reactivated": [
        [
            kinds(CW, TR),
            ("account.days_since_last_activity", ">=", 365),
            ("amount", ">=", 20_000 * YUAN),
        ]
    ],
    "class-ii-large-transfer": [
        [kinds(TR), ("account.account_class", "==", "II"), ("amount", ">=", 10_000 * YUAN)]
    ],
    "many-outbound-24h": [[kinds(CW, TR, RM), ("window.out_count_24h", ">=", 5)]],
    "repeated-transfers-same-payee": [
        [
            kinds(TR, RM),
            ("window.transfers_to_payee_7d", ">=", 3),
            ("counterparty.party_type", "!=", "non_natural_person"),
        ]
    ],
    "first-seen-payee-elderly": [
        [
            kinds(TR, RM),
            ("counterparty.first_seen", "==", ON),
            ("amount", ">=", 50_000 * YUAN),
            ("customer.age", ">=", 60),
        ]
    ],
    "other-region-payee-elderly": [
        [
            kinds(TR, RM),
            ("counterparty.other_region", "==", ON),
            ("customer.is_elderly", "==", ON),
            ("amount", ">=", 20_000 * YUAN),
        ]
    ],
    "cross-border-large": [
        [kinds(RM), ("cross_border", "==", ON), ("amount", ">=", 30_000 * YUAN)]
    ],
    "foreign-currency-cash": [
        [kinds(CW), ("currency", "!=", "CNY"), ("amount", ">=", 10_000 * YUAN)]
    ],
    "off-hours-transaction": [
        [kinds(CW, TR, RM), ("event.local_hour", ">=", 20), ("amount", ">=", 10_000 * YUAN)],
        [kinds(CW, TR, RM), ("event.local_hour", "<", 7), ("amount", ">=", 10_000 * YUAN)],
    ],
    "limit-raise-elderly": [
        [kinds(LC), ("new_daily_limit", ">=", 200_000 * YUAN), ("customer.age", ">=", 60)]
    ],
    "early-term-withdrawal-elderly": [
        [kinds(TD), ("customer.age", ">=", 65), ("amount", ">=", 100_000 * YUAN)]
    ],
    "personal-to-business-investment": [
        [
            kinds(TR, RM),
            ("customer.party_type", "==", "natural_person"),
            ("counterparty.party_type", "==", "non_natural_person"),
            ("purpose.code", "in", ("investment", "deposit_takings")),
            ("amount", ">=", 50_000 * YUAN),
        ]
    ],
    "self-service-large-elderly": [
        [
            kinds(CW, TR),
            ("channel", "in", ("atm", "self_service")),
            ("customer.is_elderly", "==", ON),
            ("amount", ">=", 20_000 * YUAN),
        ]
    ],
    "on-phone-while-transacting": [
        [
            kinds(CW, TR, RM, TD),
            ("observations.on_phone", "==", ON),
            ("amount", ">=", 10_000 * YUAN),
        ],
        [
            kinds(CW, TR, RM, TD),
            ("observations.earpiece", "==", ON),
            ("amount", ">=", 10_000 * YUAN),
        ],
    ],
    "reading-from-phone": [
        [
            kinds(CW, TR, RM),
            ("observations.reading_from_phone", "==", ON),
            ("amount", ">=", 5_000 * YUAN),
        ]
    ],
    "companion-answers-elderly": [
        [
            kinds(CW, TR, RM, TD),
            ("observations.companion_answers", "==", ON),
            ("customer.age", ">=", 60),
        ]
    ],
    "screen-sharing": [[kinds(TR, RM, LC), ("observations.screen_sharing", "==", ON)]],
    "nervous-and-hurried": [
        [
            kinds(CW, TR, RM),
            ("observations.nervous", "==", ON),
            ("observations.hurried", "==", ON),
            ("amount", ">=", 20_000 * YUAN),
        ]
    ],
    "evasive-large": [
        [kinds(CW, TR, RM), ("observations.evasive", "==", ON), ("amount", ">=", 50_000 * YUAN)]
    ],
    "demands-instant-arrival": [
        [
            kinds(TR, RM),
            ("observations.demands_instant_arrival", "==", ON),
            ("amount", ">=", 30_000 * YUAN),
        ]
    ],
    "purpose-changed": [[("observations.purpose_changed", "==", ON)]],
    "refuses-family-contact-elderly": [
        [("observations.refuses_family_contact", "==", ON), ("customer.is_elderly", "==", ON)]
    ],
    "third-party-agent-present": [
        [kinds(IS, WR, TD), ("observations.third_party_agent_present", "==", ON)]
    ],
    "payee-only-takes-cash": [
        [
            kinds(CW),
            ("observations.payee_only_takes_cash", "==", ON),
            ("amount", ">=", 10_000 * YUAN),
        ]
    ],
    "group-with-same-purpose": [
        [kinds(CW, TR), ("observations.group_with_same_purpose", "==", ON)]
    ],
    "payee-involved-account": [
        [kinds(TR, RM), ("counterparty.account@involved_accounts", "==", ON)]
    ],
    "payee-fraud-phone": [[kinds(TR, RM), ("counterparty.phone@fraud_phones", "==", ON)]],
    "warned-customer-again": [
        [
            kinds(CW, TR, RM),
            ("customer.id@warned_customers", "==", ON),
            ("amount", ">=", 10_000 * YUAN),
        ]
    ],
    "safe-account-words": [[("any_text~safe_account", "==", ON)]],
    "high-return-words": [[kinds(TR, RM, CW, TD), ("any_text~high_return", "==", ON)]],
    "rebate-task-words": [[kinds(TR, RM), ("any_text~rebate_tasks", "==", ON)]],
    "pension-scam-words": [[("any_text~pension_scam", "==", ON), ("customer.age", ">=", 55)]],
    "loan-fee-words": [[kinds(TR, RM), ("any_text~loan_fee", "==", ON)]],
    "refund-scam-notes": [[kinds(TR, RM), ("notes~refund_scam", "==", ON)]],
    "credit-repair-purpose": [[("purpose.text~credit_repair", "==", ON)]],
    "surrender-agent": [
        [
            kinds(IS),
            ("observations.third_party_agent_present", "==", ON),
            ("amount", ">=", 10_000 * YUAN),
        ],
        [kinds(IS), ("notes~surrender_agent", "==", ON), ("amount", ">=", 10_000 * YUAN)],
    ],
    "house-purchase-really-investment": [
        [
            kinds(TR, RM, CW),
            ("purpose.code", "==", "house_purchase"),
            ("answers.stated_purpose", "==", "investment"),
        ],
        [
            kinds(TR, RM, CW),
            ("purpose.code", "==", "house_purchase"),
            ("answers.purpose_detail~high_return", "==", ON),
        ],
        [
            kinds(TR, RM, CW),
            ("purpose.code", "==", "house_purchase"),
            ("answers.promised_return_pct", ">=", 10),
        ],
    ],
    "unknown-payee-not-family": [
        [
            kinds(TR, RM),
            ("answers.knows_payee", "==", False),
            ("answers.family_aware", "==", False),
            ("counterparty.same_name", "==", False),
        ]
    ],
    "instructed-by-other": [
        [
            kinds(CW, TR, RM),
            ("answers.instructed_by_other", "==", ON),
            ("amount", ">=", 10_000 * YUAN),
        ]
    ],
    "told-to-keep-secret": [[("answers.told_to_keep_secret", "==", ON)]],
    "met-online-never-met": [
        [
            kinds(TR, RM),
            ("answers.payee_relationship", "==", "met_online"),
            ("answers.met_payee_in_person", "==", False),
        ]
    ],
    "payee-claims-official": [[kinds(TR, RM), ("answers.payee_relationship", "==", "official")]],
    "promised-high-return": [[("answers.promised_return_pct", ">=", 15)]],
    "family-support-unknown-payee": [
        [
            kinds(TR, RM),
            ("purpose.code", "==", "family_support"),
            ("answers.payee_relationship", "in", ("met_online", "unknown")),
        ]
    ],
}


def flat(key: str) -> str:
    """A feature key as a plain identifier both peers accept (no dots, ``~`` or ``@``)."""
    return re.sub(r"[^A-Za-z0-9]", "_", key)


def peer_features(features: dict[str, Any]) -> dict[str, Any]:
    return {flat(key): value for key, value in features.items()}


class RawDurable:
    """The 50 conditions as a hand-written durable-rules ruleset, driven through the C core.

    Same protocol as guardrail's backend (the only way to get every hit): assert the features
    as a fact, collect every activation, retract. No Host (its timer threads would dispatch
    actions elsewhere). Features arrive flat and precomputed; the fact carries the ones its
    rules read (as guardrail's backend does: the C core parses every property it is given),
    and missing ones are left out of it, which durable-rules treats as "no match".
    """

    _OPS: ClassVar[dict[str, str]] = {
        "!=": "$neq",
        "<": "$lt",
        "<=": "$lte",
        ">": "$gt",
        ">=": "$gte",
    }

    def __init__(self, rules: dict[str, list[list[Test]]]) -> None:
        self._names = {f"r{i}": rule_id for i, rule_id in enumerate(rules)}
        definition = {
            name: {"all": [{"m": self._any([self._all(c) for c in rules[rule_id]])}]}
            for name, rule_id in self._names.items()
        }
        self._handle = durable_core.create_ruleset(f"bench_raw_{id(self)}", json.dumps(definition))
        self._ids = itertools.count(1)
        self._read = {
            flat(item)
            for alternatives in rules.values()
            for tests in alternatives
            for key, _, value in tests
            for item in (key, value.key if isinstance(value, F) else key)
        }

    @staticmethod
    def _any(items: list[dict[str, Any]]) -> dict[str, Any]:
        return items[0] if len(items) == 1 else {"$or": items}

    def _all(self, tests: list[Test]) -> dict[str, Any]:
        items = [self._test(*test) for test in tests]
        return items[0] if len(items) == 1 else {"$and": items}

    def _test(self, key: str, op: str, value: Any) -> dict[str, Any]:
        slot = flat(key)
        if op == "in":
            return self._any([{slot: item} for item in value])
        operand = {"$m": flat(value.key)} if isinstance(value, F) else value
        return {slot: operand} if op == "==" else {self._OPS[op]: {slot: operand}}

    def prepare(self, features: dict[str, Any]) -> dict[str, Any]:
        return {
            key: value for key, value in features.items() if value is not None and key in self._read
        }

    def evaluate(self, fact: dict[str, Any]) -> set[str]:
        handle = self._handle
        fact["id"] = next(self._ids)
        fact["sid"] = "0"
        payload = json.dumps(fact)
        fired: set[str] = set()
        result = durable_core.assert_fact(handle, payload)
        if result[0] != 1:  # 1: no rule activated
            started = durable_core.start_action_for_state(handle, result[1])
            message = started[1] if started else None
            while message:
                fired.update(json.loads(message))
                message = durable_core.complete_and_start_action(handle, result[1])
        durable_core.retract_fact(handle, payload)
        return {self._names[name] for name in fired}


class ZenTable:
    """The 50 conditions as one zen-engine decision table (hit policy ``collect``).

    One input column per feature, one row per conjunction (a rule with an ``or`` gets one row
    per alternative), the rule id as output. Cells guard against null, because zen raises on
    ``null >= 60`` where guardrail's missing value simply makes the test false.
    Evaluated with the synchronous ``ZenEngine.evaluate`` from a loader that returns the
    pre-parsed ``ZenDecisionContent`` (the fastest synchronous path we found:
    ``ZenDecision.evaluate`` costs about ten times more per call in zen-engine 2.1).
    """

    def __init__(self, rules: dict[str, list[list[Test]]]) -> None:
        columns: dict[str, str] = {}
        rows = []
        for rule_id, alternatives in rules.items():
            for alternative in alternatives:
                cells: dict[str, list[str]] = {}
                for key, op, value in alternative:
                    column = columns.setdefault(key, f"c{len(columns)}")
                    cells.setdefault(column, []).append(self._cell(op, value))
                row = {"_id": f"row{len(rows)}", "out": json.dumps(rule_id)}
                row.update({column: " and ".join(parts) for column, parts in cells.items()})
                rows.append(row)
        for row in rows:
            for column in columns.values():
                row.setdefault(column, "")
        model = {
            "nodes": [
                {
                    "id": "request",
                    "type": "inputNode",
                    "name": "Request",
                    "position": {"x": 0, "y": 0},
                },
                {
                    "id": "rules",
                    "type": "decisionTableNode",
                    "name": "bench50",
                    "position": {"x": 300, "y": 0},
                    "content": {
                        "hitPolicy": "collect",
                        "inputs": [
                            {"id": c, "name": key, "field": flat(key)} for key, c in columns.items()
                        ],
                        "outputs": [{"id": "out", "name": "rule", "field": "rule"}],
                        "rules": rows,
                    },
                },
                {
                    "id": "response",
                    "type": "outputNode",
                    "name": "Response",
                    "position": {"x": 600, "y": 0},
                },
            ],
            "edges": [
                {"id": "e1", "sourceId": "request", "targetId": "rules", "type": "edge"},
                {"id": "e2", "sourceId": "rules", "targetId": "response", "type": "edge"},
            ],
        }
        self.rows = len(rows)
        self.model_json = json.dumps(model, ensure_ascii=False)
        content = zen.ZenDecisionContent(self.model_json)
        self._engine = zen.ZenEngine({"loader": lambda key: content})
        self.decision = self._engine.create_decision(self.model_json)

    @staticmethod
    def _cell(op: str, value: Any) -> str:
        if isinstance(value, F):
            other = flat(value.key)
            return f"$ != null and {other} != null and $ {op} {other}"
        if op == "in":
            return ", ".join(json.dumps(item) for item in value)
        literal = json.dumps(value)
        if op == "==":
            return literal
        return f"$ != null and $ {op} {literal}"

    def prepare(self, features: dict[str, Any]) -> dict[str, Any]:
        return features

    def evaluate(self, context: dict[str, Any]) -> set[str]:
        result = self._engine.evaluate("bench50", context)["result"]
        return {item["rule"] for item in result}


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    timings_ns: list[int]
    note: str = ""

    rounds: int = 1

    @property
    def calls_per_s(self) -> float:
        """Calls per second in the best round (as ``timeit`` takes the best of its repeats:
        on a shared machine the other rounds measure the neighbours' load)."""
        size = max(1, len(self.timings_ns) // max(1, self.rounds))
        chunks = [self.timings_ns[i : i + size] for i in range(0, len(self.timings_ns), size)]
        return max(len(chunk) / (sum(chunk) / 1e9) for chunk in chunks if chunk)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.timings_ns)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] / 1000

    @property
    def p50_us(self) -> float:
        return statistics.median(self.timings_ns) / 1000


def measure(
    call: Callable[[Any], object], inputs: Sequence[Any], rounds: int, warmup: int
) -> list[int]:
    """Nanoseconds per call (``time.perf_counter_ns``), ``rounds`` passes over ``inputs``."""
    return measure_alternating((call,), inputs, rounds, warmup)[0]


def measure_alternating(
    calls: Sequence[Callable[[Any], object]], inputs: Sequence[Any], rounds: int, warmup: int
) -> list[list[int]]:
    """``measure`` of each of ``calls``, their timed passes taking turns (when their ratio is
    wanted, a change of the machine's load during the run then falls on all of them)."""
    for call in calls:
        for item in itertools.islice(itertools.cycle(inputs), warmup):
            call(item)
    clock = time.perf_counter_ns
    timings: list[list[int]] = [[] for _ in calls]
    gc.collect()
    for _ in range(rounds):
        for call, spent in zip(calls, timings, strict=True):
            for item in inputs:
                started = clock()
                call(item)
                spent.append(clock() - started)
    return timings


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hit_set(guard: Guard, event: Event) -> set[str]:
    decision = guard.screen(event)
    if decision.failures:
        raise RuntimeError(f"{event.event_id}: screening failed: {decision.failures}")
    return {hit.rule_id for hit in decision.hits}


def check_agreement(
    events: Sequence[Event],
    guards: dict[str, Guard],
    peers: dict[str, RawDurable | ZenTable],
    features: list[dict],
) -> tuple[bool, dict[str, int]]:
    """Every engine must give the same hit set on every event; prints every disagreement."""
    agree = True
    counts: dict[str, int] = {}
    shown = 0
    for event, feats in zip(events, features, strict=True):
        results = {name: hit_set(guard, event) for name, guard in guards.items()}
        for name, peer in peers.items():
            results[name] = peer.evaluate(peer.prepare(peer_features(feats)))
        expected = results["screen/reference"]
        for rule_id in expected:
            counts[rule_id] = counts.get(rule_id, 0) + 1
        for name, got in results.items():
            if got != expected:
                agree = False
                if shown < 20:
                    shown += 1
                    print(
                        f"  DISAGREE {event.event_id} {name}: extra {sorted(got - expected)} "
                        f"missing {sorted(expected - got)}"
                    )
    return agree, counts


def print_table(rows: list[Row], zen_row: Row, durable_row: Row) -> None:
    header = (
        f"  {'engine':<44} {'calls/s':>10} {'p50 µs':>9} {'p99 µs':>9} {'÷ zen':>7} {'÷ raw dr':>8}"
        f"  (÷: throughput ratio)"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for row in rows:
        print(
            f"  {row.name:<44} {row.calls_per_s:>10,.0f} {row.p50_us:>9.1f}"
            f" {row.percentile(0.99):>9.1f}"
            f" {row.calls_per_s / zen_row.calls_per_s:>6.2f}×"
            f" {row.calls_per_s / durable_row.calls_per_s:>7.2f}×"
            + (f"  {row.note}" if row.note else "")
        )


# -- history ---------------------------------------------------------------------------------


def history_records(count: int, customers: int, seed: int = SEED + 1) -> Iterator[HistoryRecord]:
    """``count`` executed records over the six days before DAY, in time order."""
    rng = random.Random(seed)
    kinds = [K.CASH_WITHDRAWAL, K.CASH_DEPOSIT, K.TRANSFER, K.REMITTANCE]
    start = DAY - dt.timedelta(days=6)
    step = dt.timedelta(days=6) / count
    channels = list(Channel)
    for index in range(count):
        number = rng.randrange(customers)
        kind = rng.choice(kinds)
        payee = payee_of(number, rng.randrange(8)) if kind in PAYING else None
        yield HistoryRecord(
            event_id=f"H{index:08d}",
            customer_id=sys.intern(customer_id(number)),
            account_id=sys.intern(account_of(number)),
            kind=kind,
            direction=DIRECTION_OF_KIND[kind],
            channel=rng.choice(channels),
            amount_fen=rng.randrange(10_000, 2_000_000),
            timestamp=start + step * index,
            counterparty_account=None if payee is None else sys.intern(payee),
        )


def history_label(records: int) -> str:
    return f"{records // 1_000_000}M" if records % 1_000_000 == 0 else f"{records // 1000}k"


HISTORY_PER_CUSTOMER = 5  # the target's history: about five executed records per customer


def history_section(
    pack: Pack, events: list[Event], records: int, rounds: int, warmup: int, flagged: int
) -> list[Row]:
    """screen() with ``records`` in history, twice: spread over the bank's customers (about
    five each, the screened customers among them: the target), then all on the screened
    customers (about fifty each, when ``records`` allows it: a stress figure, where history
    also makes many more rules fire)."""
    spread = max(CUSTOMERS, records // HISTORY_PER_CUSTOMER)
    rows = history_rows(pack, events, records, spread, rounds, warmup, flagged, "history")
    if spread != CUSTOMERS:
        rows += history_rows(
            pack, events, records, CUSTOMERS, rounds, warmup, flagged, "dense history"
        )
    return rows


def history_rows(
    pack: Pack,
    events: list[Event],
    records: int,
    customers: int,
    rounds: int,
    warmup: int,
    flagged: int,
    name: str,
) -> list[Row]:
    print(
        f"\nscreen() with {records:,} executed records in history over six days, "
        f"{customers:,} customers (about {records / customers:.0f} each; the screened events' "
        f"customers are the first {CUSTOMERS:,})"
    )
    gc.collect()
    before = rss_mib()
    store = InMemoryHistoryStore(retention_for(list(pack.windows.values())))
    started = time.perf_counter()
    source = history_records(records, customers)
    while batch := list(islice(source, 20_000)):
        store.record_many(batch)
    seconds = time.perf_counter() - started
    gc.collect()
    after = rss_mib()
    print(
        f"  loaded {len(store):,} records in {seconds:.1f} s; RSS before {before:.0f} MiB, "
        f"after {after:.0f} MiB (+{after - before:.0f} MiB, "
        f"{(after - before) * 2**20 / max(len(store), 1):.0f} bytes/record)"
    )
    rows = []
    label = history_label(records)
    for backend in ("reference", "durable_rules"):
        guard = Guard(pack, backend=backend, history=store)
        if backend == "reference":  # the target's pair: rounds alternate, so drift hits both
            without = Guard(pack, backend=backend)
            full, none = measure_alternating((guard.screen, without.screen), events, rounds, warmup)
            rows.append(Row(f"screen() {backend}, {label} {name}", full, "full screen()", rounds))
            rows.append(
                Row(f"screen() {backend}, none beside {name}", none, "rounds alternate", rounds)
            )
            continue
        rows.append(
            Row(
                f"screen() {backend}, {label} {name}",
                measure(guard.screen, events, rounds, warmup),
                "full screen()",
                rounds,
            )
        )
    reference = Guard(pack, backend="reference", history=store)
    durable = Guard(pack, backend="durable_rules", history=store)
    hits = [hit_set(reference, e) for e in events]
    differ = [e.event_id for e, hit in zip(events, hits, strict=True) if hit != hit_set(durable, e)]
    print(
        f"  backends agree on {len(events) - len(differ)}/{len(events)} events; "
        f"{sum(map(len, hits))} hits in all, {sum(1 for h in hits if h)} events with at least "
        f"one hit ({flagged} without history)"
    )
    if differ:
        print(f"  DISAGREE on {differ[:10]}")
        raise SystemExit(1)
    del reference, durable, guard, store
    gc.collect()
    return rows


# -- main ------------------------------------------------------------------------------------


def profile(pack: Pack, events: list[Event], backend: str, top: int) -> None:
    guard = Guard(pack, backend=backend)
    for event in events[:200]:
        guard.screen(event)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        for event in events:
            guard.screen(event)
    profiler.disable()
    print(f"\ncProfile of screen() ({backend}, {3 * len(events)} calls), top {top} by own time")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)
    print(f"cProfile of screen() ({backend}), top {top} by cumulative time")
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer events, rounds and history records"
    )
    parser.add_argument(
        "--events", type=int, help="events in the workload (default 2000; quick 400)"
    )
    parser.add_argument(
        "--rounds", type=int, help="timed passes over the workload (default 5; quick 1)"
    )
    parser.add_argument(
        "--history-records", type=int, help="records for the history figure (default 1,000,000)"
    )
    parser.add_argument(
        "--no-history", action="store_true", help="skip the 1M-record history figure"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print cProfile hotspots of screen()"
    )
    args = parser.parse_args()
    count = args.events or (400 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 5)
    records = args.history_records or (100_000 if args.quick else 1_000_000)
    warmup = min(500, count)

    pack = load_pack(PACK_DIR)
    print(
        f"screen() benchmark: pack {pack.meta.name} ({len(pack.rules)} rules), "
        f"{count} events (seed {SEED}), "
        f"{rounds} timed round(s) after {warmup} warm-up calls"
    )
    print(
        f"python {sys.version.split()[0]} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.system()}; zen-engine via ZenEngine.evaluate; durable-rules C core"
    )
    print(
        "NOTE: absolute numbers depend on the machine and its load (p99 above all);\n"
        "      compare ratios within one run.\n"
        "NOTE: the peers get every feature precomputed once per event (enrichment, windows,\n"
        "      lexicons and watchlists are NOT in their timings): that is generous to them.\n"
        "      screen() pays for all of it, plus decide() and the pydantic Decision; the\n"
        "      'evaluate() only' rows are the engine share."
    )
    if set(PEER_RULES) != {rule.id for rule in pack.rules}:
        print(
            "peer rules differ from the pack:",
            sorted(set(PEER_RULES) ^ {r.id for r in pack.rules}),
        )
        raise SystemExit(1)

    started = time.perf_counter()
    events = make_events(count)
    print(f"workload built in {time.perf_counter() - started:.1f} s")
    guards = {
        "screen/reference": Guard(pack, backend="reference"),
        "screen/durable_rules": Guard(pack, backend="durable_rules"),
    }
    reference = guards["screen/reference"]
    features = [
        reference._plan.resolve(
            e, reference.history, reference.watchlists.snapshot(), complete=True
        ).features
        for e in events
    ]
    raw = RawDurable(PEER_RULES)
    table = ZenTable(PEER_RULES)
    peers: dict[str, RawDurable | ZenTable] = {"raw durable-rules": raw, "zen-engine": table}

    agree, counts = check_agreement(events, guards, peers, features)
    hits = sum(counts.values())
    flagged = sum(1 for event in events if hit_set(reference, event))
    print(
        f"hit sets: {'all four agree' if agree else 'DISAGREEMENT'} on {count} events; "
        f"{hits} hits, "
        f"{flagged} events with at least one hit, {len(counts)}/{len(pack.rules)} rules fire"
    )
    if not agree:
        raise SystemExit(1)
    silent = sorted({r.id for r in pack.rules} - set(counts))
    if silent:
        print(f"  rules that never fire on this workload: {', '.join(silent)}")

    raw_inputs = [raw.prepare(peer_features(f)) for f in features]
    zen_inputs = [table.prepare(peer_features(f)) for f in features]
    rows = [
        Row(
            "screen() reference backend",
            measure(guards["screen/reference"].screen, events, rounds, warmup),
            rounds=rounds,
        ),
        Row(
            "screen() durable_rules backend",
            measure(guards["screen/durable_rules"].screen, events, rounds, warmup),
            rounds=rounds,
        ),
        Row(
            "  reference evaluate() only",
            measure(reference.backend.evaluate, features, rounds, warmup),
            "precomputed features",
            rounds,
        ),
        Row(
            "  durable_rules evaluate() only",
            measure(guards["screen/durable_rules"].backend.evaluate, features, rounds, warmup),
            "precomputed features",
            rounds,
        ),
        Row(
            "raw durable-rules (hand-written ruleset)",
            measure(raw.evaluate, raw_inputs, rounds, warmup),
            rounds=rounds,
        ),
        Row(
            f"zen-engine (decision table, {table.rows} rows)",
            measure(table.evaluate, zen_inputs, rounds, warmup),
            rounds=rounds,
        ),
    ]
    slow_zen = table.decision
    rows.append(
        Row(
            "  zen-engine via ZenDecision.evaluate",
            measure(lambda ctx: slow_zen.evaluate(ctx), zen_inputs[: max(50, count // 10)], 1, 50),
            "same table, other sync API",
        )
    )
    if not args.no_history:
        rows.extend(history_section(pack, events, records, rounds, warmup, flagged))

    by_name = {row.name: row for row in rows}
    zen_row = by_name[f"zen-engine (decision table, {table.rows} rows)"]
    durable_row = by_name["raw durable-rules (hand-written ruleset)"]
    print(
        f"\nresults ({len(events)} events × {rounds} round(s) per row; 50 rules; calls/s from "
        "each row's best round, p50/p99 over all rounds)"
    )
    print_table(rows, zen_row, durable_row)

    print("\ntargets (issue #10, all measured in this run)")
    screen_row = by_name["screen() reference backend"]
    reference_eval = by_name["  reference evaluate() only"]
    durable_eval = by_name["  durable_rules evaluate() only"]
    targets = [
        (
            "screen() reference >= 2x zen-engine single-call throughput",
            screen_row.calls_per_s / zen_row.calls_per_s,
            ">=",
            2.0,
        ),
        (
            "screen() reference p50 <= half of zen-engine's p50 (ratio of p50s)",
            screen_row.p50_us / zen_row.p50_us,
            "<=",
            0.5,
        ),
        (
            "reference evaluate() >= 10x zen-engine throughput",
            reference_eval.calls_per_s / zen_row.calls_per_s,
            ">=",
            10.0,
        ),
        (
            "durable evaluate() within 1.2x of raw durable-rules (time ratio)",
            durable_row.calls_per_s / durable_eval.calls_per_s,
            "<=",
            1.2,
        ),
    ]
    history_row = by_name.get(f"screen() reference, {history_label(records)} history")
    if history_row is not None:
        beside = by_name["screen() reference, none beside history"]
        targets.append(
            (
                f"screen() with {records:,} history records <= 1.3x slower than with none "
                "(rounds alternating)",
                beside.calls_per_s / history_row.calls_per_s,
                "<=",
                1.3,
            )
        )
    else:
        print("  (history target not measured: --no-history)")
    for label, value, op, bound in targets:
        met = value >= bound if op == ">=" else value <= bound
        print(f"  {label}: {value:.2f} (target {op} {bound}): {'met' if met else 'NOT met'}")
    dense_row = by_name.get(f"screen() reference, {history_label(records)} dense history")
    if dense_row is not None:
        beside = by_name["screen() reference, none beside dense history"]
        print(
            f"  (no target) screen() with the {records:,} records on the screened customers "
            f"alone: {beside.calls_per_s / dense_row.calls_per_s:.2f}x slower than with none"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if args.profile:
        profile(pack, events, "reference", 30)


if __name__ == "__main__":
    main()
