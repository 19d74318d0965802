"""What screening returns: the action on the ladder, obligations beside it, and every hit."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

JsonScalar = bool | int | str | None


class Action(str, Enum):
    """The action ladder, lowest first. The highest action among the hits wins."""

    PROCEED = "proceed"
    NOTICE = "notice"  # hand over the anti-fraud notice
    INQUIRE = "inquire"  # run the questionnaire
    REVIEW = "review"  # operations supervisor reviews
    HOLD = "hold"  # delay, verify, contact family
    INTERCEPT = "intercept"  # refuse and dissuade
    REPORT = "report"  # call 110 / the paired police station / 96110

    @property
    def rank(self) -> int:
        return _RANK[self]

    # str's own comparisons would order by spelling; the ladder orders by rank.
    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Action):
            return NotImplemented
        return _RANK[self] < _RANK[other]

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Action):
            return NotImplemented
        return _RANK[self] <= _RANK[other]

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Action):
            return NotImplemented
        return _RANK[self] > _RANK[other]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Action):
            return NotImplemented
        return _RANK[self] >= _RANK[other]

    # The hash of the value (the member's own text), computed in C: ladders are settled with
    # dictionary lookups by action on every screening.
    __hash__ = str.__hash__


_RANK = {action: index for index, action in enumerate(Action)}

FAIL_CLOSED_FLOOR = Action.REVIEW
"""The least action of a decision when anything inside screening failed: never a silent proceed."""

TITLES_ZH: dict[Action, str] = {
    Action.PROCEED: "正常办理",
    Action.NOTICE: "风险提示",
    Action.INQUIRE: "四问一告知",
    Action.REVIEW: "主管复核",
    Action.HOLD: "暂缓办理",
    Action.INTERCEPT: "拦截劝阻",
    Action.REPORT: "报警",
}


class Obligation(str, Enum):
    """Regulatory duties that run regardless of fraud; a set beside the action."""

    LARGE_VALUE_REPORT = "large_value_report"
    SUSPICIOUS_TRANSACTION_REPORT = "suspicious_transaction_report"
    CASH_PURPOSE_REGISTRATION = "cash_purpose_registration"
    ADVANCE_BOOKING = "advance_booking"
    DUAL_RECORDING = "dual_recording"
    SIGNED_RISK_NOTICE = "signed_risk_notice"
    IDENTITY_REVERIFICATION = "identity_reverification"
    FAMILY_CONTACT = "family_contact"

    __hash__ = str.__hash__  # the value's hash, as Enum's, computed in C (a hot path)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_Model = TypeVar("_Model", bound=_Frozen)


def trusted(cls: type[_Model], fields: dict[str, Any]) -> _Model:
    """An instance of ``cls`` from ``fields`` that are already what validation would give:
    every field, in declaration order, of its declared type (tuples, enum members, nested
    instances). Skips validation, for ``decide``'s hot path, where every value comes from the
    pack and the resolver; the instance equals, and dumps exactly as, the validated one."""
    instance = _new(cls)
    _set(instance, "__dict__", fields)
    _set(instance, "__pydantic_fields_set__", set(fields))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


_new = object.__new__  # what ``BaseModel`` instances are made with (it defines no __new__)
_set = object.__setattr__


class Evidence(_Frozen):
    """One value a condition looked at: ``customer.age = 72``, or a lexicon term and where."""

    feature: str
    value: JsonScalar
    detail: str = ""


class Hit(_Frozen):
    rule_id: str
    title_zh: str
    title_en: str
    action: Action
    obligations: tuple[Obligation, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    source: str = ""
    notice_zh: str = ""
    notice_en: str = ""
    tags: tuple[str, ...] = ()
    ask: tuple[str, ...] = ()  # questionnaire question ids this rule wants asked


class ScorePart(_Frozen):
    """One rule's contribution to the decision's risk score."""

    rule_id: str
    weight: Annotated[int, Field(ge=0)]


class Cleared(_Frozen):
    """A rule that matched but was cleared by what the customer showed or answered: it drops
    out of the action, and the clearing condition's values are kept as evidence."""

    rule_id: str
    title_zh: str
    title_en: str
    action: Action  # what the rule would have asked for
    evidence: tuple[Evidence, ...] = ()  # values of the rule's own condition
    cleared_by: tuple[Evidence, ...] = ()  # values of its clearing condition


class PackRef(_Frozen):
    name: str
    version: str
    content_hash: str


class Failure(_Frozen):
    """Something went wrong inside screening; the decision was raised to at least ``review``."""

    stage: str
    error_type: str
    message: str


class AdjustmentKind(str, Enum):
    SNOOZE = "snooze"
    CIRCUIT_BREAKER = "circuit_breaker"


class Adjustment(_Frozen):
    """A post-decision policy changed what one rule's hit counts for: a snooze for this
    customer, account or payee, or a tripped circuit breaker capping the rule's action.
    Adjustments only ever lower a hit's action; obligations are never removed."""

    kind: AdjustmentKind
    rule_id: str
    from_action: Action
    to_action: Action
    message: str
    until: dt.datetime | None = None
    approver: str | None = None


class Decision(_Frozen):
    event_id: str
    action: Action
    obligations: tuple[Obligation, ...] = ()
    hits: tuple[Hit, ...] = ()
    pack: PackRef
    backend: str
    failures: tuple[Failure, ...] = ()
    elapsed_us: Annotated[int, Field(ge=0)] = 0
    ladder_action: Action = Action.PROCEED  # the highest uncleared rule alone
    score: Annotated[int, Field(ge=0)] = 0  # sum of the weights of the uncleared hits
    score_action: Action = Action.PROCEED  # what the pack's score bands make of ``score``
    score_parts: tuple[ScorePart, ...] = ()
    cleared: tuple[Cleared, ...] = ()
    watchlists: dict[str, str] = Field(
        default_factory=dict, description="version (from its content) of every list the pack uses"
    )
    adjustments: tuple[Adjustment, ...] = ()

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(hit.rule_id for hit in self.hits)

    @property
    def failed(self) -> bool:
        return bool(self.failures)
