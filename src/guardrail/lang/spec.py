"""The shapes of a pack's YAML: pack metadata, rules, and the counter questionnaire."""

from __future__ import annotations

import datetime as dt
import itertools
from enum import Enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from guardrail.model.decision import Action, Obligation
from guardrail.model.event import TransactionKind

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,79}$")]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=4000)]
Tag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-]{0,39}$")]
Version = Annotated[str, StringConstraints(min_length=1, max_length=40)]
YamlDate = Annotated[dt.date, Field(strict=False)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class ScoreBand(_Spec):
    """From ``min_score`` up, the decision is at least ``action`` (``score_bands`` in pack.yaml)."""

    min_score: Annotated[int, Field(ge=1, le=100000)]
    action: Action


class PackMeta(_Spec):
    """``pack.yaml``: who the pack is and what it layers over."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]
    version: Version
    title_zh: str = ""
    title_en: str = ""
    description: LongText = ""
    extends: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = Field(
        default=None, description="path of the pack this overlay layers over, relative to this pack"
    )
    region: str | None = None
    score_bands: tuple[ScoreBand, ...] = Field(
        default=(),
        description="score thresholds and the action each reaches; an overlay without bands "
        "keeps its base pack's",
    )

    @model_validator(mode="after")
    def _bands_rise(self) -> PackMeta:
        bands = self.score_bands
        for lower, upper in itertools.pairwise(bands):
            if upper.min_score <= lower.min_score or upper.action <= lower.action:
                raise ValueError(
                    "score_bands must rise: each band a higher min_score and a higher action"
                )
        return self


class CircuitBreakerSpec(_Spec):
    """A ceiling on how often a rule may hit: above it, the rule's action is capped until an
    authorised person resets the breaker (a bad threshold must not stop hundreds of people)."""

    max_hit_rate: Annotated[float, Field(gt=0, le=1)] = Field(
        description="share of screened events of the rule's kinds, e.g. 0.05 from a replay"
    )
    window_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 60
    min_screened: Annotated[int, Field(ge=1)] = Field(
        default=100, description="no verdict on fewer screened events than this in the window"
    )
    cap_at: Action = Action.REVIEW


class RuleSpec(_Spec):
    """One rule as written in YAML."""

    id: RuleId
    title_zh: Title
    title_en: Title
    description: LongText = ""
    source: Annotated[str, StringConstraints(min_length=3, max_length=1000)] = Field(
        description="the seed document or regulation the rule encodes"
    )
    applies_to: tuple[TransactionKind, ...] = Field(
        default=(), description="event kinds; empty: all"
    )
    condition: Annotated[str, StringConstraints(min_length=1)]
    action: Action
    obligations: tuple[Obligation, ...] = ()
    notice_zh: LongText = ""
    notice_en: LongText = ""
    ask: tuple[Annotated[str, StringConstraints(min_length=1, max_length=64)], ...] = Field(
        default=(), description="questionnaire question ids this rule wants asked"
    )
    score: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=0, description="weight this rule adds to the decision's risk score when it hits"
    )
    clears: Annotated[str, StringConstraints(min_length=1)] | None = Field(
        default=None,
        description="a condition (on answers, documents, family) that, when true, clears the "
        "rule: it drops out of the decision with the clearing kept as evidence",
    )
    effective_from: YamlDate | None = None
    effective_to: YamlDate | None = None
    tags: tuple[Tag, ...] = ()
    enabled: bool = True
    overrides: bool = Field(
        default=False, description="an overlay rule replacing a base rule of the same id"
    )
    circuit_breaker: CircuitBreakerSpec | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> RuleSpec:
        if self.effective_from and self.effective_to and self.effective_from > self.effective_to:
            raise ValueError("effective_from is after effective_to")
        return self


class AnswerType(str, Enum):
    YES_NO = "yes_no"
    CHOICE = "choice"
    FREE_TEXT = "free_text"
    NUMBER = "number"


class QuestionSpec(_Spec):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    text_zh: Title
    text_en: Title
    answer: Annotated[str, StringConstraints(pattern=r"^answers\.[a-z_]+$")] = Field(
        description="the answers.* field this question fills"
    )
    choices: tuple[str, ...] = ()
    help_zh: LongText = ""
    help_en: LongText = ""


class NoticeSpec(_Spec):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    title_zh: Title
    title_en: Title
    text_zh: LongText
    text_en: LongText
    requires_signature: bool = True


class QuestionnaireSpec(_Spec):
    """The counter questionnaire, e.g. four questions, one notice (四问一告知)."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    title_zh: Title
    title_en: Title
    source: str = ""
    questions: tuple[QuestionSpec, ...]
    notice: NoticeSpec
    risk_acknowledgement: NoticeSpec | None = None

    @model_validator(mode="after")
    def _unique_questions(self) -> QuestionnaireSpec:
        ids = [q.id for q in self.questions]
        if not ids:
            raise ValueError("a questionnaire needs at least one question")
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate question ids: {', '.join(duplicates)}")
        return self
