"""Hypothesis strategies for your own tests of packs and integrations.

Needs hypothesis, which is a test extra: ``pip install 'guardrail[test]'``.

Every strategy builds its values through the pydantic models, so every ``Event`` drawn is valid
and round-trips through JSON exactly. Free text is sometimes hostile but valid: emoji, RTL and
zero-width marks, quotes, backslashes, NUL, traditional characters, full-width forms, mixed
into the typical scam wording of each typology::

    from hypothesis import given
    from guardrail.testing import events, typologies

    @given(events(typology="impersonation_police", age_band=(60, 90)))
    def test_never_fails(event):
        assert not guard.screen(event).failures

Public strategies: :func:`customers`, :func:`accounts`, :func:`counterparties`, :func:`events`,
:func:`histories`, :func:`counter_visits`, :func:`typologies`, :func:`free_text`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

try:
    from hypothesis import strategies as st
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "guardrail.testing needs hypothesis, which is a test extra: pip install 'guardrail[test]'"
    ) from _error

from guardrail.model.event import (
    OPENING_KINDS,
    Account,
    AccountClass,
    AccountOpening,
    AccountPurpose,
    Answers,
    Branch,
    Channel,
    Counterparty,
    Customer,
    Document,
    DocumentKind,
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
from guardrail.model.stream import LABELS, StreamLine
from guardrail.sim.generator import LEGITIMATE_PHRASES, TYPOLOGY_PHRASES, Typology

__all__ = [
    "HOSTILE_FRAGMENTS",
    "CounterVisit",
    "Typology",
    "accounts",
    "counter_visits",
    "counterparties",
    "customers",
    "documents",
    "events",
    "families",
    "free_text",
    "histories",
    "streams",
    "third_parties",
    "typologies",
]

REFERENCE_DAY = dt.date(2025, 3, 3)  # "today" for ages and account ages when no time is given
AgeBand = tuple[int, int]
AmountRange = tuple[int | Decimal | str, int | Decimal | str]

HOSTILE_FRAGMENTS: tuple[str, ...] = (
    "💰🙏🏻👮‍♂️",  # emoji with a skin tone and a zero-width joiner sequence
    "\u202e账户全安\u202c",  # right-to-left override
    "\u200f\u200e",  # RTL and LTR marks
    "安\u200b全\u200d账\u2060户",  # zero-width space, joiner, word joiner inside a term
    "\"quoted\" 'single' “中文引号” 「括号」",
    "back\\slash \\n \\u0000 C:\\temp\\",
    "\x00",  # NUL is a valid character in JSON text
    "安全帳戶 資金清查 涉嫌洗錢",  # traditional characters
    "ＡＢＣ１２３　安全账户　（全角）",  # full-width forms and the ideographic space
    "安 全 账 户",
    "Ｓａｆｅ　ａｃｃｏｕｎｔ",
    "\t\r\n",
    "𠮷𡈽",  # characters outside the basic multilingual plane
    "'; DROP TABLE events; --",
    "{{ template }} ${injection} %s %n",
)

_TYPOLOGY_KINDS: dict[Typology, tuple[TransactionKind, ...]] = {
    Typology.IMPERSONATION: (
        TransactionKind.TRANSFER,
        TransactionKind.REMITTANCE,
        TransactionKind.TERM_DEPOSIT_EARLY_WITHDRAWAL,
        TransactionKind.CASH_WITHDRAWAL,
    ),
    Typology.REBATE_TASKS: (TransactionKind.TRANSFER,),
    Typology.FAKE_INVESTMENT: (TransactionKind.TRANSFER, TransactionKind.REMITTANCE),
    Typology.LOAN_FEES: (TransactionKind.TRANSFER, TransactionKind.LIMIT_CHANGE),
    Typology.ELDERLY_PRODUCTS: (
        TransactionKind.CASH_WITHDRAWAL,
        TransactionKind.TRANSFER,
        TransactionKind.TERM_DEPOSIT_EARLY_WITHDRAWAL,
    ),
    Typology.ILLEGAL_FUNDRAISING: (TransactionKind.TRANSFER, TransactionKind.CASH_WITHDRAWAL),
    Typology.SURRENDER_AGENT: (TransactionKind.INSURANCE_SURRENDER, TransactionKind.TRANSFER),
    Typology.MONEY_MULE: (TransactionKind.CASH_WITHDRAWAL, TransactionKind.TRANSFER),
}

# The observations each typology tends to show at the counter.
_TYPOLOGY_SIGNS: dict[Typology, tuple[str, ...]] = {
    Typology.IMPERSONATION: (
        "on_phone",
        "earpiece",
        "nervous",
        "hurried",
        "refuses_family_contact",
        "demands_instant_arrival",
        "reading_from_phone",
    ),
    Typology.REBATE_TASKS: ("on_phone", "reading_from_phone", "screen_sharing", "hurried"),
    Typology.FAKE_INVESTMENT: ("on_phone", "evasive", "purpose_changed"),
    Typology.LOAN_FEES: ("on_phone", "screen_sharing", "hurried", "nervous"),
    Typology.ELDERLY_PRODUCTS: (
        "companion_answers",
        "group_with_same_purpose",
        "payee_only_takes_cash",
        "evasive",
    ),
    Typology.ILLEGAL_FUNDRAISING: (
        "group_with_same_purpose",
        "purpose_changed",
        "companion_answers",
    ),
    Typology.SURRENDER_AGENT: ("third_party_agent_present", "companion_answers"),
    Typology.MONEY_MULE: ("hurried", "evasive", "companion_answers", "on_phone"),
}

_TYPOLOGY_AGES: dict[Typology, AgeBand] = {
    Typology.IMPERSONATION: (18, 90),
    Typology.REBATE_TASKS: (18, 45),
    Typology.FAKE_INVESTMENT: (22, 65),
    Typology.LOAN_FEES: (18, 45),
    Typology.ELDERLY_PRODUCTS: (60, 95),
    Typology.ILLEGAL_FUNDRAISING: (50, 90),
    Typology.SURRENDER_AGENT: (30, 80),
    Typology.MONEY_MULE: (18, 30),
}

_REGIONS = ("CN-ZJ", "CN-HE", "CN-GD-SZ", "CN-BJ", "CN-SH", "CN-SC", "CN-YN", "CN-GX", "CN-FJ")
_TIMEZONES = ("Asia/Shanghai", "Asia/Shanghai", "Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong")
_OFFSETS = (8, 8, 8, 0, 6, -5, 9)
_LEGIT_TEXT = tuple(text for texts in LEGITIMATE_PHRASES.values() for text in texts)
_ALL_SCAM_TEXT = tuple(text for texts in TYPOLOGY_PHRASES.values() for text in texts)
_OBSERVATION_NAMES = tuple(Observations.model_fields)

_IDENTIFIER = r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,24}"


def typologies() -> st.SearchStrategy[Typology]:
    """One of the scam typologies of DOMAIN.md."""
    return st.sampled_from(list(Typology))


def _identifiers() -> st.SearchStrategy[str]:
    return st.from_regex(_IDENTIFIER, fullmatch=True)


def _digits(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=min_size, max_size=max_size)


@st.composite
def _free_text(draw: st.DrawFn, typology: Typology | None, max_size: int) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        choice = draw(st.integers(0, 5))
        if choice == 0:
            parts.append(draw(st.sampled_from(HOSTILE_FRAGMENTS)))
        elif choice == 1:
            parts.append(draw(st.text(max_size=30)))
        elif choice == 2:
            phrases = TYPOLOGY_PHRASES[typology] if typology is not None else _ALL_SCAM_TEXT
            parts.append(draw(st.sampled_from(phrases)))
        else:
            parts.append(draw(st.sampled_from(_LEGIT_TEXT)))
    if typology is not None and draw(st.booleans()):
        parts.append(draw(st.sampled_from(TYPOLOGY_PHRASES[typology])))
    return "".join(parts)[:max_size]


def free_text(
    typology: Typology | str | None = None, *, max_size: int = 2000
) -> st.SearchStrategy[str]:
    """Purpose or note text: everyday wording, scam wording (of ``typology`` if given) and,
    sometimes, hostile-but-valid fragments (see ``HOSTILE_FRAGMENTS``)."""
    return _free_text(None if typology is None else Typology(typology), max_size)


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


def _check_band(age_band: AgeBand | None) -> AgeBand | None:
    if age_band is None:
        return None
    low, high = age_band
    if not 0 <= low <= high <= 120:
        raise ValueError(f"age_band must be (min, max) with 0 <= min <= max <= 120, got {age_band}")
    return low, high


@st.composite
def _customers(draw: st.DrawFn, age_band: AgeBand | None, on: dt.date, natural: bool) -> Customer:
    party = PartyType.NATURAL_PERSON
    if age_band is None and not natural and draw(st.integers(0, 9)) == 0:
        party = PartyType.NON_NATURAL_PERSON
    birth: dt.date | None = None
    if party is PartyType.NATURAL_PERSON:
        if age_band is None and draw(st.integers(0, 19)) == 0:
            birth = None  # unknown birth date: rules on age must not fire
        else:
            low, high = age_band or (16, 100)
            # age in [low, high] on ``on``: born after on - (high+1) years, by on - low years
            earliest = _years_before(on, high + 1) + dt.timedelta(days=1)
            latest = _years_before(on, low)
            birth = draw(st.dates(min_value=earliest, max_value=latest))
    name = draw(
        st.one_of(
            st.sampled_from(("王秀英", "李建国", "张伟", "欧阳娜娜", "陳美玲", "Zhang Wei")),
            st.text(min_size=1, max_size=100),
            st.sampled_from(HOSTILE_FRAGMENTS).filter(bool),
        )
    )
    return Customer(
        id=draw(_identifiers()),
        party_type=party,
        birth_date=birth,
        segment=draw(st.sampled_from(list(Segment))),
        region=draw(st.none() | st.sampled_from(_REGIONS)),
        name=draw(st.none() | st.just(name)),
        id_number=draw(st.none() | st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True)),
        phone=draw(st.none() | st.from_regex(r"\+?[0-9][0-9\- ]{2,20}", fullmatch=True)),
    )


def customers(
    age_band: AgeBand | None = None, *, on: dt.date = REFERENCE_DAY, natural_person: bool = False
) -> st.SearchStrategy[Customer]:
    """Customers; with ``age_band=(min, max)`` natural persons whose age on ``on`` is in it."""
    return _customers(_check_band(age_band), on, natural_person or age_band is not None)


@st.composite
def _accounts(
    draw: st.DrawFn, on: dt.date, opened_within_days: int | None, dormant_days: int | None
) -> Account:
    if opened_within_days is not None:
        opened = on - dt.timedelta(days=draw(st.integers(0, opened_within_days)))
    else:
        opened = on - dt.timedelta(days=draw(st.integers(0, 365 * 30)))
    last: dt.date | None
    if dormant_days is not None:
        last = on - dt.timedelta(days=draw(st.integers(dormant_days, dormant_days + 1000)))
        last = max(last, opened)
    else:
        last = draw(st.none() | st.dates(min_value=opened, max_value=on))
    return Account(
        id=draw(st.from_regex(r"[0-9]{4,19}|62[0-9]{14,17}|[0-9A-Za-z\-]{4,40}", fullmatch=True)),
        account_class=draw(st.sampled_from(list(AccountClass))),
        opened_on=opened,
        last_activity_on=last,
    )


def accounts(
    *,
    on: dt.date = REFERENCE_DAY,
    opened_within_days: int | None = None,
    dormant_days: int | None = None,
) -> st.SearchStrategy[Account]:
    """Accounts open on ``on``; ``opened_within_days`` for young accounts (mule signal),
    ``dormant_days`` for cards unused at least that long."""
    return _accounts(on, opened_within_days, dormant_days)


@st.composite
def _counterparties(draw: st.DrawFn, other_region: bool | None) -> Counterparty:
    region = draw(st.none() | st.sampled_from(_REGIONS))
    if other_region is True:
        region = draw(st.sampled_from(("CN-YN", "CN-GX", "CN-FJ", "CN-XJ")))
    return Counterparty(
        account=draw(st.none() | st.from_regex(r"[0-9]{4,19}", fullmatch=True)),
        name=draw(st.none() | st.text(min_size=1, max_size=100)),
        bank=draw(st.none() | st.sampled_from(("工商银行", "农商银行", "Bank of 🏦", ""))),
        region=region,
        same_name=draw(st.none() | st.booleans()),
        party_type=draw(st.sampled_from(list(PartyType))),
        phone=draw(st.none() | st.from_regex(r"[0-9]{3,15}", fullmatch=True)),
    )


def counterparties(*, other_region: bool | None = None) -> st.SearchStrategy[Counterparty]:
    """Payees; ``other_region=True`` puts the payee in a province far from the branches."""
    return _counterparties(other_region)


def _yuan_to_fen(value: int | Decimal | str) -> int:
    amount = Money.model_validate({"value": value if isinstance(value, str) else str(value)})
    return amount.fen


@st.composite
def _timestamps(draw: st.DrawFn) -> dt.datetime:
    naive = draw(
        st.datetimes(min_value=dt.datetime(2023, 1, 1), max_value=dt.datetime(2026, 6, 30, 23, 59))
    )
    offset = dt.timezone(dt.timedelta(hours=draw(st.sampled_from(_OFFSETS))))
    return naive.replace(tzinfo=offset)


@st.composite
def _observations(draw: st.DrawFn, typology: Typology | None) -> Observations:
    signs = _TYPOLOGY_SIGNS[typology] if typology is not None else _OBSERVATION_NAMES
    flags = {name: draw(st.booleans()) for name in signs if draw(st.integers(0, 2)) == 0}
    return Observations(**flags)


@st.composite
def _answers(draw: st.DrawFn, typology: Typology | None) -> Answers:
    if draw(st.integers(0, 2)) == 0:
        return Answers()

    def maybe_bool() -> bool | None:
        return draw(st.none() | st.booleans())

    return Answers(
        stated_purpose=draw(st.none() | st.sampled_from(list(PurposeCode))),
        purpose_detail=draw(st.none() | free_text(typology, max_size=300)),
        knows_payee=maybe_bool(),
        payee_relationship=draw(st.none() | st.sampled_from(list(Relationship))),
        met_payee_in_person=maybe_bool(),
        instructed_by_other=maybe_bool(),
        told_to_keep_secret=maybe_bool(),
        family_aware=maybe_bool(),
        promised_return_pct=draw(st.none() | st.integers(0, 10000)),
    )


def _local_day(timestamp: dt.datetime, timezone: str) -> dt.date:
    """The branch's calendar day: ages and account ages are computed on it."""
    return timestamp.astimezone(ZoneInfo(timezone)).date()


