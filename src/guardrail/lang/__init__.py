"""The rule language: YAML packs, conditions parsed to a typed IR, checked at load time."""

from guardrail.lang.catalog import Catalog, FieldInfo, FieldType
from guardrail.lang.checker import Checker
from guardrail.lang.declarations import LexiconSpec, WatchlistSpec, WindowSpec
from guardrail.lang.errors import Diagnostic, ExpressionError, Location, PackError, Severity
from guardrail.lang.loader import lint_pack, load_pack
from guardrail.lang.pack import CompiledRule, Pack, Questionnaire
from guardrail.lang.spec import PackMeta, QuestionnaireSpec, RuleSpec

__all__ = [
    "Catalog",
    "Checker",
    "CompiledRule",
    "Diagnostic",
    "ExpressionError",
    "FieldInfo",
    "FieldType",
    "LexiconSpec",
    "Location",
    "Pack",
    "PackError",
    "PackMeta",
    "Questionnaire",
    "QuestionnaireSpec",
    "RuleSpec",
    "Severity",
    "WatchlistSpec",
    "WindowSpec",
    "lint_pack",
    "load_pack",
]
