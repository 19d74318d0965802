"""The counter session: four questions, one notice (四问一告知) as one workflow object.

Open a session with the request, ask the questions, record answers and observations (each
re-screened with the pack), hand over the notice, escalate to the supervisor, record the
outcome, close. Illegal steps raise :class:`IllegalStep`; a session serialises to JSON and
resumes exactly; every step goes to the audit log when one is given.
"""

from guardrail.counter.errors import IllegalStep
from guardrail.counter.gates import GateView, execute_refusal, outcome_refusal
from guardrail.counter.outcome import PREVENTED_OUTCOMES, Outcome, prevented
from guardrail.counter.questions import AnswerError, AnswerValue, questions_to_ask, validate_answer
from guardrail.counter.record import OverrideRecord, SessionRecord
from guardrail.counter.session import (
    ANSWER_DRIVEN_TAGS,
    OBSERVATION_NAMES,
    CounterSession,
    Notice,
    StepEntry,
    effective_action,
)
from guardrail.counter.states import TRANSITIONS, State, Step, allowed_steps, next_state

__all__ = [
    "ANSWER_DRIVEN_TAGS",
    "OBSERVATION_NAMES",
    "PREVENTED_OUTCOMES",
    "TRANSITIONS",
    "AnswerError",
    "AnswerValue",
    "CounterSession",
    "GateView",
    "IllegalStep",
    "Notice",
    "Outcome",
    "OverrideRecord",
    "SessionRecord",
    "State",
    "Step",
    "StepEntry",
    "allowed_steps",
    "effective_action",
    "execute_refusal",
    "next_state",
    "outcome_refusal",
    "prevented",
    "questions_to_ask",
    "validate_answer",
]