@st.composite
def _events(
    draw: st.DrawFn,
    kind: TransactionKind | None,
    typology: Typology | None,
    age_band: AgeBand | None,
    amount_range: tuple[int, int],
    at: dt.datetime | None,
    customer: Customer | None,
) -> Event:
    timestamp = at if at is not None else draw(_timestamps())
    timezone = draw(st.sampled_from(_TIMEZONES))
    branch = Branch(
        id=draw(_identifiers()), region=draw(st.sampled_from(_REGIONS)), timezone=timezone
    )
    local_day = _local_day(timestamp, timezone)
    if typology is not None and age_band is None:
        age_band = _TYPOLOGY_AGES[typology]
    if customer is None:
        customer = draw(customers(age_band, on=local_day))
    if kind is None:
        kinds = _TYPOLOGY_KINDS[typology] if typology is not None else tuple(TransactionKind)
        kind = draw(st.sampled_from(kinds))
    fen = draw(st.integers(*amount_range))
    payee_kinds = (
        TransactionKind.TRANSFER,
        TransactionKind.REMITTANCE,
        TransactionKind.INSURANCE_SURRENDER,
    )
    counterparty = None
    if kind in payee_kinds or draw(st.integers(0, 9)) == 0:
        counterparty = draw(st.none() | counterparties(other_region=True if typology else None))
    account: Account | None
    if typology is Typology.MONEY_MULE:
        account = draw(accounts(on=local_day, opened_within_days=30))
    else:
        account = draw(st.none() | accounts(on=local_day))
    purpose = draw(
        st.none()
        | st.builds(
            Purpose,
            code=st.sampled_from(list(PurposeCode)),
            text=free_text(typology, max_size=2000),
        )
    )
    limit = None
    if kind is TransactionKind.LIMIT_CHANGE:
        limit = Money(value=Decimal(draw(st.integers(0, 10_000_000))))
    opening = draw(_openings()) if kind in OPENING_KINDS else None
    return Event(
        event_id=draw(_identifiers()),
        kind=kind,
        amount=Money(value=Decimal(fen) / 100),
        channel=draw(st.sampled_from([Channel.COUNTER] * 4 + list(Channel))),
        timestamp=timestamp,
        branch=branch,
        teller_id=draw(_identifiers()),
        customer=customer,
        account=account,
        counterparty=counterparty,
        purpose=purpose,
        cross_border=draw(st.integers(0, 19)) == 0,
        new_daily_limit=limit,
        observations=draw(_observations(typology)),
        answers=draw(_answers(typology)),
        notes=draw(free_text(typology, max_size=500)),
        opening=opening,
        third_parties=tuple(draw(st.lists(third_parties(), max_size=2))),
        documents=tuple(draw(st.lists(documents(), max_size=2))),
        family=draw(st.none() | families()),
    )


