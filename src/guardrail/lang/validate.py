"""Check one YAML item against its pydantic shape and say what is wrong in plain words.

Raw pydantic wording ("Input should be 'amount', 'counterparty' or 'event'") names neither
the value written nor the nearest allowed one; these messages do both.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from guardrail.lang.errors import Collector, did_you_mean
from guardrail.lang.source import Path, Source

Spec = TypeVar("Spec", bound=BaseModel)

_QUOTED = re.compile(r"'([^']*)'")
_EXPECTED_TYPE = {
    "bool_type": "yes or no (true/false)",
    "bool_parsing": "yes or no (true/false)",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "string_type": "text",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "date_type": "a date like 2025-03-01",
    "date_parsing": "a date like 2025-03-01",
    "date_from_datetime_parsing": "a date like 2025-03-01",
    "date_from_datetime_inexact": "a date like 2025-03-01 (no time of day)",
}


def validate_spec(
    model: type[Spec], data: Any, source: Source, path: Path, found: Collector
) -> Spec | None:
    """``data`` as a ``model``, or None after reporting every problem with its location."""
    # JSON mode: strict about types, yet enum names, dates and lists arrive as YAML writes them.
    try:
        return model.model_validate_json(
            json.dumps(data, default=_json_default, ensure_ascii=False)
        )
    except ValidationError as error:
        for problem in error.errors(include_url=False):
            _report(model, problem, source, path, found)
        return None


def _report(
    model: type[BaseModel], problem: ErrorDetails, source: Source, path: Path, found: Collector
) -> None:
    loc = tuple(problem["loc"])
    where = (*path, *loc)
    kind = problem["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        found.error(
            source.location((*where, "__key__")),
            f"unknown field {name!r}" + did_you_mean(name, list(model.model_fields)),
        )
        return
    label = _label(loc) or model.__name__
    if kind == "missing":
        found.error(source.location(path), f"missing required field {label!r}")
        return
    found.error(source.location(where), f"{label}: {plain_message(problem)}")


def plain_message(problem: ErrorDetails) -> str:
    """One validation problem in words, quoting the value that was written."""
    kind = problem["type"]
    value = problem.get("input")
    ctx: dict[str, Any] = dict(problem.get("ctx") or {})
    shown = _shown(value)
    if kind in ("enum", "literal_error"):
        allowed = _QUOTED.findall(str(ctx.get("expected", "")))
        hint = did_you_mean(str(value), allowed) if isinstance(value, str) else ""
        return f"{shown} is not one of {', '.join(allowed)}{hint}"
    if kind in _EXPECTED_TYPE:
        return f"expected {_EXPECTED_TYPE[kind]}, got {shown}"
    if kind == "string_pattern_mismatch":
        return (
            f"{shown} is not allowed here: use lowercase letters, digits, '_' and '-' "
            f"(pattern {ctx.get('pattern')})"
        )
    if kind == "string_too_short":
        return (
            "must not be empty"
            if ctx.get("min_length") == 1
            else (f"{shown} is shorter than {ctx.get('min_length')} characters")
        )
    if kind == "string_too_long":
        return f"longer than {ctx.get('max_length')} characters"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }[kind]
        bound = next(iter(ctx.values()), "")
        return f"{shown} must be {words} {bound}"
    if kind == "value_error":
        message = str(problem["msg"])
        return message.removeprefix("Value error, ")
    return f"{problem['msg']} (got {shown})"


def _label(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part + 1}]")
        else:
            parts.append(("." if parts else "") + part)
    return "".join(parts)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_default(value: Any) -> str:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"unsupported YAML value of type {type(value).__name__}")
