"""The typed intermediate representation both engines evaluate.

A condition in IR is in negation normal form: comparisons joined by ``All`` and ``AnyOf``,
no ``not``. Negation was pushed into the comparisons by the checker. Missing values (a
question not yet asked, a customer without a birth date) make a comparison *unknown*, and
an unknown comparison never fires: that is SQL's three-valued logic, and it is exactly what
durable-rules does with a missing field, so both engines agree by construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from guardrail.lang.catalog import FieldType


class Op(str, Enum):
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="

    def negated(self) -> Op:
        return _NEGATION[self]

    def mirrored(self) -> Op:
        """The operator with its operands swapped: ``a < b`` is ``b > a``."""
        return _MIRROR[self]


_NEGATION = {Op.EQ: Op.NE, Op.NE: Op.EQ, Op.LT: Op.GE, Op.GE: Op.LT, Op.LE: Op.GT, Op.GT: Op.LE}
_MIRROR = {Op.EQ: Op.EQ, Op.NE: Op.NE, Op.LT: Op.GT, Op.GT: Op.LT, Op.LE: Op.GE, Op.GE: Op.LE}


class RefKind(str, Enum):
    FIELD = "field"
    LEXICON = "lexicon"  # ``text_field matches lexicon.NAME``: a boolean the context computes
    WATCHLIST = "watchlist"  # ``field in watchlist.NAME``: a boolean the context computes


@dataclass(frozen=True, slots=True)
class FieldRef:
    key: str  # the feature key the engines read
    type: FieldType
    kind: RefKind = RefKind.FIELD
    field: str = ""  # for lexicon and watchlist refs: the field being tested
    name: str = ""  # for lexicon and watchlist refs: the lexicon or list name


Scalar = bool | int | str


@dataclass(frozen=True, slots=True)
class Const:
    value: Scalar
    type: FieldType


@dataclass(frozen=True, slots=True)
class Compare:
    op: Op
    left: FieldRef
    right: FieldRef | Const


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Condition, ...]


Condition = Compare | All | AnyOf


def lexicon_key(field: str, lexicon: str) -> str:
    return f"{field}~{lexicon}"


def watchlist_key(field: str, watchlist: str) -> str:
    return f"{field}@{watchlist}"


def walk(condition: Condition) -> Iterator[Compare]:
    """Every comparison in the condition, left to right."""
    if isinstance(condition, Compare):
        yield condition
        return
    for item in condition.items:
        yield from walk(item)


def refs(condition: Condition) -> list[FieldRef]:
    """Every field reference, in order of first appearance, without repeats."""
    seen: dict[str, FieldRef] = {}
    for compare in walk(condition):
        seen.setdefault(compare.left.key, compare.left)
        if isinstance(compare.right, FieldRef):
            seen.setdefault(compare.right.key, compare.right)
    return list(seen.values())


def render(condition: Condition) -> str:
    """A readable form of the IR, used in explanations and tests."""
    if isinstance(condition, Compare):
        right = (
            condition.right.key
            if isinstance(condition.right, FieldRef)
            else repr(condition.right.value)
        )
        return f"{condition.left.key} {condition.op.value} {right}"
    joiner = " and " if isinstance(condition, All) else " or "
    return "(" + joiner.join(render(item) for item in condition.items) + ")"