_PHONES = ("13900000001", "17000000099", "13812345678")  # two are on the baseline's lists


def third_parties() -> st.SearchStrategy[ThirdParty]:
    """Someone at the counter with the customer (sometimes a listed agent's phone)."""
    return st.builds(
        ThirdParty,
        role=st.sampled_from(list(ThirdPartyRole)),
        phone=st.none() | st.sampled_from(_PHONES),
        relationship=st.none() | st.sampled_from(list(Relationship)),
        answers_for_customer=st.booleans(),
    )


def documents() -> st.SearchStrategy[Document]:
    """A document shown at the counter."""
    return st.builds(Document, kind=st.sampled_from(list(DocumentKind)), verified=st.booleans())


@st.composite
def _families(draw: st.DrawFn) -> FamilyConfirmation:
    present, reached = draw(st.booleans()), draw(st.booleans())
    confirms = draw(st.none() | st.booleans()) if present or reached else None
    return FamilyConfirmation(present=present, reached_by_phone=reached, confirms=confirms)


def families() -> st.SearchStrategy[FamilyConfirmation]:
    """A family member present or reached by phone, confirming or not."""
    return _families()


def _openings() -> st.SearchStrategy[AccountOpening]:
    counts = st.none() | st.integers(0, 12)
    return st.builds(
        AccountOpening,
        purpose=st.none() | st.sampled_from(list(AccountPurpose)),
        accounts_at_other_banks=counts,
        opened_elsewhere_last_30d=counts,
        accompanied=st.booleans(),
    )


