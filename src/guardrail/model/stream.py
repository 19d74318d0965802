"""One line of a labelled stream: the format ``guardrail simulate`` writes, both replay engines
read (JSONL, or the same fields as Parquet columns) and the testing strategies draw.

A line is one JSON object::

    {"label": "fraud", "typology": "impersonation_police", "scenario": "...",
     "executed_history_hint": "if_allowed", "event": {...}, "when_asked": {...}}

``label`` and ``event`` are required; ``typology`` names a fraud's scam typology;
``executed_history_hint`` ``always`` marks background history that is recorded without being
screened; ``when_asked`` is what the customer answers, shows and who confirms when the teller
asks (see :class:`WhenAsked`)."""

from __future__ import annotations

import json
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from guardrail.model.event import Answers, Document, Event, FamilyConfirmation

Label = Literal["fraud", "legitimate"]
HistoryHint = Literal["if_allowed", "always"]
LABELS: tuple[str, ...] = get_args(Label)
HINTS: tuple[str, ...] = get_args(HistoryHint)
LINE_FIELDS = ("label", "typology", "scenario", "executed_history_hint")
"""The line's own scalar fields, beside ``event`` and ``when_asked``."""


class WhenAsked(BaseModel):
    """The answers, documents and family confirmation a questioned customer gives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    answers: Answers = Answers()
    documents: tuple[Document, ...] = ()
    family: FamilyConfirmation | None = None

    def apply(self, event: Event) -> Event:
        """``event`` as it stands after the questions: answers, documents and family added."""
        return event.model_copy(
            update={
                "answers": self.answers,
                "documents": (*event.documents, *self.documents),
                "family": self.family if self.family is not None else event.family,
            }
        )


class StreamLine(BaseModel):
    """One line of a labelled stream; the event inside is validated by the strict ``Event``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: Label
    typology: str | None = None  # a scam typology for fraud; None for legitimate traffic
    scenario: str | None = None  # e.g. "pension_cash" or "impersonation_police/transfer"
    executed_history_hint: HistoryHint = "if_allowed"
    event: Event
    # What the customer answers, shows and who confirms when the teller questions them: a
    # victim as coached (sometimes the truth), a legitimate customer truthfully. None: nothing.
    when_asked: WhenAsked | None = None

    @property
    def background(self) -> bool:
        """Background history from another channel: recorded, never screened."""
        return self.executed_history_hint == "always"

    def to_json(self) -> str:
        """The line as compact JSON (no newline); defaults of the event are left out."""
        record: dict[str, object] = {
            "label": self.label,
            "typology": self.typology,
            "scenario": self.scenario,
            "executed_history_hint": self.executed_history_hint,
            "event": self.event.model_dump(mode="json", exclude_defaults=True),
        }
        if self.when_asked is not None:
            record["when_asked"] = self.when_asked.model_dump(mode="json", exclude_defaults=True)
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"))
