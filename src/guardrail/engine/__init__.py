"""Engines that evaluate a pack's IR, and ``decide`` that turns hits into a decision."""

from guardrail.engine.base import Backend, EngineError
from guardrail.engine.decide import decide
from guardrail.engine.durable_backend import DurableRulesBackend
from guardrail.engine.reference import ReferenceBackend

BACKENDS = ("reference", "durable_rules")

__all__ = [
    "BACKENDS",
    "Backend",
    "DurableRulesBackend",
    "EngineError",
    "ReferenceBackend",
    "decide",
]