def events(
    kind: TransactionKind | str | None = None,
    typology: Typology | str | None = None,
    age_band: AgeBand | None = None,
    amount_range: AmountRange = (0, 1_000_000),
    at: dt.datetime | None = None,
    *,
    customer: Customer | None = None,
) -> st.SearchStrategy[Event]:
    """Valid events.

    ``kind``: one transaction kind (default: any; with a typology, the kinds it uses).
    ``typology``: the counter signs, wording and victim ages of a scam typology (the signs are
    drawn, not forced: a typology event may look innocent, as in life).
    ``age_band=(min, max)``: the customer's age at the branch on the event's day.
    ``amount_range=(min_yuan, max_yuan)``: inclusive, in yuan (ints, Decimals or strings).
    ``at``: a fixed aware timestamp (default: any time 2023 to mid-2026 at several UTC
    offsets; events in the future are refused).
    ``customer``: a fixed customer (then ``age_band`` is ignored).
    """
    low, high = (_yuan_to_fen(value) for value in amount_range)
    if low > high:
        raise ValueError(
            f"amount_range minimum {amount_range[0]} is above its maximum {amount_range[1]}"
        )
    if at is not None and (at.tzinfo is None or at.utcoffset() is None):
        raise ValueError("at must be an aware datetime")
    return _events(
        None if kind is None else TransactionKind(kind),
        None if typology is None else Typology(typology),
        _check_band(age_band),
        (low, high),
        at,
        customer,
    )


