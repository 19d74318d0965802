"""The counter session: four questions, one notice (四问一告知) as one workflow object.

Open a session with the request, ask the questions, record answers and observations (each
re-screened with the pack), hand over the notice, escalate to the supervisor, record the
outcome, close. Illegal steps raise :class:`IllegalStep`; a session serialises to JSON and
resumes exactly; every step goes to the journal (the audit log) when one is given.
"""

from guardrail.counter.entries import Notice, StepEntry
from guardrail.counter.errors import IllegalStep
from guardrail.counter.questions import AnswerError
from guardrail.counter.record import OverrideRecord, SessionRecord
from guardrail.counter.session import CounterSession
from guardrail.counter.states import State, Step
from guardrail.model.session import Outcome, prevented

__all__ = [
    "AnswerError",
    "CounterSession",
    "IllegalStep",
    "Notice",
    "Outcome",
    "OverrideRecord",
    "SessionRecord",
    "State",
    "Step",
    "StepEntry",
    "prevented",
]
