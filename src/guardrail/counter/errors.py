"""The one error a counter session raises for a step it refuses."""

from __future__ import annotations

from guardrail.errors import GuardrailError


class IllegalStep(GuardrailError):
    """A step was refused; the session is left exactly as it was.

    ``step`` names the step, ``state`` the session state it was tried in, ``reason`` why it
    was refused (in English, for the teller software's log and the teller's screen).

    With an audit log the refused attempt is written as a ``step_refused`` record:
    ``audit_seq`` is its seq. If that write failed, the refusal is still raised and
    ``audit_error`` holds the write's exception (a note on the error says so).
    """

    def __init__(self, step: str, state: str, reason: str) -> None:
        self.step = step
        self.state = state
        self.reason = reason
        self.audit_seq: int | None = None
        self.audit_error: Exception | None = None
        super().__init__(f"step {step!r} refused in state {state!r}: {reason}")
