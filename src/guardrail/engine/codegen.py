"""IR to Python: a pack's conditions generated as the source of one plain Python function and
compiled once at load time, so evaluating a rule costs a few bytecodes per comparison instead
of a closure call each.

Safe by construction: the source is built only from the typed IR, every feature key and
constant is written with ``repr`` (of a ``bool``, ``int`` or ``str``), and nothing from an
event ever reaches the compiler. Semantics are the reference evaluator's: an absent or
``None`` value makes a comparison false, ``All`` is ``and``, ``AnyOf`` is ``or``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from guardrail.lang.ir import All, Compare, Condition, Const, FieldRef, Op

_PYTHON_OP = {Op.EQ: "==", Op.NE: "!=", Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">="}


def expression(condition: Condition, order: Callable[[Condition], int] | None = None) -> str:
    """A Python expression over ``f`` (a ``FeatureMap``) that is true when ``condition`` is.
    Within ``All`` the items are put in ``order`` (cheapest first): under three-valued logic
    the order of a conjunction changes only what is read, never the result."""
    if isinstance(condition, Compare):
        return _compare(condition)
    items = list(condition.items)
    if isinstance(condition, All) and order is not None:
        items.sort(key=order)
    joiner = " and " if isinstance(condition, All) else " or "
    return "(" + joiner.join(expression(item, order) for item in items) + ")"


def _compare(compare: Compare) -> str:
    op = _PYTHON_OP[compare.op]
    left = f"(_a := f[{compare.left.key!r}]) is not None"
    right = compare.right
    if isinstance(right, Const):
        return f"({left} and _a {op} {right.value!r})"
    assert isinstance(right, FieldRef)
    return f"({left} and (_b := f[{right.key!r}]) is not None and _a {op} _b)"


def compile_function(
    name: str,
    body: Sequence[str],
    *,
    parameter: str = "f",
    namespace: Mapping[str, Any] | None = None,
) -> Callable[..., Any]:
    """Compile ``def name(parameter): <body>`` and return the function; ``namespace`` holds
    the globals the body may read (constants of ours, never anything from an event)."""
    source = f"def {name}({parameter}):\n" + "".join(f"    {line}\n" for line in body)
    scope: dict[str, Any] = dict(namespace or {})
    exec(compile(source, f"<guardrail {name}>", "exec"), scope)
    function: Callable[..., Any] = scope[name]
    return function
