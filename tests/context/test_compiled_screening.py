"""The generated resolve-and-evaluate function (``context.compiled``) decides exactly as the
interpreted path (``FeaturePlan.resolve`` then the reference backend's ``evaluate``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.context.compiled import screening_source, specialise
from guardrail.context.enrich import STATIC_DERIVED
from guardrail.context.history import InMemoryHistoryStore
from guardrail.context.windows import STATIC_EXPRESSIONS
from guardrail.guard import Guard
from guardrail.lang.catalog import FieldType
from guardrail.lang.ir import All, AnyOf, Compare, Const, FieldRef, Op
from guardrail.lang.loader import load_pack
from guardrail.lang.pack import Pack
from guardrail.model.decision import Decision
from guardrail.model.event import Event
from guardrail.testing import customers, events
from support import BASELINE, ROOT, STARTER

BENCH50 = ROOT / "benchmarks" / "packs" / "bench50"
AT = dt.datetime(2025, 3, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
_PACKS: dict[Path, Pack] = {}


def _pack(path: Path) -> Pack:
    if path not in _PACKS:
        _PACKS[path] = load_pack(path)
    return _PACKS[path]


def _guards(path: Path) -> tuple[Guard, Guard]:
    """A guard on the generated screening and one on the interpreted path, sharing history."""
    pack = _pack(path)
    history = InMemoryHistoryStore()
    generated = Guard(pack, history=history)
    interpreted = Guard(pack, history=history, watchlists=generated.watchlists)
    interpreted._live.screening = None
    assert generated._live.screening is not None
    return generated, interpreted


def _same(decision: Decision) -> Decision:
    return decision.model_copy(update={"elapsed_us": 0})


@st.composite
def _sessions(draw: st.DrawFn) -> list[Event]:
    """Events of one customer at one instant (so every window sees the ones before) and of
    anyone at any time."""
    customer = draw(customers())
    same = st.builds(lambda: None).flatmap(lambda _: events(customer=customer, at=AT))
    return draw(st.lists(st.one_of(same, events()), min_size=1, max_size=6))


@pytest.mark.parametrize("path", [STARTER, BASELINE, BENCH50], ids=lambda p: p.name)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(session=_sessions())
def test_the_generated_screening_decides_as_the_interpreted_path(
    path: Path, session: list[Event]
) -> None:
    generated, interpreted = _guards(path)
    for event in session:
        fast = generated.screen(event)
        slow = interpreted.screen(event)
        assert not slow.failures, slow.failures
        assert _same(fast) == _same(slow)
        generated.record_executed(event)  # one store: both see it in later windows


def test_the_generated_source_can_be_printed() -> None:
    guard = Guard(_pack(BENCH50))
    assert guard._live.screening is not None
    source = screening_source(guard._live.screening)
    assert source.startswith("def screen_event(e, r):")
    assert "hits.append('safe-account-words')" in source
    compile(source, "<printed>", "exec")  # what is printed is the whole function


def test_a_kind_test_is_decided_for_the_block_of_its_kind() -> None:
    kind = FieldRef("kind", FieldType.ENUM)
    amount = Compare(Op.GE, FieldRef("amount", FieldType.MONEY), Const(100, FieldType.MONEY))
    is_cash = Compare(Op.EQ, kind, Const("cash_withdrawal", FieldType.ENUM))
    not_cash = Compare(Op.NE, kind, Const("cash_withdrawal", FieldType.ENUM))
    assert specialise(All((is_cash, amount)), "cash_withdrawal") == amount
    assert specialise(All((is_cash, amount)), "transfer") is False
    assert specialise(AnyOf((is_cash, amount)), "cash_withdrawal") is True
    assert specialise(AnyOf((not_cash, amount)), "cash_withdrawal") == amount
    assert specialise(AnyOf((is_cash, not_cash)), "transfer") is True
    assert specialise(All((not_cash, not_cash)), "transfer") is True


def test_every_derived_feature_of_the_catalogue_has_one_expression() -> None:
    assert set(STATIC_EXPRESSIONS) == STATIC_DERIVED
