"""The synthetic generator's behaviours as data: scam typologies and legitimate customers.

``typologies.yaml`` and ``legitimate.yaml`` (bundled in ``guardrail/data/simulation``; a
compliance officer copies the folder, edits or adds an entry, and passes it to
``guardrail simulate --behaviours DIR``) describe *episodes*: one or more steps a customer
takes, each with its kind, amount, payee, wording, what the teller may see, and how the customer
answers the counter questions when asked (a victim as coached, a legitimate customer truthfully,
sometimes with a document or the family to confirm). ``guardrail.sim.generator`` plays them.

Probabilities are numbers in [0, 1]; every choice list is drawn uniformly (repeat an entry to
weight it). A file with a mistake is refused whole with ``file: path: message``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guardrail.errors import GuardrailError
from guardrail.model.event import (
    AccountPurpose,
    Channel,
    DocumentKind,
    PurposeCode,
    Relationship,
    ThirdPartyRole,
    TransactionKind,
)

BUNDLED = Path(__file__).resolve().parent.parent / "data" / "simulation"
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Band = Literal["young", "middle", "senior", "elderly"]


class BehaviourError(GuardrailError, ValueError):
    """A behaviour file is missing or wrong; the message names the file and the entry."""


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AmountSpec(_Spec):
    """How much: a log-normal draw, a fixed choice, or a share of an earlier named amount."""

    median: Annotated[float, Field(gt=0)] | None = None
    sigma: Annotated[float, Field(ge=0, le=3)] = 0.8
    step: Annotated[int, Field(ge=1)] = 100  # rounded to this many yuan
    choice: tuple[Annotated[float, Field(ge=0)], ...] = ()
    of: str | None = None  # the name of an earlier step's amount
    share: tuple[float, float] = (1.0, 1.0)  # a uniform share of ``of``
    split: bool = False  # divide by the number of repetitions (one payment split in parts)
    growth: tuple[float, float] = (1.0, 1.0)  # multiplied in at every repetition
    per_repeat: float = 0.0  # median grows by this share per repetition (80000 * (i + 1))

    @model_validator(mode="after")
    def _one_source(self) -> AmountSpec:
        sources = sum((self.median is not None, bool(self.choice), self.of is not None))
        if sources != 1:
            raise ValueError("an amount needs exactly one of median, choice, of")
        return self


class PayeeType(StrEnum):
    NONE = "none"
    PERSON = "person"  # a personal account
    COMPANY = "company"  # a company account named ``name`` + ``suffix``
    SELF = "self"  # the customer's own account elsewhere (same name)
    FAMILY = "family"  # one of the customer's usual family payees
    LANDLORD = "landlord"  # the customer's usual landlord (a person, same region)
    SUPPLIER = "supplier"  # the customer's usual supplier (a company)
    COLLECTOR = (
        "collector"  # one of a few personal accounts shared by every episode of this typology
    )


class PayeeSpec(_Spec):
    type: PayeeType = PayeeType.PERSON
    other_region: Probability = 0.0
    suffix: str = ""  # company names: a random name + this suffix
    region: Literal["any", "branch"] = "any"


class AnswersSpec(_Spec):
    """How the customer answers the four questions when the teller asks them."""

    style: Literal["victim", "truthful"] = "victim"
    stated_purpose: PurposeCode | None = None  # what a victim says (truthful: the real purpose)
    relationship: Relationship = Relationship.UNKNOWN  # the real relationship to the payee
    honesty: Probability = 0.5  # a victim tells the truth (instead of the coached story)
    promised: tuple[int, int] | None = None  # annual return promised, percent, when honest
    knows_payee: bool = True  # truthful customers: do they know the payee personally
    detail: Probability = 0.0  # chance an honest victim repeats a typology phrase as detail
    paid_to_open: Probability = 0.0  # account opening: admits being paid
    lends_account: Probability = 0.0


class ReassureSpec(_Spec):
    """What a legitimate customer can show when questioned: documents, the family."""

    documents: Mapping[DocumentKind, Probability] = Field(default_factory=dict)
    family_present: Probability = 0.0
    family_by_phone: Probability = 0.0


class ThirdPartySpec(_Spec):
    role: ThirdPartyRole
    chance: Probability = 1.0
    answers_for_customer: Probability = 0.0
    listed_phone: Probability = 0.0  # phone on the baseline's surrender-agent list (demo data)


class OpeningSpec(_Spec):
    purpose: tuple[AccountPurpose, ...] = (AccountPurpose.SAVINGS,)
    accounts_at_other_banks: tuple[int, int] = (0, 3)
    opened_elsewhere_last_30d: tuple[int, int] = (0, 0)


class StepSpec(_Spec):
    """One request (or one background credit) of an episode."""

    chance: Probability = 1.0  # the step happens at all
    kind: tuple[TransactionKind, ...]
    amount: AmountSpec | None = None  # None: 0 (limit changes, account opening)
    name: str | None = None  # later steps refer to this amount by name
    channel: Channel = Channel.COUNTER
    day_offset: int = 0  # days after the episode's first day
    after_minutes: tuple[int, int] | None = None  # minutes after the previous step (same day)
    before_minutes: tuple[int, int] | None = None  # minutes before the episode's anchor
    repeat: tuple[int, int] = (1, 1)
    repeat_days: int = 0  # days between repetitions (0: minutes apart, same day)
    change_payee: Probability = 0.0  # per repetition after the first: a new payee
    payee: PayeeSpec | str | None = None  # inline, or the name of an episode payee
    purpose: tuple[PurposeCode, ...] = ()
    text: Probability = 0.0  # chance the purpose text is a typical phrase
    notes: Probability = 0.0  # chance the teller's notes carry a typical phrase
    fixed_text: str = ""  # used instead of a phrase when set and drawn
    observations: Mapping[str, Probability] = Field(default_factory=dict)
    answers: AnswersSpec | None = None
    reassure: ReassureSpec | None = None
    new_daily_limit: AmountSpec | None = None
    third_parties: tuple[ThirdPartySpec, ...] = ()
    opening: OpeningSpec | None = None
    once_days: int | None = None  # legitimate: not again within this many days
    fallback: str | None = None  # legitimate: behaviour to play instead when ``once_days`` bars


class VictimSpec(_Spec):
    bands: tuple[Band, ...] = ("young", "middle", "senior", "elderly")
    mule: bool = False  # a young customer with a new (60%) or dormant card instead


class GroupSpec(_Spec):
    """Several victims of one scheme at one branch within a short span (organised groups)."""

    size: tuple[int, int] = (2, 4)
    within_minutes: int = 60


class Variant(_Spec):
    weight: Annotated[float, Field(gt=0)] = 1.0
    label: str
    steps: tuple[StepSpec, ...] = Field(min_length=1)


class TypologySpec(_Spec):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    title_zh: str
    title_en: str = ""
    source: Annotated[str, Field(min_length=3)]
    weight: Annotated[float, Field(gt=0)]
    victims: VictimSpec = VictimSpec()
    group: GroupSpec | None = None
    phrases: tuple[str, ...] = ()
    payees: Mapping[str, PayeeSpec] = Field(default_factory=dict)
    variants: tuple[Variant, ...] = Field(min_length=1)


class LegitimateSpec(_Spec):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    description: str = ""
    personas: Mapping[str, Annotated[float, Field(gt=0)]]  # persona -> weight of this behaviour
    phrases: tuple[str, ...] = ()
    payees: Mapping[str, PayeeSpec] = Field(default_factory=dict)
    variants: tuple[Variant, ...] = Field(min_length=1)


class _TypologyFile(_Spec):
    typologies: tuple[TypologySpec, ...] = Field(min_length=1)


class _LegitimateFile(_Spec):
    behaviours: tuple[LegitimateSpec, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Behaviours:
    typologies: tuple[TypologySpec, ...]
    legitimate: tuple[LegitimateSpec, ...]

    def legitimate_by_id(self) -> dict[str, LegitimateSpec]:
        return {spec.id: spec for spec in self.legitimate}


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BehaviourError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise BehaviourError(f"{path}: not valid YAML: {error}") from None


def _validate(model: type[BaseModel], path: Path) -> Any:
    data = _read(path)
    try:
        return model.model_validate_json(json.dumps(data, ensure_ascii=False))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
            for item in error.errors(include_url=False)[:5]
        )
        raise BehaviourError(f"{path}: {problems}") from None


def load_behaviours(folder: str | Path | None = None) -> Behaviours:
    """The typologies and legitimate behaviours in ``folder`` (default: the bundled ones)."""
    root = BUNDLED if folder is None else Path(folder)
    typologies = _validate(_TypologyFile, root / "typologies.yaml").typologies
    legitimate = _validate(_LegitimateFile, root / "legitimate.yaml").behaviours
    ids = [t.id for t in typologies]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise BehaviourError(f"{root / 'typologies.yaml'}: duplicate ids {duplicates}")
    names = {b.id for b in legitimate}
    for behaviour in legitimate:
        for variant in behaviour.variants:
            for step in variant.steps:
                if step.fallback is not None and step.fallback not in names:
                    raise BehaviourError(
                        f"{root / 'legitimate.yaml'}: {behaviour.id}: fallback "
                        f"{step.fallback!r} is not a behaviour"
                    )
    return Behaviours(typologies=typologies, legitimate=legitimate)
