"""The texts a session hands to the customer: the pack questionnaire's own, else the defaults
in ``guardrail/data/default_notices.yaml`` (data, not code), the anti-fraud notice then carrying
the hit rules' own notices too."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import yaml

from guardrail.counter.entries import Notice
from guardrail.lang.pack import Pack
from guardrail.model.decision import Decision


@cache
def _defaults() -> dict[str, Any]:
    text = resources.files("guardrail").joinpath("data/default_notices.yaml").read_text("utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def notice_for(pack: Pack, decisions: Sequence[Decision]) -> Notice:
    """The anti-fraud notice this pack hands over after these screenings."""
    questionnaire = pack.questionnaire
    if questionnaire is not None:
        return Notice(**questionnaire.spec.notice.model_dump())
    default = Notice(**_defaults()["notice"])
    extra_zh = [h.notice_zh for d in decisions for h in d.hits if h.notice_zh]
    extra_en = [h.notice_en for d in decisions for h in d.hits if h.notice_en]
    return default.model_copy(
        update={
            "text_zh": "\n".join([default.text_zh, *dict.fromkeys(extra_zh)]),
            "text_en": "\n".join([default.text_en, *dict.fromkeys(extra_en)]),
        }
    )


def risk_acknowledgement_for(pack: Pack) -> Notice:
    """What a customer who insists signs."""
    questionnaire = pack.questionnaire
    if questionnaire is not None and questionnaire.spec.risk_acknowledgement is not None:
        return Notice(**questionnaire.spec.risk_acknowledgement.model_dump())
    return Notice(**_defaults()["risk_acknowledgement"])
