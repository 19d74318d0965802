"""A deterministic synthetic stream of labelled counter events, for measuring a rule pack.

``generate(n, fraud_rate, seed)`` yields ``n`` lines of a labelled stream
(:class:`guardrail.model.stream.StreamLine`, the one line format) in timestamp order:
realistic legitimate traffic (pensions, salaries, shop takings, rent, tuition, family transfers,
a lawyer's business cash, matured products...) with a realistic age mix, and the scam typologies
of DOMAIN.md, each showing the counter signs it shows in real interceptions -- but only
sometimes, as in life, so no pack can reach perfect recall by reading the label off the event.

Each record says whether it is a counter request (``executed_history_hint = "if_allowed"``:
screen it; it is carried out only if the counter lets it through) or background history from
another channel (``"always"``: a pension or salary credit, the inbound credit into a mule's
account; it happened whatever the counter decides, and a replay records it without screening).

The same ``(n, fraud_rate, seed, start)`` always gives the same bytes: one ``random.Random(seed)``
drives everything, and nothing reads the clock or iterates a hash-ordered set.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TextIO

from guardrail.model.event import (
    OPENING_KINDS,
    Account,
    AccountClass,
    AccountOpening,
    Answers,
    Branch,
    Channel,
    Counterparty,
    Customer,
    Document,
    Event,
    FamilyConfirmation,
    Observations,
    PartyType,
    Purpose,
    PurposeCode,
    Relationship,
    Segment,
    ThirdParty,
    ThirdPartyRole,
    TransactionKind,
)
from guardrail.model.money import Money
from guardrail.model.stream import HistoryHint, Label, StreamLine, WhenAsked
from guardrail.sim.behaviours import (
    AmountSpec,
    Behaviours,
    LegitimateSpec,
    PayeeSpec,
    PayeeType,
    TypologySpec,
    load_behaviours,
)
from guardrail.sim.behaviours import StepSpec as BehaviourStep

SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
DEFAULT_START = dt.date(2025, 3, 3)
OPEN_HOUR, CLOSE_HOUR = 9, 17  # branch opening hours, local time
EVENTS_PER_DAY = 4000  # all branches together; sets how many days a stream of n events spans


class Typology(StrEnum):
    """The scam typologies of DOMAIN.md."""

    IMPERSONATION = "impersonation_police"  # 冒充公检法, "safe account"
    REBATE_TASKS = "rebate_tasks"  # 刷单返利, 做任务
    FAKE_INVESTMENT = "fake_investment_romance"  # 杀猪盘
    LOAN_FEES = "loan_fees_credit_repair"  # 贷款保证金, 解冻费, 注销校园贷, 征信修复
    ELDERLY_PRODUCTS = "elderly_health_pension"  # 保健品, 养老项目, 床位
    ILLEGAL_FUNDRAISING = "illegal_fundraising"  # 非法集资
    SURRENDER_AGENT = "insurance_surrender_agent"  # 代理退保黑产
    MONEY_MULE = "money_mule"  # 快进快出, 出租出借账户


TYPOLOGY_TITLES_ZH: dict[Typology, str] = {
    Typology.IMPERSONATION: "冒充公检法",
    Typology.REBATE_TASKS: "刷单返利",
    Typology.FAKE_INVESTMENT: "虚假投资理财/杀猪盘",
    Typology.LOAN_FEES: "虚假贷款/征信修复",
    Typology.ELDERLY_PRODUCTS: "养老诈骗/保健品",
    Typology.ILLEGAL_FUNDRAISING: "非法集资",
    Typology.SURRENDER_AGENT: "代理退保",
    Typology.MONEY_MULE: "涉诈账户/快进快出",
}

# The behaviours the stream is made of live in data files (guardrail/data/simulation, see
# guardrail.sim.behaviours); these views of the bundled files serve the hypothesis strategies.
_BUNDLED = load_behaviours()
TYPOLOGY_PHRASES: dict[Typology, tuple[str, ...]] = {
    Typology(spec.id): spec.phrases
    for spec in _BUNDLED.typologies
    if spec.id in Typology.__members__.values()
}
LEGITIMATE_PHRASES: dict[str, tuple[str, ...]] = {
    spec.id: spec.phrases for spec in _BUNDLED.legitimate if spec.phrases
}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国玉兰志强德福淑珍"

BRANCH_REGIONS: tuple[str, ...] = (
    "CN-ZJ",
    "CN-ZJ",
    "CN-ZJ",
    "CN-HE",
    "CN-HE",
    "CN-GD-SZ",
    "CN-GD-SZ",
    "CN-BJ",
    "CN-SH",
    "CN-SC",
)
OTHER_REGIONS: tuple[str, ...] = (
    "CN-YN",
    "CN-GX",
    "CN-FJ",
    "CN-HI",
    "CN-GZ",
    "CN-HL",
    "CN-XJ",
    "CN-JX",
)
BANKS: tuple[str, ...] = (
    "工商银行",
    "农业银行",
    "中国银行",
    "建设银行",
    "交通银行",
    "招商银行",
    "邮储银行",
    "农商银行",
)


class Persona(StrEnum):
    PENSIONER = "pensioner"
    WORKER = "worker"
    SHOPKEEPER = "shopkeeper"
    STUDENT = "student"
    PROFESSIONAL = "professional"  # lawyers, doctors, accountants
    COMPANY = "company"  # a non-natural person


# (persona, share of customers, relative visit frequency, age range)
_PERSONAS: tuple[tuple[Persona, float, float, tuple[int, int]], ...] = (
    (Persona.PENSIONER, 0.40, 1.2, (60, 92)),
    (Persona.WORKER, 0.30, 0.8, (22, 59)),
    (Persona.SHOPKEEPER, 0.10, 3.0, (28, 66)),
    (Persona.STUDENT, 0.08, 0.6, (18, 24)),
    (Persona.PROFESSIONAL, 0.07, 1.0, (27, 62)),
    (Persona.COMPANY, 0.05, 2.0, (0, 0)),
)


@dataclass(slots=True)
class _Profile:
    customer: Customer
    account: Account
    persona: Persona
    branch: Branch
    age: int
    payees: list[Counterparty] = field(default_factory=list)
    last_done: dict[str, dt.date] = field(default_factory=dict)  # monthly things happen monthly


@dataclass(order=True, slots=True)
class _Planned:
    timestamp: dt.datetime
    seq: int
    record: StreamLine = field(compare=False)


def _yuan(value: float, step: int = 1) -> Money:
    rounded = max(step, round(value / step) * step)
    return Money(value=Decimal(rounded).quantize(Decimal("0.01")))


class _World:
    """The branches, customers and random source behind one stream."""

    def __init__(self, rng: random.Random, n: int, start: dt.date) -> None:
        self.rng = rng
        self.start = start
        self.branches = [
            Branch(id=f"BR{index:03d}", region=region)
            for index, region in enumerate(BRANCH_REGIONS)
        ]
        self._serial = 0
        size = max(40, n // 6)
        self.pool: list[_Profile] = []
        weights: list[float] = []
        for persona, share, frequency, _ in _PERSONAS:
            for _ in range(max(2, round(size * share))):
                self.pool.append(self._new_profile(persona))
                weights.append(frequency * rng.lognormvariate(0, 0.6))
        self._cumulative: list[float] = []
        total = 0.0
        for weight in weights:
            total += weight
            self._cumulative.append(total)
        self.by_band: dict[str, list[_Profile]] = {
            "young": [],
            "middle": [],
            "senior": [],
            "elderly": [],
        }
        for profile in self.pool:
            if profile.persona is Persona.COMPANY:
                continue
            self.by_band[_band(profile.age)].append(profile)

    # -- people ----------------------------------------------------------------------------
    def _serial_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial:07d}"

    def name(self) -> str:
        rng = self.rng
        return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))

    def account_number(self) -> str:
        rng = self.rng
        digits = rng.choice((12, 15))
        return rng.choice(("6222", "6217", "6228", "6214", "6236")) + _digits(rng, digits)

    def birth_date(self, age: int) -> dt.date:
        return self.start - dt.timedelta(days=age * 365 + self.rng.randrange(365))

    def _new_profile(
        self,
        persona: Persona,
        *,
        age: int | None = None,
        opened_days_ago: int | None = None,
        dormant_days: int | None = None,
    ) -> _Profile:
        rng = self.rng
        ages = next(band for p, _, _, band in _PERSONAS if p is persona)
        if age is None:
            age = rng.randint(*ages) if persona is not Persona.COMPANY else 0
        branch = rng.choice(self.branches)
        if persona is Persona.COMPANY:
            customer = Customer(
                id=self._serial_id("K"),
                party_type=PartyType.NON_NATURAL_PERSON,
                segment=Segment.BUSINESS,
                region=branch.region,
                name=rng.choice(("", "杭州", "深圳", "石家庄")) + self.name() + "贸易有限公司",
            )
        else:
            segment = Segment.BUSINESS if persona is Persona.SHOPKEEPER else Segment.MASS
            if persona is Persona.PROFESSIONAL or rng.random() < 0.08:
                segment = Segment.AFFLUENT
            customer = Customer(
                id=self._serial_id("C"),
                birth_date=self.birth_date(age),
                segment=segment,
                region=branch.region,
                name=self.name(),
                phone="1" + rng.choice("3456789") + _digits(rng, 9),
            )
        if opened_days_ago is None:
            opened_days_ago = rng.randint(60, 365 * 20)
            if persona is Persona.STUDENT:
                opened_days_ago = rng.randint(10, 365 * 4)
        opened = self.start - dt.timedelta(days=opened_days_ago)
        last_activity = None
        if dormant_days is not None:
            last_activity = self.start - dt.timedelta(days=dormant_days)
        elif rng.random() < 0.5:
            last_activity = self.start - dt.timedelta(days=rng.randint(1, 40))
            last_activity = max(last_activity, opened)
        account = Account(
            id=self.account_number(),
            account_class=AccountClass.CORPORATE if persona is Persona.COMPANY else AccountClass.I,
            opened_on=opened,
            last_activity_on=last_activity,
        )
        return _Profile(customer, account, persona, branch, age)

    def pick_customer(self) -> _Profile:
        rng = self.rng
        index = _bisect(self._cumulative, rng.random() * self._cumulative[-1])
        return self.pool[index]

    def pick_victim(self, bands: Sequence[str]) -> _Profile:
        candidates = self.by_band[self.rng.choice(bands)]
        if not candidates:
            return self.pick_customer()
        return self.rng.choice(candidates)

    def mule(self) -> _Profile:
        rng = self.rng
        if rng.random() < 0.6:  # a new card, opened days ago
            return self._new_profile(
                Persona.STUDENT, age=rng.randint(18, 27), opened_days_ago=rng.randint(1, 25)
            )
        # a dormant card woken up
        return self._new_profile(
            Persona.WORKER,
            age=rng.randint(18, 35),
            opened_days_ago=rng.randint(400, 3000),
            dormant_days=rng.randint(200, 900),
        )

    # -- payees ----------------------------------------------------------------------------
    def person_payee(self, *, other_region: bool, same_name_as: str | None = None) -> Counterparty:
        rng = self.rng
        region = rng.choice(OTHER_REGIONS) if other_region else rng.choice(BRANCH_REGIONS)
        name = same_name_as if same_name_as is not None else self.name()
        return Counterparty(
            account=self.account_number(),
            name=name,
            bank=rng.choice(BANKS),
            region=region,
            same_name=same_name_as is not None,
        )

    def company_payee(self, name: str, *, region: str | None = None) -> Counterparty:
        rng = self.rng
        return Counterparty(
            account=_digits(rng, rng.choice((13, 15, 17))),
            name=name,
            bank=rng.choice(BANKS),
            region=region or rng.choice(BRANCH_REGIONS),
            same_name=False,
            party_type=PartyType.NON_NATURAL_PERSON,
        )

    def family_payee(self, profile: _Profile) -> Counterparty:
        if not profile.payees:
            for _ in range(self.rng.randint(1, 3)):
                profile.payees.append(self.person_payee(other_region=self.rng.random() < 0.3))
        return self.rng.choice(profile.payees)

    # -- time ------------------------------------------------------------------------------
    def moment(
        self, day: int, *, after: dt.datetime | None = None, within_minutes: int = 0
    ) -> dt.datetime:
        """A time during opening hours of ``day``, or shortly after ``after`` on the same day."""
        rng = self.rng
        opening = dt.datetime.combine(
            self.start + dt.timedelta(days=day), dt.time(OPEN_HOUR), tzinfo=SHANGHAI
        )
        closing = opening.replace(hour=CLOSE_HOUR)
        if after is not None:
            later = after + dt.timedelta(seconds=rng.randint(60, max(61, within_minutes * 60)))
            return min(later, closing - dt.timedelta(seconds=rng.randint(1, 60)))
        # busier in the morning: a triangular distribution leaning to 10:00
        hours = rng.triangular(0, CLOSE_HOUR - OPEN_HOUR, 1.2)
        return (opening + dt.timedelta(seconds=int(hours * 3600))).replace(microsecond=0)


def _digits(rng: random.Random, count: int) -> str:
    return f"{rng.randrange(10**count):0{count}d}"


def _bisect(cumulative: Sequence[float], value: float) -> int:
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _band(age: int) -> str:
    if age < 30:
        return "young"
    if age < 50:
        return "middle"
    if age < 60:
        return "senior"
    return "elderly"


class _Stream:
    """Plans episodes from the behaviour files into a timestamp-ordered heap."""

    def __init__(self, world: _World, behaviours: Behaviours) -> None:
        self.world = world
        self.rng = world.rng
        self.behaviours = behaviours
        self.heap: list[_Planned] = []
        self._seq = 0
        self.planned = 0
        self.planned_fraud = 0
        self._typology_weights = [spec.weight for spec in behaviours.typologies]
        self._legit = behaviours.legitimate_by_id()
        self._by_persona: dict[str, tuple[list[LegitimateSpec], list[float]]] = {}
        for spec in behaviours.legitimate:
            for persona, weight in spec.personas.items():
                specs, weights = self._by_persona.setdefault(persona, ([], []))
                specs.append(spec)
                weights.append(weight)
        self._collectors: dict[str, list[Counterparty]] = {}

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def _push(self, record: StreamLine) -> None:
        self._seq += 1
        heapq.heappush(self.heap, _Planned(record.event.timestamp, self._seq, record))
        self.planned += 1
        if record.label == "fraud":
            self.planned_fraud += 1

    # -- choosing what happens -------------------------------------------------------------
    def fraud(self, day: int) -> None:
        spec = self.rng.choices(self.behaviours.typologies, weights=self._typology_weights)[0]
        group = spec.group
        size = 1 if group is None else self.rng.randint(*group.size)
        anchor = self.world.moment(day)
        branch: Branch | None = None
        for member in range(size):
            victim = self._victim(spec)
            if group is not None:
                if branch is None:
                    branch = victim.branch
                victim.branch = branch
                when = anchor + dt.timedelta(
                    minutes=self.rng.randint(0, group.within_minutes) if member else 0
                )
            else:
                when = anchor
            self._play(spec.id, spec, victim, day, when, "fraud")

    def legitimate(self, day: int, behaviour: str | None = None) -> None:
        profile = self.world.pick_customer()
        self._legitimate(profile, day, self.world.moment(day), behaviour)

    def _legitimate(
        self, profile: _Profile, day: int, when: dt.datetime, behaviour: str | None = None
    ) -> None:
        if behaviour is None:
            specs, weights = self._by_persona.get(profile.persona.value, ([], []))
            if not specs:
                return
            spec = self.rng.choices(specs, weights=weights)[0]
        else:
            spec = self._legit[behaviour]
        self._play(None, spec, profile, day, when, "legitimate")

    def _victim(self, spec: TypologySpec) -> _Profile:
        if spec.victims.mule:
            return self.world.mule()
        return self.world.pick_victim(spec.victims.bands)

    # -- playing an episode ----------------------------------------------------------------
    def _play(
        self,
        typology: str | None,
        spec: TypologySpec | LegitimateSpec,
        profile: _Profile,
        day: int,
        anchor: dt.datetime,
        label: Label,
    ) -> None:
        rng = self.rng
        variant = rng.choices(spec.variants, weights=[v.weight for v in spec.variants])[0]
        payees: dict[str, Counterparty | None] = {
            name: self._payee(payee, profile, typology) for name, payee in spec.payees.items()
        }
        amounts: dict[str, float] = {}
        previous = anchor
        for step in variant.steps:
            if not self.chance(step.chance):
                continue
            what = f"{spec.id}/{step.kind[0].value}"
            if step.once_days is not None and not self._once(profile, what, anchor, step):
                if step.fallback is not None:
                    self._legitimate(profile, day, anchor, step.fallback)
                    return
                continue
            count = rng.randint(*step.repeat)
            payee = self._step_payee(step, payees, profile, typology)
            amount = self._amount(step.amount, amounts, count) if step.amount else 0.0
            if step.name is not None:
                amounts[step.name] = amount
            for index in range(count):
                if index and self.chance(step.change_payee):
                    payee = self._step_payee(step, {}, profile, typology, fresh=True)
                when = self._when(step, day, anchor, previous, index)
                previous = max(previous, when) if step.before_minutes is None else previous
                self._emit(
                    typology,
                    spec,
                    variant.label,
                    step,
                    profile,
                    when,
                    amount,
                    payee,
                    label,
                    amounts,
                )
                if step.amount is not None and step.amount.growth != (1.0, 1.0):
                    amount *= rng.uniform(*step.amount.growth)
                if step.amount is not None and step.amount.per_repeat:
                    amount += float(step.amount.median or 0) * step.amount.per_repeat

    def _once(self, profile: _Profile, what: str, when: dt.datetime, step: BehaviourStep) -> bool:
        last = profile.last_done.get(what)
        days = step.once_days or 0
        if last is not None and (when.date() - last).days < days:
            return False
        profile.last_done[what] = when.date()
        return True

    def _when(
        self,
        step: BehaviourStep,
        day: int,
        anchor: dt.datetime,
        previous: dt.datetime,
        index: int,
    ) -> dt.datetime:
        rng = self.rng
        if step.before_minutes is not None:
            return anchor - dt.timedelta(minutes=rng.randint(*step.before_minutes))
        offset = step.day_offset + index * step.repeat_days
        if offset:
            return self.world.moment(day + offset)
        if step.after_minutes is not None or index:
            low, high = step.after_minutes or (1, 20)
            return self.world.moment(day, after=previous, within_minutes=rng.randint(low, high))
        return anchor

    def _amount(self, spec: AmountSpec, named: Mapping[str, float], count: int) -> float:
        rng = self.rng
        if spec.of is not None:
            base = named.get(spec.of, 0.0) * rng.uniform(*spec.share)
            return base / count if spec.split else base
        if spec.choice:
            return rng.choice(spec.choice)
        median = float(spec.median or 0)
        return min(5_000_000.0, rng.lognormvariate(math.log(median), spec.sigma))

    def _payee(
        self, spec: PayeeSpec, profile: _Profile, typology: str | None
    ) -> Counterparty | None:
        world = self.world
        region = profile.branch.region if spec.region == "branch" else None
        if spec.type is PayeeType.NONE:
            return None
        if spec.type is PayeeType.PERSON:
            return world.person_payee(other_region=self.chance(spec.other_region))
        if spec.type is PayeeType.COMPANY:
            return world.company_payee(world.name() + spec.suffix, region=region)
        if spec.type is PayeeType.SELF:
            return world.person_payee(other_region=False, same_name_as=profile.customer.name)
        if spec.type is PayeeType.FAMILY:
            return world.family_payee(profile)
        if spec.type is PayeeType.LANDLORD:
            if not profile.payees:
                profile.payees.append(world.person_payee(other_region=False))
            return profile.payees[0]
        if spec.type is PayeeType.SUPPLIER:
            if profile.payees and self.chance(0.7):
                return profile.payees[0]
            supplier = world.company_payee(world.name() + (spec.suffix or "商贸有限公司"))
            if not profile.payees:
                profile.payees.append(supplier)
            return supplier
        # collector: a few personal accounts that every episode of the typology pays into
        pool = self._collectors.setdefault(typology or "", [])
        if len(pool) < 3 or self.chance(0.3):
            pool.append(world.person_payee(other_region=self.chance(spec.other_region)))
        return self.rng.choice(pool[-3:])

    def _step_payee(
        self,
        step: BehaviourStep,
        payees: Mapping[str, Counterparty | None],
        profile: _Profile,
        typology: str | None,
        *,
        fresh: bool = False,
    ) -> Counterparty | None:
        if step.payee is None:
            return None
        if isinstance(step.payee, str):
            if fresh:
                return self.world.person_payee(other_region=True)
            return payees.get(step.payee)
        return self._payee(step.payee, profile, typology)

    def _emit(
        self,
        typology: str | None,
        spec: TypologySpec | LegitimateSpec,
        variant: str,
        step: BehaviourStep,
        profile: _Profile,
        when: dt.datetime,
        amount: float,
        payee: Counterparty | None,
        label: Label,
        named: Mapping[str, float],
    ) -> None:
        rng = self.rng
        kind = rng.choice(step.kind)
        counter = step.channel is Channel.COUNTER
        phrases = spec.phrases
        text = ""
        if phrases and self.chance(step.text):
            text = step.fixed_text or rng.choice(phrases)
        notes = rng.choice(phrases) if phrases and self.chance(step.notes) else ""
        money = (
            _yuan(amount, step.amount.step)
            if step.amount is not None and amount >= 1
            else Money(value=Decimal(str(round(amount, 2))).quantize(Decimal("0.01")))
        )
        limit = None
        if step.new_daily_limit is not None:
            raw = self._amount(step.new_daily_limit, named, 1)
            limit = _yuan(max(raw, 50000.0), step.new_daily_limit.step)
        observations = (
            Observations(**{k: self.chance(v) for k, v in step.observations.items()})
            if step.observations
            else self._everyday_observations(profile)
            if label == "legitimate" and counter
            else Observations()
        )
        opening = None
        if step.opening is not None and kind in OPENING_KINDS:
            opening = AccountOpening(
                purpose=rng.choice(step.opening.purpose),
                accounts_at_other_banks=rng.randint(*step.opening.accounts_at_other_banks),
                opened_elsewhere_last_30d=rng.randint(*step.opening.opened_elsewhere_last_30d),
            )
        parties = tuple(
            ThirdParty(
                role=party.role,
                phone=(
                    _LISTED_AGENT_PHONE
                    if self.chance(party.listed_phone)
                    else "1" + rng.choice("3456789") + _digits(rng, 9)
                ),
                relationship=Relationship.BUSINESS
                if party.role is ThirdPartyRole.EMPLOYER
                else None,
                answers_for_customer=self.chance(party.answers_for_customer),
            )
            for party in step.third_parties
            if self.chance(party.chance)
        )
        purpose_code = rng.choice(step.purpose) if step.purpose else None
        event = Event(
            event_id="pending",
            kind=kind,
            amount=money,
            channel=step.channel,
            timestamp=when,
            branch=profile.branch,
            teller_id=f"{profile.branch.id}-T{rng.randint(1, 6)}" if counter else "SYSTEM",
            customer=profile.customer,
            account=profile.account,
            counterparty=None if kind in OPENING_KINDS else payee,
            purpose=None if purpose_code is None else Purpose(code=purpose_code, text=text),
            new_daily_limit=limit if kind is TransactionKind.LIMIT_CHANGE else None,
            observations=observations,
            notes=notes,
            opening=opening,
            third_parties=parties,
        )
        when_asked = None
        if step.answers is not None and counter:
            when_asked = self._when_asked(step, purpose_code, phrases)
        hint: HistoryHint = "if_allowed" if counter else "always"
        name = f"{typology}/{variant}" if typology is not None else spec.id
        self._push(
            StreamLine(
                label=label,
                typology=typology,
                scenario=name,
                executed_history_hint=hint,
                event=event,
                when_asked=when_asked,
            )
        )

    def _everyday_observations(self, profile: _Profile) -> Observations:
        """Innocent customers are on the phone, hurried or anxious too, now and then."""
        return Observations(
            on_phone=self.chance(0.04),
            nervous=self.chance(0.01 if profile.age < 75 else 0.03),
            hurried=self.chance(0.03),
            companion_answers=profile.age >= 80 and self.chance(0.3),
        )

    def _when_asked(
        self, step: BehaviourStep, purpose: PurposeCode | None, phrases: Sequence[str]
    ) -> WhenAsked:
        spec = step.answers
        assert spec is not None
        rng = self.rng
        if spec.style == "truthful":
            family = spec.relationship is Relationship.FAMILY
            answers = Answers(
                stated_purpose=purpose,
                knows_payee=spec.knows_payee,
                payee_relationship=Relationship.FAMILY
                if family
                else spec.relationship
                if spec.knows_payee and spec.relationship is not Relationship.UNKNOWN
                else Relationship.BUSINESS,
                met_payee_in_person=spec.knows_payee,
                instructed_by_other=False,
                told_to_keep_secret=False,
                family_aware=True,
                paid_to_open=False,
                lends_account=False,
            )
            reassure = step.reassure
            documents: tuple[Document, ...] = ()
            confirmation = None
            if reassure is not None:
                documents = tuple(
                    Document(kind=kind, verified=self.chance(0.9))
                    for kind, probability in reassure.documents.items()
                    if self.chance(probability)
                )
                present = self.chance(reassure.family_present)
                by_phone = not present and self.chance(reassure.family_by_phone)
                if present or by_phone:
                    confirmation = FamilyConfirmation(
                        present=present, reached_by_phone=by_phone, confirms=True
                    )
            return WhenAsked(answers=answers, documents=documents, family=confirmation)
        # a victim: the coached story, sometimes the truth
        honest = self.chance(spec.honesty)
        detail = rng.choice(phrases) if honest and phrases and self.chance(spec.detail) else None
        answers = Answers(
            stated_purpose=spec.stated_purpose if honest else purpose,
            purpose_detail=detail,
            knows_payee=not honest and self.chance(0.6),
            payee_relationship=spec.relationship if honest else Relationship.FRIEND,
            met_payee_in_person=False if honest else None,
            instructed_by_other=honest and self.chance(0.7),
            told_to_keep_secret=honest and self.chance(0.5),
            family_aware=not (honest or self.chance(0.5)),
            promised_return_pct=(
                None if spec.promised is None or not honest else rng.randint(*spec.promised)
            ),
            paid_to_open=self.chance(spec.paid_to_open) if spec.paid_to_open else None,
            lends_account=self.chance(spec.lends_account) if spec.lends_account else None,
        )
        return WhenAsked(answers=answers)


_LISTED_AGENT_PHONE = "13900000001"  # the baseline pack's demo surrender-agent list


def generate(
    n: int,
    fraud_rate: float,
    seed: int,
    *,
    start: dt.date = DEFAULT_START,
    per_day: int = EVENTS_PER_DAY,
    behaviours: Behaviours | None = None,
) -> Iterator[StreamLine]:
    """``n`` labelled records in timestamp order, about ``fraud_rate`` of them fraud.

    The stream spans ``ceil(n / per_day)`` days from ``start``; customers come back
    several times over those days, so windows and history features see real histories.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    if not 0.0 <= fraud_rate <= 1.0:
        raise ValueError("fraud_rate must be between 0 and 1")
    rng = random.Random(seed)
    world = _World(rng, n, start)
    stream = _Stream(world, behaviours if behaviours is not None else _BUNDLED)
    if per_day < 1:
        raise ValueError("per_day must be at least 1")
    days = max(1, math.ceil(n / per_day))
    daily = n / days
    emitted = 0
    day = 0
    while emitted < n:
        # plan this day's visits (more than enough: episodes spill into later days)
        quota = daily * (day + 1) if day < days else math.inf
        while stream.planned < min(quota, n + 0.0) and day < days:
            if _want_fraud(stream, fraud_rate, rng):
                stream.fraud(day)
            else:
                stream.legitimate(day)
        cutoff = dt.datetime.combine(
            start + dt.timedelta(days=day + 1), dt.time(0), tzinfo=SHANGHAI
        )
        while stream.heap and (day >= days or stream.heap[0].timestamp < cutoff) and emitted < n:
            planned = heapq.heappop(stream.heap)
            emitted += 1
            yield _with_id(planned.record, seed, emitted)
        if day >= days and not stream.heap:
            break
        day += 1


def _want_fraud(stream: _Stream, fraud_rate: float, rng: random.Random) -> bool:
    """Keep the fraud share close to ``fraud_rate`` while spreading fraud at random."""
    if fraud_rate <= 0.0:
        return False
    if fraud_rate >= 1.0:
        return True
    deficit = fraud_rate * (stream.planned + 1) - stream.planned_fraud
    return deficit >= rng.uniform(0.0, 4.0)


def _with_id(record: StreamLine, seed: int, index: int) -> StreamLine:
    event = record.event.model_copy(update={"event_id": f"S{seed}-{index:08d}"})
    return record.model_copy(update={"event": event})


def write_jsonl(records: Iterator[StreamLine], out: TextIO) -> int:
    """Write records one JSON object a line; returns how many were written."""
    count = 0
    for record in records:
        out.write(record.to_json())
        out.write("\n")
        count += 1
    return count
