"""Engines that evaluate a pack's IR, and ``decide`` that turns hits into a decision.

The durable-rules backend loads its C extension only when asked for (``load_backend``), so
the reference engine runs where durable-rules cannot (Python 3.13 and newer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from guardrail.engine.base import Backend, BackendUnavailable, EngineError
from guardrail.engine.decide import decide
from guardrail.engine.reference import ReferenceBackend
from guardrail.lang.pack import CompiledRule

if TYPE_CHECKING:
    from guardrail.engine.durable_backend import DurableRulesBackend

BACKENDS = ("reference", "durable_rules")

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailable",
    "DurableRulesBackend",
    "EngineError",
    "ReferenceBackend",
    "decide",
    "load_backend",
]


def load_backend(name: str, rules: Sequence[CompiledRule], pack_hash: str = "pack") -> Backend:
    """The backend called ``name`` compiled for ``rules``. ``BackendUnavailable`` when the
    durable-rules engine cannot be loaded here; ``ValueError`` for an unknown name."""
    if name == "reference":
        return ReferenceBackend(rules)
    if name == "durable_rules":
        return _durable_class()(rules, pack_hash)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


def _durable_class() -> type[DurableRulesBackend]:
    try:
        from guardrail.engine.durable_backend import DurableRulesBackend
    except ImportError as error:
        import sys

        raise BackendUnavailable(
            "the durable_rules backend needs the durable-rules package (2.0.28), which is not "
            f"installed or does not load on Python {sys.version_info.major}."
            f"{sys.version_info.minor} ({error}); use the reference backend"
        ) from None
    return DurableRulesBackend


def __getattr__(name: str) -> Any:
    if name == "DurableRulesBackend":
        return _durable_class()
    raise AttributeError(f"module 'guardrail.engine' has no attribute {name!r}")
