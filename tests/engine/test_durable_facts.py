"""The facts the durable backend writes: the generated writer and the one-feature-at-a-time
path give the same JSON, values of unexpected types take the checked path (and the same
hits), and values no rule can compare are refused with an EngineError."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.engine import DurableRulesBackend, ReferenceBackend
from guardrail.engine.base import EngineError
from guardrail.engine.durable_backend import _Unexpected
from guardrail.lang.catalog import FieldType
from guardrail.lang.ir import FieldRef, walk
from guardrail.lang.loader import load_pack
from support import BASELINE

_PACK = load_pack(BASELINE)
_DURABLE = DurableRulesBackend(_PACK.rules, _PACK.content_hash)
_REFERENCE = ReferenceBackend(_PACK.rules)
_TYPES = {
    ref.key: ref.type
    for rule in _PACK.rules
    for compare in walk(rule.guarded)
    for ref in (compare.left, compare.right)
    if isinstance(ref, FieldRef)
}
_STRINGS = [*sorted(_DURABLE._encoder.codes), "", "未知", "x" * 40]


class _Level(enum.IntEnum):
    HIGH = 3


class _Code(str, enum.Enum):
    TRANSFER = "transfer"


def _typed(kind: FieldType) -> st.SearchStrategy[Any]:
    if kind is FieldType.BOOL:
        return st.one_of(st.none(), st.booleans())
    if kind in (FieldType.ENUM, FieldType.STRING):
        return st.one_of(st.none(), st.sampled_from(_STRINGS))
    return st.one_of(st.none(), st.integers(-(10**12), 10**12))


_FEATURES = st.fixed_dictionaries({key: _typed(kind) for key, kind in _TYPES.items()})


def _checked_facts(features: dict[str, Any], fact_id: int) -> list[str]:
    fragments = _DURABLE._encoder.fragments(features)
    return [ruleset.fact(fact_id, fragments) for ruleset in _DURABLE._rulesets]


@settings(max_examples=200, deadline=None)
@given(features=_FEATURES, fact_id=st.integers(1, 10**9))
def test_the_generated_writer_writes_what_the_checked_path_writes(
    features: dict[str, Any], fact_id: int
) -> None:
    facts = _DURABLE._write_facts(features, fact_id)
    assert facts == _checked_facts(features, fact_id)
    for fact in facts:
        decoded = json.loads(fact)
        assert decoded["id"] == fact_id and decoded["sid"] == "0"
    assert _DURABLE.evaluate(features) == _REFERENCE.evaluate(features)


@settings(max_examples=100, deadline=None)
@given(features=_FEATURES, data=st.data())
def test_ints_in_boolean_slots_and_enum_values_take_the_checked_path(
    features: dict[str, Any], data: st.DataObject
) -> None:
    bools = [key for key, kind in _TYPES.items() if kind is FieldType.BOOL]
    ints = [key for key, kind in _TYPES.items() if kind in (FieldType.INT, FieldType.MONEY)]
    features[data.draw(st.sampled_from(bools))] = data.draw(st.sampled_from([0, 1]))
    features[data.draw(st.sampled_from(ints))] = _Level.HIGH
    if "kind" in features:
        features["kind"] = _Code.TRANSFER
    with pytest.raises(_Unexpected):
        _DURABLE._write_facts(features, 1)
    # Written one feature at a time, and still the reference engine's hits.
    assert _DURABLE.evaluate(features) == _REFERENCE.evaluate(features)


@pytest.mark.parametrize("value", [1.5, b"x", ["a"], {"a": 1}])
def test_values_of_no_comparable_type_are_refused(value: object) -> None:
    with pytest.raises(EngineError, match="'amount' has unsupported type"):
        _DURABLE.evaluate({"amount": value})
    with pytest.raises(EngineError, match="'kind' should be a string"):
        _DURABLE.evaluate({"kind": value})
