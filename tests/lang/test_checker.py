"""The checker on its own: types against the catalogue, negation pushed into comparisons,
money in fen, unknown names with a suggestion."""

from __future__ import annotations

import pytest

from guardrail.lang.catalog import Catalog, FieldType
from guardrail.lang.checker import Checker
from guardrail.lang.errors import ExpressionError
from guardrail.lang.ir import All, AnyOf, Compare, Const, Op, RefKind, render, walk

CHECKER = Checker(Catalog.for_pack({}), lexicons={"safe_account"}, watchlists={"involved"})


def test_money_is_yuan_in_the_text_and_fen_in_the_ir() -> None:
    condition = CHECKER.check("amount >= 50000.5")
    assert condition == Compare(
        Op.GE, condition.left, Const(5_000_050, FieldType.MONEY)
    ) and isinstance(condition, Compare)
    assert condition.left.key == "amount"


def test_not_is_pushed_into_the_comparisons() -> None:
    condition = CHECKER.check("not (amount > 100 and observations.on_phone)")
    assert isinstance(condition, AnyOf)
    assert render(condition) == "(amount <= 10000 or observations.on_phone == False)"
    assert not any(isinstance(item, All) for item in condition.items)


def test_membership_lexicons_and_watchlists_become_comparisons() -> None:
    condition = CHECKER.check(
        "kind in ['transfer', 'remittance'] and notes matches lexicon.safe_account "
        "and counterparty.account in watchlist.involved"
    )
    compares = list(walk(condition))
    assert [c.op for c in compares] == [Op.EQ, Op.EQ, Op.EQ, Op.EQ]
    kinds = {c.left.kind for c in compares}
    assert kinds == {RefKind.FIELD, RefKind.LEXICON, RefKind.WATCHLIST}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("amount >= 'lots'", "amount"),
        ("customer.agee >= 60", "did you mean 'customer.age'"),
        ("notes matches lexicon.unknown", "unknown"),
        ("kind == 'teleport'", "teleport"),
    ],
)
def test_mistakes_are_named(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(")):
        CHECKER.check(text)
