"""A deterministic synthetic stream of labelled counter events, for measuring a rule pack.

``generate(n, fraud_rate, seed)`` yields ``n`` :class:`LabelledEvent` records in timestamp order:
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
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Literal, TextIO

from guardrail.model.event import (
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
from guardrail.model.money import Money

Label = Literal["fraud", "legitimate"]
HistoryHint = Literal["if_allowed", "always"]

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

# What the purpose text or the teller's notes say, typology by typology (typical wording).
TYPOLOGY_PHRASES: dict[Typology, tuple[str, ...]] = {
    Typology.IMPERSONATION: (
        "转到安全账户配合调查",
        "公安说我涉嫌洗钱，要资金清查",
        "检察院的人让我把钱转过去核查",
        "账户要被冻结，先转到安全账户",
        "有通缉令，需要配合调查",
    ),
    Typology.REBATE_TASKS: (
        "刷单返利",
        "做任务返佣金",
        "兼职刷单，完成任务就返钱",
        "平台说再做一单就能提现",
        "点赞关注做任务",
    ),
    Typology.FAKE_INVESTMENT: (
        "网友带我投资项目，高收益",
        "男朋友介绍的投资平台充值",
        "高回报理财，稳赚不赔",
        "数字货币投资，年化收益很高",
        "平台充值，导师说保本保息",
    ),
    Typology.LOAN_FEES: (
        "贷款要先交保证金",
        "交解冻费才能放款",
        "注销校园贷，不然影响征信",
        "征信修复费用",
        "验证还款能力的流水",
    ),
    Typology.ELDERLY_PRODUCTS: (
        "买保健品",
        "养老公寓买床位",
        "养老项目投资，年化收益百分之十五",
        "以房养老项目",
        "老年旅游团预付款",
    ),
    Typology.ILLEGAL_FUNDRAISING: (
        "林业种植项目，种树年收益最高百分之三十",
        "原始股投资",
        "消费返利，买得越多返得越多",
        "私募基金认购，保本保息",
        "预付卡充值有高额返利",
    ),
    Typology.SURRENDER_AGENT: (
        "全额退保",
        "维权代理说可以全额退",
        "代理退保，退了再买更好的产品",
        "找了退保公司帮忙",
    ),
    Typology.MONEY_MULE: (
        "帮朋友取钱",
        "朋友借用一下卡",
        "兼职走账",
        "老板的货款",
        "取现给朋友",
    ),
}

LEGITIMATE_PHRASES: dict[str, tuple[str, ...]] = {
    "pension_cash": ("取养老金", "生活费", "买菜零用", "取点现金过节"),
    "salary_rent": ("房租", "交三月份房租", "房租和物业费"),
    "shop_takings": ("店里营业款", "营业款存入", "超市货款"),
    "tuition": ("孩子学费", "大学学费和住宿费", "培训班学费"),
    "family_transfer": ("给女儿生活费", "给父母的钱", "儿子结婚用", "家里装修"),
    "lawyer_cash": ("律师事务所业务备用金", "案件执行款备用", "差旅备用金"),
    "medical": ("住院押金", "手术费", "看病"),
    "house_purchase": ("首付款", "购房定金", "房款"),
    "matured_product": ("理财到期取出", "理财自动续期了，想取出来", "到期赎回"),
    "business_transfer": ("货款", "支付供应商货款", "装修工程款"),
    "car_purchase": ("买车首付", "购车款"),
    "securities": ("转入证券账户", "买国债"),
    "insurance_own": ("不想继续交了，退保", "保单到期不续"),
    "account_opening": ("新开工资卡", "开卡", "学校要求开卡"),
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


@dataclass(frozen=True, slots=True)
class LabelledEvent:
    """One line of a labelled stream."""

    label: Label
    typology: str | None  # a Typology value for fraud; None for legitimate traffic
    scenario: str  # what the record is, e.g. "pension_cash" or "impersonation_police/transfer"
    executed_history_hint: HistoryHint
    event: Event

    def to_json(self) -> str:
        """The record as one compact JSON line (no newline)."""
        return json.dumps(
            {
                "label": self.label,
                "typology": self.typology,
                "scenario": self.scenario,
                "executed_history_hint": self.executed_history_hint,
                "event": self.event.model_dump(mode="json", exclude_defaults=True),
            },
            ensure_ascii=False,
            separators=(",", ":"),
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
    record: LabelledEvent = field(compare=False)


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
    """Plans scenarios into a timestamp-ordered heap and builds their events."""

    def __init__(self, world: _World) -> None:
        self.world = world
        self.rng = world.rng
        self.heap: list[_Planned] = []
        self._seq = 0
        self.planned = 0
        self.planned_fraud = 0

    # -- building one event ----------------------------------------------------------------
    def add(
        self,
        profile: _Profile,
        kind: TransactionKind,
        amount: Money,
        timestamp: dt.datetime,
        *,
        label: Label,
        scenario: str,
        typology: Typology | None = None,
        channel: Channel = Channel.COUNTER,
        counterparty: Counterparty | None = None,
        purpose: PurposeCode | None = None,
        text: str = "",
        observations: Observations | None = None,
        answers: Answers | None = None,
        notes: str = "",
        new_daily_limit: Money | None = None,
        account: Account | None = None,
    ) -> None:
        rng = self.rng
        branch = profile.branch
        counter = channel is Channel.COUNTER
        event = Event(
            event_id="pending",
            kind=kind,
            amount=amount,
            channel=channel,
            timestamp=timestamp,
            branch=branch,
            teller_id=f"{branch.id}-T{rng.randint(1, 6)}" if counter else "SYSTEM",
            customer=profile.customer,
            account=account or profile.account,
            counterparty=counterparty,
            purpose=None if purpose is None else Purpose(code=purpose, text=text),
            cross_border=False,
            new_daily_limit=new_daily_limit,
            observations=observations or Observations(),
            answers=answers or Answers(),
            notes=notes,
        )
        hint: HistoryHint = "if_allowed" if counter else "always"
        record = LabelledEvent(
            label, None if typology is None else typology.value, scenario, hint, event
        )
        self._seq += 1
        heapq.heappush(self.heap, _Planned(timestamp, self._seq, record))
        self.planned += 1
        if label == "fraud":
            self.planned_fraud += 1

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def once(self, profile: _Profile, what: str, when: dt.datetime, days: int = 25) -> bool:
        """True (and remembered) unless ``profile`` did ``what`` within the last ``days``."""
        last = profile.last_done.get(what)
        if last is not None and (when.date() - last).days < days:
            return False
        profile.last_done[what] = when.date()
        return True

    def small_cash(self, profile: _Profile, when: dt.datetime) -> None:
        self._cash(profile, when, "everyday_cash", PurposeCode.LIVING_EXPENSES, 1000)

    def amount(
        self, median: float, sigma: float, *, step: int = 100, cap: float = 5_000_000
    ) -> Money:
        """A log-normal amount (mostly small, long tail) rounded to ``step`` yuan."""
        return _yuan(min(cap, self.rng.lognormvariate(math.log(median), sigma)), step)

    def legit_answers(self, purpose: PurposeCode, *, knows: bool = True) -> Answers:
        if not self.chance(0.3):  # the questionnaire is not run for most requests
            return Answers()
        return Answers(
            stated_purpose=purpose,
            knows_payee=knows,
            payee_relationship=Relationship.FAMILY if knows else Relationship.BUSINESS,
            met_payee_in_person=knows,
            instructed_by_other=False,
            told_to_keep_secret=False,
            family_aware=True,
        )

    def legit_observations(self, profile: _Profile) -> Observations:
        """Innocent customers are on the phone, hurried or anxious too, now and then."""
        return Observations(
            on_phone=self.chance(0.04),
            nervous=self.chance(0.01 if profile.age < 75 else 0.03),
            hurried=self.chance(0.03),
            companion_answers=profile.age >= 80 and self.chance(0.3),
        )

    # -- legitimate traffic ----------------------------------------------------------------
    def legitimate(self, day: int) -> None:
        world, rng = self.world, self.rng
        profile = world.pick_customer()
        persona = profile.persona
        when = world.moment(day)
        choose = rng.random()
        if persona is Persona.PENSIONER:
            if choose < 0.5:
                self._pension_cash(profile, day, when)
            elif choose < 0.62:
                self._family_transfer(profile, when)
            elif choose < 0.72:
                self._matured_product(profile, when)
            elif choose < 0.8:
                self._medical(profile, when)
            elif choose < 0.9:
                self._deposit(profile, when, "pension_deposit", PurposeCode.LIVING_EXPENSES, 3000)
            elif choose < 0.95:
                self._house(profile, when)
            else:
                self._insurance_own(profile, when)
        elif persona is Persona.SHOPKEEPER:
            if choose < 0.7:
                self._deposit(
                    profile, when, "shop_takings", PurposeCode.DEPOSIT_TAKINGS, 6000, sigma=0.9
                )
            elif choose < 0.85:
                self._business_transfer(profile, when)
            else:
                self._cash(profile, when, "business_cash", PurposeCode.BUSINESS, 8000)
        elif persona is Persona.COMPANY:
            if choose < 0.6:
                self._business_transfer(profile, when)
            else:
                self._deposit(profile, when, "company_deposit", PurposeCode.DEPOSIT_TAKINGS, 20000)
        elif persona is Persona.STUDENT:
            if choose < 0.35:
                self._tuition(profile, day, when)
            elif choose < 0.55:
                self._account_opening(profile, when)
            elif choose < 0.85:
                self._cash(profile, when, "student_cash", PurposeCode.LIVING_EXPENSES, 500)
            else:
                self._family_transfer(profile, when)
        elif persona is Persona.PROFESSIONAL:
            if choose < 0.35:
                self._lawyer_cash(profile, when)
            elif choose < 0.6:
                self._business_transfer(profile, when)
            elif choose < 0.75:
                self._securities(profile, when)
            else:
                self._family_transfer(profile, when)
        else:  # workers
            if choose < 0.3:
                self._salary_rent(profile, day, when)
            elif choose < 0.5:
                self._family_transfer(profile, when)
            elif choose < 0.65:
                self._cash(profile, when, "worker_cash", PurposeCode.LIVING_EXPENSES, 1500)
            elif choose < 0.75:
                self._house(profile, when)
            elif choose < 0.82:
                self._car(profile, when)
            elif choose < 0.9:
                self._limit_change(profile, when)
            elif choose < 0.95:
                self._medical(profile, when)
            else:
                self._tuition(profile, day, when)

    def _text(self, key: str) -> str:
        return self.rng.choice(LEGITIMATE_PHRASES[key]) if self.chance(0.6) else ""

    def _pension_cash(self, profile: _Profile, day: int, when: dt.datetime) -> None:
        if self.chance(0.5) and self.once(profile, "pension", when):  # credited, then cash
            credit = self.amount(4200, 0.4, step=1)
            early = when.replace(hour=OPEN_HOUR) - dt.timedelta(hours=3)
            self.add(
                profile,
                TransactionKind.CASH_DEPOSIT,
                credit,
                early,
                label="legitimate",
                scenario="pension_credit",
                channel=Channel.ONLINE,
                purpose=PurposeCode.PENSION,
            )
        amount = self.amount(2000, 0.9)
        if self.chance(0.04):  # savings for a grandchild's wedding, a car, a funeral
            amount = self.amount(60000, 0.5, step=1000)
        self.add(
            profile,
            TransactionKind.CASH_WITHDRAWAL,
            amount,
            when,
            label="legitimate",
            scenario="pension_cash",
            purpose=PurposeCode.LIVING_EXPENSES,
            text=self._text("pension_cash"),
            observations=self.legit_observations(profile),
            answers=self.legit_answers(PurposeCode.LIVING_EXPENSES),
        )

    def _family_transfer(self, profile: _Profile, when: dt.datetime) -> None:
        kind = TransactionKind.TRANSFER if self.chance(0.85) else TransactionKind.REMITTANCE
        self.add(
            profile,
            kind,
            self.amount(3000, 1.1),
            when,
            label="legitimate",
            scenario="family_transfer",
            counterparty=self.world.family_payee(profile),
            purpose=PurposeCode.FAMILY_SUPPORT,
            text=self._text("family_transfer"),
            observations=self.legit_observations(profile),
            answers=self.legit_answers(PurposeCode.FAMILY_SUPPORT),
        )

    def _matured_product(self, profile: _Profile, when: dt.datetime) -> None:
        if not self.once(profile, "matured_product", when, 25):
            self.small_cash(profile, when)
            return
        # 001_6b9bfe12de2be323.txt: an angry customer whose product rolled over; not a victim.
        self.add(
            profile,
            TransactionKind.WEALTH_REDEMPTION,
            self.amount(80000, 0.8, step=1000),
            when,
            label="legitimate",
            scenario="matured_product",
            purpose=PurposeCode.INVESTMENT,
            text=self._text("matured_product"),
            observations=Observations(hurried=self.chance(0.3), nervous=self.chance(0.1)),
            answers=self.legit_answers(PurposeCode.INVESTMENT),
        )

    def _medical(self, profile: _Profile, when: dt.datetime) -> None:
        kind = (
            TransactionKind.TERM_DEPOSIT_EARLY_WITHDRAWAL
            if self.chance(0.4)
            else TransactionKind.CASH_WITHDRAWAL
        )
        self.add(
            profile,
            kind,
            self.amount(30000, 0.9, step=1000),
            when,
            label="legitimate",
            scenario="medical",
            purpose=PurposeCode.MEDICAL,
            text=self._text("medical"),
            observations=Observations(
                hurried=self.chance(0.3), nervous=self.chance(0.15), on_phone=self.chance(0.1)
            ),
            answers=self.legit_answers(PurposeCode.MEDICAL),
        )

    def _deposit(
        self,
        profile: _Profile,
        when: dt.datetime,
        scenario: str,
        purpose: PurposeCode,
        median: float,
        *,
        sigma: float = 1.0,
    ) -> None:
        self.add(
            profile,
            TransactionKind.CASH_DEPOSIT,
            self.amount(median, sigma, step=10),
            when,
            label="legitimate",
            scenario=scenario,
            purpose=purpose,
            text=self._text("shop_takings") if scenario == "shop_takings" else "",
        )

    def _cash(
        self,
        profile: _Profile,
        when: dt.datetime,
        scenario: str,
        purpose: PurposeCode,
        median: float,
    ) -> None:
        self.add(
            profile,
            TransactionKind.CASH_WITHDRAWAL,
            self.amount(median, 1.0),
            when,
            label="legitimate",
            scenario=scenario,
            purpose=purpose,
            observations=self.legit_observations(profile),
        )

    def _lawyer_cash(self, profile: _Profile, when: dt.datetime) -> None:
        # November 2025: a lawyer withdrawing ¥40,000 was questioned at length. Not a victim.
        self.add(
            profile,
            TransactionKind.CASH_WITHDRAWAL,
            self.amount(40000, 0.5, step=1000),
            when,
            label="legitimate",
            scenario="lawyer_cash",
            purpose=PurposeCode.BUSINESS,
            text=self._text("lawyer_cash"),
            observations=Observations(on_phone=self.chance(0.15), hurried=self.chance(0.2)),
            answers=self.legit_answers(PurposeCode.BUSINESS),
        )

    def _business_transfer(self, profile: _Profile, when: dt.datetime) -> None:
        payee = self.world.company_payee(self.world.name() + "商贸有限公司")
        if profile.payees and self.chance(0.7):
            payee = profile.payees[0]
        elif not profile.payees:
            profile.payees.append(payee)
        self.add(
            profile,
            TransactionKind.TRANSFER,
            self.amount(25000, 1.2, step=1),
            when,
            label="legitimate",
            scenario="business_transfer",
            counterparty=payee,
            purpose=PurposeCode.BUSINESS,
            text=self._text("business_transfer"),
            answers=self.legit_answers(PurposeCode.BUSINESS),
        )

    def _tuition(self, profile: _Profile, day: int, when: dt.datetime) -> None:
        if not self.once(profile, "tuition", when, 25):
            self.small_cash(profile, when)
            return
        if profile.persona is Persona.STUDENT and self.chance(0.5):  # parents send it first
            sent = self.amount(8000, 0.4)
            self.add(
                profile,
                TransactionKind.CASH_DEPOSIT,
                sent,
                when.replace(hour=OPEN_HOUR) - dt.timedelta(hours=self.rng.randint(1, 8)),
                label="legitimate",
                scenario="tuition_credit",
                channel=Channel.MOBILE,
                purpose=PurposeCode.EDUCATION,
            )
            amount = sent
        else:
            amount = self.amount(8000, 0.5)
        self.add(
            profile,
            TransactionKind.TRANSFER,
            amount,
            when,
            label="legitimate",
            scenario="tuition",
            counterparty=self.world.company_payee(
                self.rng.choice(("浙江", "河北", "深圳")) + "某某大学"
            ),
            purpose=PurposeCode.EDUCATION,
            text=self._text("tuition"),
            answers=self.legit_answers(PurposeCode.EDUCATION, knows=False),
        )

    def _salary_rent(self, profile: _Profile, day: int, when: dt.datetime) -> None:
        if not self.once(profile, "rent", when, 25):
            self.small_cash(profile, when)
            return
        if self.chance(0.5):
            self.add(
                profile,
                TransactionKind.CASH_DEPOSIT,
                self.amount(7000, 0.5, step=1),
                when.replace(hour=OPEN_HOUR) - dt.timedelta(hours=2),
                label="legitimate",
                scenario="salary_credit",
                channel=Channel.ONLINE,
                purpose=PurposeCode.SALARY,
            )
        if not profile.payees:
            profile.payees.append(self.world.person_payee(other_region=False))
        self.add(
            profile,
            TransactionKind.TRANSFER,
            self.amount(2500, 0.5),
            when,
            label="legitimate",
            scenario="rent",
            counterparty=profile.payees[0],
            purpose=PurposeCode.LIVING_EXPENSES,
            text=self._text("salary_rent"),
            answers=self.legit_answers(PurposeCode.LIVING_EXPENSES),
        )

    def _house(self, profile: _Profile, when: dt.datetime) -> None:
        if not self.once(profile, "house", when, 365):
            self.small_cash(profile, when)
            return
        self.add(
            profile,
            TransactionKind.TRANSFER,
            self.amount(300000, 0.6, step=1000),
            when,
            label="legitimate",
            scenario="house_purchase",
            counterparty=self.world.company_payee(
                self.world.name() + "房地产开发有限公司", region=profile.branch.region
            ),
            purpose=PurposeCode.HOUSE_PURCHASE,
            text=self._text("house_purchase"),
            answers=self.legit_answers(PurposeCode.HOUSE_PURCHASE, knows=False),
        )

    def _car(self, profile: _Profile, when: dt.datetime) -> None:
        if not self.once(profile, "car", when, 365):
            self.small_cash(profile, when)
            return
        self.add(
            profile,
            TransactionKind.TRANSFER,
            self.amount(60000, 0.5, step=100),
            when,
            label="legitimate",
            scenario="car_purchase",
            counterparty=self.world.company_payee(self.world.name() + "汽车销售服务有限公司"),
            purpose=PurposeCode.CAR_PURCHASE,
            text=self._text("car_purchase"),
        )

    def _securities(self, profile: _Profile, when: dt.datetime) -> None:
        if not self.once(profile, "securities", when, 25):
            self.small_cash(profile, when)
            return
        self.add(
            profile,
            TransactionKind.TRANSFER,
            self.amount(100000, 0.8, step=1000),
            when,
            label="legitimate",
            scenario="securities",
            counterparty=self.world.company_payee("某某证券股份有限公司"),
            purpose=PurposeCode.INVESTMENT,
            text=self._text("securities"),
            answers=self.legit_answers(PurposeCode.INVESTMENT, knows=False),
        )

    def _insurance_own(self, profile: _Profile, when: dt.datetime) -> None:
        if not self.once(profile, "insurance", when, 365):
            self.small_cash(profile, when)
            return
        self.add(
            profile,
            TransactionKind.INSURANCE_SURRENDER,
            self.amount(20000, 0.8, step=1),
            when,
            label="legitimate",
            scenario="insurance_own",
            purpose=PurposeCode.INSURANCE,
            text=self._text("insurance_own"),
        )

    def _account_opening(self, profile: _Profile, when: dt.datetime) -> None:
        if not self.once(profile, "account_opening", when, 365):
            self.small_cash(profile, when)
            return
        self.add(
            profile,
            TransactionKind.ACCOUNT_OPENING,
            Money(value=Decimal("0.00")),
            when,
            label="legitimate",
            scenario="account_opening",
            purpose=PurposeCode.OTHER,
            text=self._text("account_opening"),
        )

    def _limit_change(self, profile: _Profile, when: dt.datetime) -> None:
        if not self.once(profile, "limit_change", when, 25):
            self.small_cash(profile, when)
            return
        self.add(
            profile,
            TransactionKind.LIMIT_CHANGE,
            Money(value=Decimal("0.00")),
            when,
            label="legitimate",
            scenario="limit_change",
            new_daily_limit=_yuan(self.rng.choice((20000, 50000, 100000))),
        )

    # -- fraud -----------------------------------------------------------------------------
    def fraud(self, day: int) -> None:
        rng = self.rng
        typology = rng.choices(
            list(Typology),
            weights=(16, 14, 14, 12, 12, 8, 6, 18),
        )[0]
        {
            Typology.IMPERSONATION: self._impersonation,
            Typology.REBATE_TASKS: self._rebate,
            Typology.FAKE_INVESTMENT: self._investment,
            Typology.LOAN_FEES: self._loan_fees,
            Typology.ELDERLY_PRODUCTS: self._elderly_products,
            Typology.ILLEGAL_FUNDRAISING: self._fundraising,
            Typology.SURRENDER_AGENT: self._surrender_agent,
            Typology.MONEY_MULE: self._mule,
        }[typology](day)

    def _phrase(self, typology: Typology, probability: float) -> str:
        return self.rng.choice(TYPOLOGY_PHRASES[typology]) if self.chance(probability) else ""

    def _victim_answers(
        self,
        stated: PurposeCode,
        relationship: Relationship,
        *,
        honesty: float,
        promised: tuple[int, int] | None = None,
    ) -> Answers:
        """Victims often lie as coached ("say it is for a house"); sometimes they say it all."""
        if not self.chance(0.45):
            return Answers()
        honest = self.chance(honesty)
        return Answers(
            stated_purpose=stated,
            purpose_detail=None,
            knows_payee=not honest and self.chance(0.6),
            payee_relationship=relationship if honest else Relationship.FRIEND,
            met_payee_in_person=False if honest else None,
            instructed_by_other=honest and self.chance(0.7),
            told_to_keep_secret=honest and self.chance(0.5),
            family_aware=not (honest or self.chance(0.5)),
            promised_return_pct=None
            if promised is None or not honest
            else self.rng.randint(*promised),
        )

    def _impersonation(self, day: int) -> None:
        typology = Typology.IMPERSONATION
        victim = self.world.pick_victim(("young", "middle", "elderly", "elderly"))
        when = self.world.moment(day)
        amount = self.amount(120000, 0.8, step=1000)
        if self.chance(0.35):  # break a term deposit first, despite the interest loss
            self.add(
                victim,
                TransactionKind.TERM_DEPOSIT_EARLY_WITHDRAWAL,
                amount,
                when,
                label="fraud",
                typology=typology,
                scenario="impersonation_police/break_deposit",
                purpose=PurposeCode.LIVING_EXPENSES,
                observations=Observations(on_phone=self.chance(0.5), nervous=self.chance(0.5)),
            )
            when = self.world.moment(day, after=when, within_minutes=30)
        text = self._phrase(typology, 0.3)
        self.add(
            victim,
            self.rng.choice(
                (TransactionKind.TRANSFER, TransactionKind.TRANSFER, TransactionKind.REMITTANCE)
            ),
            amount,
            when,
            label="fraud",
            typology=typology,
            scenario="impersonation_police/transfer",
            counterparty=self.world.person_payee(other_region=self.chance(0.8)),
            purpose=self.rng.choice(
                (
                    PurposeCode.LIVING_EXPENSES,
                    PurposeCode.HOUSE_PURCHASE,
                    PurposeCode.FAMILY_SUPPORT,
                )
            ),
            text=text,
            observations=Observations(
                on_phone=self.chance(0.6),
                earpiece=self.chance(0.1),
                nervous=self.chance(0.5),
                hurried=self.chance(0.4),
                evasive=self.chance(0.3),
                refuses_family_contact=self.chance(0.3),
                demands_instant_arrival=self.chance(0.3),
                reading_from_phone=self.chance(0.2),
            ),
            answers=self._victim_answers(PurposeCode.OTHER, Relationship.OFFICIAL, honesty=0.3),
            notes=self._phrase(typology, 0.1),
        )

    def _rebate(self, day: int) -> None:
        typology = Typology.REBATE_TASKS
        victim = self.world.pick_victim(("young", "young", "middle"))
        payee = self.world.person_payee(other_region=self.chance(0.7))
        amount = float(self.rng.choice((500, 1000, 2000)))
        steps = self.rng.randint(1, 4)
        for step in range(steps):  # ever larger top-ups, over a few days
            if step and self.chance(0.4):
                payee = self.world.person_payee(other_region=True)
            self.add(
                victim,
                TransactionKind.TRANSFER,
                _yuan(amount, 100),
                self.world.moment(day + step),
                label="fraud",
                typology=typology,
                scenario="rebate_tasks/top_up",
                counterparty=payee,
                purpose=self.rng.choice(
                    (PurposeCode.OTHER, PurposeCode.LIVING_EXPENSES, PurposeCode.GIFT)
                ),
                text=self._phrase(typology, 0.25),
                observations=Observations(
                    on_phone=self.chance(0.35),
                    reading_from_phone=self.chance(0.3),
                    screen_sharing=self.chance(0.08),
                    hurried=self.chance(0.3),
                ),
                answers=self._victim_answers(
                    PurposeCode.OTHER, Relationship.MET_ONLINE, honesty=0.4
                ),
            )
            amount *= self.rng.uniform(2.0, 5.0)

    def _investment(self, day: int) -> None:
        typology = Typology.FAKE_INVESTMENT
        victim = self.world.pick_victim(("young", "middle", "middle", "senior"))
        payee = self.world.person_payee(other_region=self.chance(0.75))
        for step in range(self.rng.randint(1, 3)):
            disguise = self.rng.choice(
                (PurposeCode.INVESTMENT, PurposeCode.HOUSE_PURCHASE, PurposeCode.FAMILY_SUPPORT)
            )
            self.add(
                victim,
                self.rng.choice((TransactionKind.TRANSFER, TransactionKind.REMITTANCE)),
                self.amount(80000 * (step + 1), 0.8, step=1000),
                self.world.moment(day + 2 * step),
                label="fraud",
                typology=typology,
                scenario="fake_investment_romance/transfer",
                counterparty=payee,
                purpose=disguise,
                text=self._phrase(typology, 0.3),
                observations=Observations(on_phone=self.chance(0.2), evasive=self.chance(0.3)),
                answers=self._victim_answers(
                    PurposeCode.INVESTMENT, Relationship.MET_ONLINE, honesty=0.5, promised=(15, 60)
                ),
            )

    def _loan_fees(self, day: int) -> None:
        typology = Typology.LOAN_FEES
        victim = self.world.pick_victim(("young", "young", "middle"))
        when = self.world.moment(day)
        amount = self.amount(8000, 0.8)
        if self.chance(0.3):  # raises the limit right before a transfer
            self.add(
                victim,
                TransactionKind.LIMIT_CHANGE,
                Money(value=Decimal("0.00")),
                when,
                label="fraud",
                typology=typology,
                scenario="loan_fees/raise_limit",
                new_daily_limit=_yuan(max(50000.0, float(amount.value) * 2), 10000),
                observations=Observations(on_phone=self.chance(0.4)),
            )
            when = self.world.moment(day, after=when, within_minutes=20)
        self.add(
            victim,
            TransactionKind.TRANSFER,
            amount,
            when,
            label="fraud",
            typology=typology,
            scenario="loan_fees/fee",
            counterparty=self.world.person_payee(other_region=self.chance(0.8)),
            purpose=self.rng.choice((PurposeCode.LOAN_REPAYMENT, PurposeCode.OTHER)),
            text=self._phrase(typology, 0.35),
            observations=Observations(
                on_phone=self.chance(0.5),
                screen_sharing=self.chance(0.25),
                hurried=self.chance(0.3),
                nervous=self.chance(0.3),
            ),
            answers=self._victim_answers(
                PurposeCode.LOAN_REPAYMENT, Relationship.UNKNOWN, honesty=0.5
            ),
        )

    def _elderly_products(self, day: int) -> None:
        typology = Typology.ELDERLY_PRODUCTS
        victim = self.world.pick_victim(("elderly",))
        when = self.world.moment(day)
        amount = self.amount(50000, 0.8, step=1000)
        cash = self.chance(0.55)
        self.add(
            victim,
            TransactionKind.CASH_WITHDRAWAL if cash else TransactionKind.TRANSFER,
            amount,
            when,
            label="fraud",
            typology=typology,
            scenario="elderly_health_pension/" + ("cash" if cash else "transfer"),
            counterparty=None
            if cash
            else self.world.company_payee(self.world.name() + "健康管理有限公司"),
            purpose=self.rng.choice(
                (PurposeCode.LIVING_EXPENSES, PurposeCode.MEDICAL, PurposeCode.FAMILY_SUPPORT)
            ),
            text=self._phrase(typology, 0.35),
            observations=Observations(
                companion_answers=self.chance(0.2),
                group_with_same_purpose=self.chance(0.12),
                payee_only_takes_cash=cash and self.chance(0.3),
                evasive=self.chance(0.25),
                refuses_family_contact=self.chance(0.25),
            ),
            answers=self._victim_answers(
                PurposeCode.INVESTMENT, Relationship.BUSINESS, honesty=0.5, promised=(8, 20)
            ),
        )

    def _fundraising(self, day: int) -> None:
        typology = Typology.ILLEGAL_FUNDRAISING
        victim = self.world.pick_victim(("senior", "elderly", "elderly"))
        text = self._phrase(typology, 0.35)
        # 003_4d407a81b1856394.txt: "buying a house", really a tree-planting investment at 30%.
        disguised = self.chance(0.4)
        cash = self.chance(0.4)
        payee = self.world.company_payee(self.world.name() + "农业科技有限公司")
        self.add(
            victim,
            TransactionKind.CASH_WITHDRAWAL if cash else TransactionKind.TRANSFER,
            self.amount(100000, 0.7, step=1000),
            self.world.moment(day),
            label="fraud",
            typology=typology,
            scenario="illegal_fundraising/" + ("says_house" if disguised else "investment"),
            counterparty=None if cash else payee,
            purpose=PurposeCode.HOUSE_PURCHASE if disguised else PurposeCode.INVESTMENT,
            text="" if disguised else text,
            observations=Observations(
                group_with_same_purpose=self.chance(0.3),
                purpose_changed=disguised and self.chance(0.3),
                companion_answers=self.chance(0.1),
            ),
            answers=(
                Answers(
                    stated_purpose=PurposeCode.INVESTMENT
                    if self.chance(0.5)
                    else PurposeCode.HOUSE_PURCHASE,
                    purpose_detail=text or None,
                    promised_return_pct=self.rng.randint(10, 30) if self.chance(0.6) else None,
                )
                if disguised and self.chance(0.6)
                else self._victim_answers(
                    PurposeCode.INVESTMENT, Relationship.BUSINESS, honesty=0.6, promised=(10, 30)
                )
            ),
        )

    def _surrender_agent(self, day: int) -> None:
        typology = Typology.SURRENDER_AGENT
        victim = self.world.pick_victim(("middle", "senior", "elderly"))
        when = self.world.moment(day)
        refund = self.amount(50000, 0.8, step=1)
        self_refund = self.chance(0.6)
        self.add(
            victim,
            TransactionKind.INSURANCE_SURRENDER,
            refund,
            when,
            label="fraud",
            typology=typology,
            scenario="insurance_surrender_agent/surrender",
            counterparty=(
                self.world.person_payee(other_region=False, same_name_as=victim.customer.name)
                if self_refund
                else self.world.person_payee(other_region=self.chance(0.5))
            ),
            purpose=PurposeCode.INSURANCE,
            text=self._phrase(typology, 0.35),
            observations=Observations(
                third_party_agent_present=self.chance(0.6),
                companion_answers=self.chance(0.4),
            ),
            answers=self._victim_answers(PurposeCode.INSURANCE, Relationship.BUSINESS, honesty=0.5),
        )
        if self_refund and self.chance(0.5):  # the agent's fee, 10-30% of the refund
            fee = float(refund.value) * self.rng.uniform(0.1, 0.3)
            self.add(
                victim,
                TransactionKind.TRANSFER,
                _yuan(fee, 1),
                self.world.moment(day, after=when, within_minutes=60),
                label="fraud",
                typology=typology,
                scenario="insurance_surrender_agent/fee",
                counterparty=self.world.person_payee(other_region=self.chance(0.4)),
                purpose=PurposeCode.OTHER,
                text="服务费" if self.chance(0.5) else "",
                observations=Observations(third_party_agent_present=self.chance(0.5)),
            )

    def _mule(self, day: int) -> None:
        typology = Typology.MONEY_MULE
        mule = self.world.mule()
        when = self.world.moment(day)
        credited = self.amount(40000, 0.8, step=1)
        if self.chance(0.3):  # a test transaction first
            self.add(
                mule,
                TransactionKind.TRANSFER,
                Money(value=Decimal(self.rng.choice(("0.01", "1.00", "10.00")))),
                when - dt.timedelta(minutes=self.rng.randint(20, 90)),
                label="fraud",
                typology=typology,
                scenario="money_mule/test_transaction",
                channel=Channel.MOBILE,
                counterparty=self.world.person_payee(other_region=True),
            )
        self.add(
            mule,
            TransactionKind.CASH_DEPOSIT,
            credited,
            when - dt.timedelta(minutes=self.rng.randint(5, 120)),
            label="fraud",
            typology=typology,
            scenario="money_mule/inbound_credit",
            channel=self.rng.choice((Channel.ONLINE, Channel.MOBILE)),
        )
        observations = Observations(
            hurried=self.chance(0.4),
            evasive=self.chance(0.35),
            companion_answers=self.chance(0.2),
            on_phone=self.chance(0.35),
            reading_from_phone=self.chance(0.15),
        )
        left = float(credited.value) * self.rng.uniform(0.9, 1.0)
        if self.chance(0.6):  # straight out in cash
            self.add(
                mule,
                TransactionKind.CASH_WITHDRAWAL,
                _yuan(left, 100),
                self.world.moment(day, after=when, within_minutes=120),
                label="fraud",
                typology=typology,
                scenario="money_mule/cash_out",
                purpose=self.rng.choice(
                    (PurposeCode.BUSINESS, PurposeCode.LIVING_EXPENSES, PurposeCode.OTHER)
                ),
                text=self._phrase(typology, 0.3),
                observations=observations,
                answers=self._victim_answers(
                    PurposeCode.BUSINESS, Relationship.FRIEND, honesty=0.2
                ),
            )
            return
        parts = self.rng.randint(2, 4)  # split into several transfers
        moment = when
        for _ in range(parts):
            moment = self.world.moment(day, after=moment, within_minutes=20)
            self.add(
                mule,
                TransactionKind.TRANSFER,
                _yuan(left / parts, 1),
                moment,
                label="fraud",
                typology=typology,
                scenario="money_mule/split_transfer",
                counterparty=self.world.person_payee(other_region=self.chance(0.8)),
                purpose=self.rng.choice((PurposeCode.BUSINESS, PurposeCode.OTHER)),
                text=self._phrase(typology, 0.2),
                observations=observations,
            )


def generate(
    n: int,
    fraud_rate: float,
    seed: int,
    *,
    start: dt.date = DEFAULT_START,
    per_day: int = EVENTS_PER_DAY,
) -> Iterator[LabelledEvent]:
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
    stream = _Stream(world)
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


def _with_id(record: LabelledEvent, seed: int, index: int) -> LabelledEvent:
    event = record.event.model_copy(update={"event_id": f"S{seed}-{index:08d}"})
    return LabelledEvent(
        record.label, record.typology, record.scenario, record.executed_history_hint, event
    )


def write_jsonl(records: Iterator[LabelledEvent], out: TextIO) -> int:
    """Write records one JSON object a line; returns how many were written."""
    count = 0
    for record in records:
        out.write(record.to_json())
        out.write("\n")
        count += 1
    return count
