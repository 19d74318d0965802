"""The rule language: YAML packs, conditions parsed to a typed IR, checked at load time."""

from guardrail.lang.errors import Diagnostic, ExpressionError, Location, PackError, Severity
from guardrail.lang.loader import lint_pack, load_pack
from guardrail.lang.pack import Pack

__all__ = [
    "Diagnostic",
    "ExpressionError",
    "Location",
    "Pack",
    "PackError",
    "Severity",
    "lint_pack",
    "load_pack",
]
