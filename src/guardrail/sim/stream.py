"""The one line format of a labelled event stream (JSONL), written by ``guardrail simulate``,
read by ``guardrail replay`` and produced by the ``guardrail.testing`` strategies:

    {"label": "fraud"|"legitimate", "typology": ..., "scenario": ...,
     "executed_history_hint": "if_allowed"|"always", "event": {...}}

``executed_history_hint`` ``always`` marks background history from another channel: recorded as
executed without being screened."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

from guardrail.model.event import Event

Label = Literal["fraud", "legitimate"]
HistoryHint = Literal["if_allowed", "always"]


class StreamLine(BaseModel):
    """One line; the event inside is validated by the strict ``Event`` model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: Label
    typology: str | None = None
    scenario: str | None = None
    executed_history_hint: HistoryHint = "if_allowed"
    event: Event

    def to_json_line(self) -> str:
        """The line as compact JSON (no newline); event defaults are left out."""
        return encode_line(
            self.label, self.typology, self.scenario, self.executed_history_hint, self.event
        )


def encode_line(
    label: Label,
    typology: str | None,
    scenario: str | None,
    executed_history_hint: HistoryHint,
    event: Event,
) -> str:
    """One stream line as compact JSON (no newline)."""
    return json.dumps(
        {
            "label": label,
            "typology": typology,
            "scenario": scenario,
            "executed_history_hint": executed_history_hint,
            "event": event.model_dump(mode="json", exclude_defaults=True),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
