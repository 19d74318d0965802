"""Checking what a teller or supervisor types into a session step; a bad value refuses the step
with ``IllegalStep`` naming the step, the state and the problem."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from guardrail.counter.errors import IllegalStep
from guardrail.counter.states import State, Step
from guardrail.model.decision import Action
from guardrail.model.event import MAX_TEXT, Identifier

_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)


def identifier(value: str, name: str, step: Step, state: State | None = None) -> str:
    try:
        return _IDENTIFIER.validate_python(value)
    except ValidationError:
        where = state.value if state is not None else "(new)"
        raise IllegalStep(
            step.value, where, f"{name} {value!r} is not a valid identifier"
        ) from None


def action(value: Action | str, step: Step, state: State) -> Action:
    try:
        return Action(value)
    except ValueError:
        known = ", ".join(a.value for a in Action)
        raise IllegalStep(
            step.value, state.value, f"unknown action {value!r}; one of: {known}"
        ) from None


def text(value: str, step: Step, state: State) -> str:
    stripped = value.strip()
    if len(stripped) > MAX_TEXT:
        raise IllegalStep(step.value, state.value, f"text longer than {MAX_TEXT} characters")
    return stripped


def reason(value: str, step: Step, state: State) -> str:
    checked = text(value, step, state)
    if not checked:
        raise IllegalStep(step.value, state.value, "a reason is required")
    return checked
