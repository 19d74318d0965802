"""Type-check a parsed condition against the catalogue and lower it to IR.

Everything a rule author can get wrong is caught here, at load time: an unknown field (with a
suggestion), a number compared with a string, money compared with a count, ``>`` on a
category, an unknown lexicon or watchlist, a condition that is always true.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal, InvalidOperation

from guardrail.lang import expr as ast
from guardrail.lang.catalog import Catalog, FieldInfo, FieldType
from guardrail.lang.errors import ExpressionError, did_you_mean
from guardrail.lang.ir import (
    All,
    AnyOf,
    Compare,
    Condition,
    Const,
    FieldRef,
    Op,
    RefKind,
    lexicon_key,
    watchlist_key,
)

MAX_STRING_LITERAL = 200
_ORDERED = {FieldType.INT, FieldType.MONEY}
_TYPE_WORDS = {
    FieldType.BOOL: "a yes/no flag",
    FieldType.INT: "a count (whole number)",
    FieldType.MONEY: "money",
    FieldType.ENUM: "a category",
    FieldType.STRING: "a code or identifier",
    FieldType.TEXT: "free text",
}


class Checker:
    """Checks conditions of one pack: its catalogue, lexicon names and watchlist names."""

    def __init__(
        self, catalog: Catalog, lexicons: Collection[str], watchlists: Collection[str]
    ) -> None:
        self.catalog = catalog
        self.lexicons = lexicons
        self.watchlists = watchlists

    def check(self, text: str) -> Condition:
        """Parse and check ``text``; raises ``ExpressionError`` with the offset of the problem."""
        node = ast.parse(text)
        return self._condition(node, negated=False)

    # -- conditions -------------------------------------------------------------------------

    def _condition(self, node: ast.Node, negated: bool) -> Condition:
        if isinstance(node, ast.Logic):
            items = tuple(self._condition(item, negated) for item in node.operands)
            is_and = (node.op == "and") != negated  # De Morgan
            return All(items) if is_and else AnyOf(items)
        if isinstance(node, ast.Not):
            return self._condition(node.operand, not negated)
        if isinstance(node, ast.Comparison):
            return self._comparison(node, negated)
        if isinstance(node, ast.Membership):
            return self._membership(node, negated)
        if isinstance(node, ast.Matches):
            return self._matches(node, negated)
        if isinstance(node, ast.Name):
            field = self._field(node)
            if field.type is not FieldType.BOOL:
                raise ExpressionError(
                    f"{field.name} is {_TYPE_WORDS[field.type]}, not a yes/no flag: compare it "
                    f"with something, e.g. '{field.name} {_example(field)}'",
                    node.offset,
                )
            return Compare(Op.EQ, _ref(field), Const(not negated, FieldType.BOOL))
        if isinstance(node, ast.Boolean):
            truth = "true" if node.value != negated else "false"
            raise ExpressionError(f"condition is always {truth}", node.offset)
        raise ExpressionError("a condition must be a test that is true or false", node.offset)

    def _comparison(self, node: ast.Comparison, negated: bool) -> Condition:
        op = Op(node.op)
        left, right = node.left, node.right
        if not isinstance(left, ast.Name) and isinstance(right, ast.Name):
            left, right, op = right, left, op.mirrored()
        if not isinstance(left, ast.Name):
            raise ExpressionError("comparison of two constants: name a field", node.offset)
        field = self._field(left)
        if field.type is FieldType.TEXT:
            raise ExpressionError(
                f"{field.name} is free text: use '{field.name} matches lexicon.NAME'", node.offset
            )
        if op not in (Op.EQ, Op.NE) and field.type not in _ORDERED:
            raise ExpressionError(
                f"unsupported operator {op.value!r} for {field.name}, which is "
                f"{_TYPE_WORDS[field.type]}: use '==' or '!='",
                node.offset,
            )
        if isinstance(right, ast.Name):
            other = self._field(right)
            if other.type is not field.type or other.values != field.values:
                raise ExpressionError(
                    f"type mismatch: {field.name} is {_TYPE_WORDS[field.type]} but {other.name} "
                    f"is {_TYPE_WORDS[other.type]}",
                    node.offset,
                )
            if other.name == field.name:
                raise ExpressionError(f"{field.name} is compared with itself", node.offset)
            final = op.negated() if negated else op
            return Compare(final, _ref(field), _ref(other))
        const = self._literal(field, right)
        _refuse_constant_outcome(field, op, const, node.offset, negated)
        return Compare(op.negated() if negated else op, _ref(field), const)

    def _membership(self, node: ast.Membership, negated: bool) -> Condition:
        if not isinstance(node.left, ast.Name):
            raise ExpressionError("'in' needs a field on its left", node.offset)
        field = self._field(node.left)
        inside = node.negated == negated  # "not in" under "not" is "in"
        if isinstance(node.right, ast.Name):
            prefix, _, name = node.right.path.partition(".")
            if prefix != "watchlist" or not name or "." in name:
                raise ExpressionError(
                    f"expected a list [..] or 'watchlist.NAME', found {node.right.path!r}",
                    node.right.offset,
                )
            if name not in self.watchlists:
                raise ExpressionError(
                    f"unknown watchlist {name!r}" + did_you_mean(name, self.watchlists),
                    node.right.offset,
                )
            if field.type is not FieldType.STRING:
                raise ExpressionError(
                    f"{field.name} is {_TYPE_WORDS[field.type]}; "
                    "watchlists hold codes and identifiers",
                    node.offset,
                )
            ref = FieldRef(
                watchlist_key(field.name, name), FieldType.BOOL, RefKind.WATCHLIST, field.name, name
            )
            return Compare(Op.EQ, ref, Const(inside, FieldType.BOOL))
        if not node.right.items:
            raise ExpressionError("empty list: the test could never be true", node.right.offset)
        if field.type not in (FieldType.ENUM, FieldType.STRING, FieldType.INT, FieldType.MONEY):
            raise ExpressionError(
                f"'in' is not supported for {_TYPE_WORDS[field.type]}", node.offset
            )
        consts: list[Const] = []
        for item in node.right.items:
            const = self._literal(field, item)
            if const not in consts:
                consts.append(const)
        op = Op.EQ if inside else Op.NE
        tests: tuple[Condition, ...] = tuple(Compare(op, _ref(field), const) for const in consts)
        if len(tests) == 1:
            return tests[0]
        return AnyOf(tests) if inside else All(tests)

    def _matches(self, node: ast.Matches, negated: bool) -> Condition:
        if not isinstance(node.left, ast.Name):
            raise ExpressionError("'matches' needs a text field on its left", node.offset)
        field = self._field(node.left)
        if field.type is not FieldType.TEXT:
            raise ExpressionError(
                f"{field.name} is {_TYPE_WORDS[field.type]}; 'matches' works on free text "
                "(purpose.text, notes, answers.purpose_detail, any_text)",
                node.offset,
            )
        prefix, _, name = node.lexicon.path.partition(".")
        if prefix != "lexicon" or not name or "." in name:
            raise ExpressionError(
                f"expected 'lexicon.NAME' after 'matches', found {node.lexicon.path!r}",
                node.lexicon.offset,
            )
        if name not in self.lexicons:
            raise ExpressionError(
                f"unknown lexicon {name!r}" + did_you_mean(name, self.lexicons), node.lexicon.offset
            )
        ref = FieldRef(
            lexicon_key(field.name, name), FieldType.BOOL, RefKind.LEXICON, field.name, name
        )
        return Compare(Op.EQ, ref, Const(not negated, FieldType.BOOL))

    # -- operands -----------------------------------------------------------------------------

    def _field(self, node: ast.Name) -> FieldInfo:
        info = self.catalog.get(node.path)
        if info is not None:
            return info
        head = node.path.split(".", 1)[0]
        if head in ("lexicon", "watchlist"):
            raise ExpressionError(
                f"{node.path} is not a field: "
                "use 'FIELD matches lexicon.NAME' or 'FIELD in watchlist.NAME'",
                node.offset,
            )
        raise ExpressionError(
            f"unknown field {node.path!r}" + did_you_mean(node.path, self.catalog.names()),
            node.offset,
        )

    def _literal(self, field: FieldInfo, node: ast.Node) -> Const:
        kind = field.type
        if isinstance(node, ast.Boolean):
            if kind is not FieldType.BOOL:
                raise _mismatch(field, "a yes/no value", node.offset)
            return Const(node.value, kind)
        if isinstance(node, ast.Number):
            if kind is FieldType.INT:
                if "." in node.text:
                    raise ExpressionError(
                        f"{field.name} is a whole number; {node.text} is not", node.offset
                    )
                return Const(int(node.text), kind)
            if kind is FieldType.MONEY:
                return Const(_yuan_to_fen(node), kind)
            raise _mismatch(field, "a number", node.offset)
        if isinstance(node, ast.String):
            if kind is FieldType.ENUM:
                if node.value not in field.values:
                    raise ExpressionError(
                        f"{node.value!r} is not a value of {field.name}"
                        + did_you_mean(node.value, field.values)
                        + f" (allowed: {', '.join(field.values)})",
                        node.offset,
                    )
                return Const(node.value, kind)
            if kind is FieldType.STRING:
                if not node.value or len(node.value) > MAX_STRING_LITERAL:
                    raise ExpressionError(
                        f"string literal must be 1 to {MAX_STRING_LITERAL} characters", node.offset
                    )
                return Const(node.value, kind)
            raise _mismatch(field, "a string", node.offset)
        if isinstance(node, ast.Name):
            raise ExpressionError("expected a value", node.offset)
        raise ExpressionError("expected a literal value", node.offset)


def _ref(field: FieldInfo) -> FieldRef:
    return FieldRef(field.name, field.type)


def _mismatch(field: FieldInfo, what: str, offset: int) -> ExpressionError:
    return ExpressionError(
        f"type mismatch: {field.name} is {_TYPE_WORDS[field.type]} but is compared with {what}",
        offset,
    )


def _yuan_to_fen(node: ast.Number) -> int:
    try:
        value = Decimal(node.text)
    except InvalidOperation:
        raise ExpressionError(f"not a number: {node.text!r}", node.offset) from None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ExpressionError("money has at most two decimals (fen)", node.offset)
    return int(value * 100)


def _refuse_constant_outcome(
    field: FieldInfo, op: Op, const: Const, offset: int, negated: bool
) -> None:
    """Spot ``amount >= 0`` (always true) and ``amount < 0`` (never true) on non-negative fields."""
    if not field.non_negative or not isinstance(const.value, int) or isinstance(const.value, bool):
        return
    value = const.value
    always = (
        (op is Op.GE and value <= 0) or (op is Op.GT and value < 0) or (op is Op.NE and value < 0)
    )
    never = (
        (op is Op.LT and value <= 0) or (op is Op.LE and value < 0) or (op is Op.EQ and value < 0)
    )
    if always or never:
        truth = "true" if always != negated else "false"
        raise ExpressionError(
            f"{field.name} is never negative, so this test is always {truth}", offset
        )


def _example(field: FieldInfo) -> str:
    if field.type is FieldType.ENUM and field.values:
        return f"== {field.values[0]!r}"
    if field.type in _ORDERED:
        return ">= 100"
    if field.type is FieldType.TEXT:
        return "matches lexicon.NAME"
    return "== 'X'"