@st.composite
def _histories(
    draw: st.DrawFn,
    customer: Customer,
    min_size: int,
    max_size: int,
    end: dt.datetime,
    days: int,
) -> list[Event]:
    size = draw(st.integers(min_size, max_size))
    offsets = sorted(
        draw(st.lists(st.integers(1, days * 86400), min_size=size, max_size=size)), reverse=True
    )
    account = draw(accounts(on=(end - dt.timedelta(days=days)).date()))
    history = []
    for index, seconds in enumerate(offsets):
        event = draw(
            events(
                kind=draw(
                    st.sampled_from(
                        (
                            TransactionKind.CASH_WITHDRAWAL,
                            TransactionKind.CASH_DEPOSIT,
                            TransactionKind.TRANSFER,
                            TransactionKind.REMITTANCE,
                        )
                    )
                ),
                amount_range=(1, 200_000),
                at=end - dt.timedelta(seconds=seconds),
                customer=customer,
            )
        )
        history.append(event.model_copy(update={"event_id": f"H{index:05d}", "account": account}))
    return history


def histories(
    customer: Customer,
    n: int | tuple[int, int] = (0, 20),
    *,
    end: dt.datetime = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    days: int = 10,
) -> st.SearchStrategy[list[Event]]:
    """Executed history of ``customer``: ``n`` events (or a size in the ``(min, max)`` range)
    in time order over the ``days`` before ``end``, on one account, with unique ids ``H00000``..
    Feed them to ``Guard.record_executed`` before screening an event at or after ``end``."""
    low, high = (n, n) if isinstance(n, int) else n
    if not 0 <= low <= high:
        raise ValueError(f"n must be a size or a (min, max) range, got {n}")
    return _histories(customer, low, high, end, days)


