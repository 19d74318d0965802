"""The root of every exception guardrail raises on purpose.

Imports nothing of ours, so every layer can derive its errors from it; catching
``GuardrailError`` catches every error guardrail documents."""

from __future__ import annotations


class GuardrailError(Exception):
    """Base class of every public guardrail exception."""


class StoreError(GuardrailError):
    """A history, session or audit store could not be opened, read or written.

    The message names the store's URL with any password masked, and the cause."""


class EventError(GuardrailError, ValueError):
    """An event failed validation. ``problems`` lists ``(field path, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__(
            "invalid event:\n" + "\n".join(f"  {path}: {message}" for path, message in problems)
        )
