"""What an engine backend is: compiled once per pack, then asked which rules some features hit."""

from __future__ import annotations

from typing import Protocol

from guardrail.errors import GuardrailError
from guardrail.model.features import Features


class Backend(Protocol):
    """Evaluates every rule of one pack against the features of one event.

    ``evaluate`` returns the ids of every rule whose condition is true, in pack order.
    Implementations are safe to call from many threads at once.
    """

    name: str

    def evaluate(self, features: Features) -> list[str]: ...


class EngineError(GuardrailError):
    """The engine could not evaluate; screening fails closed to at least ``review``."""


class BackendUnavailable(EngineError):
    """The engine asked for cannot be loaded here (durable-rules on Python 3.13 and newer)."""
