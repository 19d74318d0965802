"""The expression parser on its own: precedence, literals, positions of errors."""

from __future__ import annotations

import pytest

from guardrail.lang.errors import ExpressionError
from guardrail.lang.expr import (
    MAX_DEPTH,
    Boolean,
    Comparison,
    ListLit,
    Logic,
    Matches,
    Membership,
    Name,
    Not,
    Number,
    String,
    parse,
)


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    tree = parse("a or not b and c")
    assert isinstance(tree, Logic) and tree.op == "or"
    left, right = tree.operands
    assert left == Name("a", 0)
    assert isinstance(right, Logic) and right.op == "and"
    assert isinstance(right.operands[0], Not)
    assert right.operands[1] == Name("c", 15)


def test_comparisons_literals_lists_and_lexicons() -> None:
    tree = parse("amount >= 50_000.50 and kind in ['transfer', \"remittance\"] and notes matches x")
    assert isinstance(tree, Logic)
    compare, membership, matches = tree.operands
    assert isinstance(compare, Comparison) and compare.op == ">="
    assert compare.right == Number("50000.50", 10)  # digit separators dropped
    assert isinstance(membership, Membership) and not membership.negated
    assert isinstance(membership.right, ListLit)
    assert [item.value for item in membership.right.items if isinstance(item, String)] == [
        "transfer",
        "remittance",
    ]
    assert isinstance(matches, Matches) and matches.lexicon.path == "x"
    assert parse("customer.id not in watchlist.fraud") == Membership(
        True, Name("customer.id", 0), Name("watchlist.fraud", 19), 12
    )
    assert parse("true") == Boolean(True, 0)


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("amount = 5", "use '=='", 7),
        ("a && b", "use 'and'", 2),
        ("(amount > 5", "')'", 11),
        ("amount >", "expected", 8),
        ("'unterminated", "", 0),
        ("", "", 0),
    ],
)
def test_errors_name_the_problem_and_where(text: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as raised:
        parse(text)
    assert message in raised.value.message
    assert raised.value.offset == offset


def test_nesting_is_bounded() -> None:
    parse("(" * (MAX_DEPTH - 1) + "a" + ")" * (MAX_DEPTH - 1))
    with pytest.raises(ExpressionError, match="nest"):
        parse("not " * (MAX_DEPTH + 5) + "a")