@dataclass(frozen=True)
class CounterVisit:
    """One visit to the counter as it unfolds: the request as keyed, then with the teller's
    observations, then with the questionnaire answered one question at a time. Every stage is
    the same request (same ``event_id``) knowing more."""

    typology: Typology | None
    stages: tuple[Event, ...]

    @property
    def keyed(self) -> Event:
        return self.stages[0]

    @property
    def final(self) -> Event:
        return self.stages[-1]


_QUESTION_ORDER: tuple[tuple[str, ...], ...] = (
    ("stated_purpose", "purpose_detail"),
    ("knows_payee", "payee_relationship", "met_payee_in_person"),
    ("instructed_by_other", "told_to_keep_secret"),
    ("family_aware", "promised_return_pct"),
)


@st.composite
def _counter_visits(
    draw: st.DrawFn,
    typology: Typology | None,
    kind: TransactionKind | None,
    age_band: AgeBand | None,
    amount_range: AmountRange,
) -> CounterVisit:
    final = draw(events(kind=kind, typology=typology, age_band=age_band, amount_range=amount_range))
    keyed = final.model_copy(update={"observations": Observations(), "answers": Answers()})
    stages = [keyed, keyed.model_copy(update={"observations": final.observations})]
    known: dict[str, object] = {}
    for fields in _QUESTION_ORDER:
        for name in fields:
            known[name] = getattr(final.answers, name)
        answers = Answers.model_validate(known)
        stages.append(stages[-1].model_copy(update={"answers": answers}))
    return CounterVisit(typology, tuple(stages))


def counter_visits(
    typology: Typology | str | None = None,
    *,
    kind: TransactionKind | str | None = None,
    age_band: AgeBand | None = None,
    amount_range: AmountRange = (0, 1_000_000),
) -> st.SearchStrategy[CounterVisit]:
    """A request and how it unfolds at the counter (see :class:`CounterVisit`); with
    ``typology=None`` either a scam of any typology or an ordinary visit."""
    chosen = st.just(None if typology is None else Typology(typology))
    if typology is None:
        chosen = st.none() | typologies()
    kind_value = None if kind is None else TransactionKind(kind)
    return chosen.flatmap(lambda t: _counter_visits(t, kind_value, age_band, amount_range))


@st.composite
def _streams(draw: st.DrawFn, customers_range: tuple[int, int]) -> list[StreamLine]:
    lines: list[StreamLine] = []
    end = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    for _ in range(draw(st.integers(*customers_range))):
        customer = draw(customers())
        past = draw(histories(customer, (0, 12), end=end, days=draw(st.integers(1, 12))))
        requests = draw(st.lists(events(customer=customer), min_size=1, max_size=4))
        for event in [*past, *requests]:
            label = draw(st.sampled_from(LABELS))
            hint = draw(st.sampled_from(("if_allowed", "if_allowed", "always")))
            lines.append(StreamLine(label=label, executed_history_hint=hint, event=event))
    lines.sort(key=lambda line: line.event.timestamp)
    return [
        line.model_copy(
            update={"event": line.event.model_copy(update={"event_id": f"E{index:05d}"})}
        )
        for index, line in enumerate(lines)
    ]


def streams(customers_range: tuple[int, int] = (1, 3)) -> st.SearchStrategy[list[StreamLine]]:
    """A labelled stream in the one line format (:class:`guardrail.model.stream.StreamLine`):
    a few customers' histories and requests interleaved in time, random labels, some lines
    background history; unique ids ``E00000``.., timestamps may share an instant. Write it with
    ``StreamLine.to_json`` for the replays."""
    low, high = customers_range
    if not 1 <= low <= high:
        raise ValueError(f"customers_range must be (min, max), 1 <= min <= max; got {low, high}")
    return _streams(customers_range)
