"""Both backends must give identical hits: hypothesis generates rules and features, and
events against the starter pack."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.engine import DurableRulesBackend, ReferenceBackend
from guardrail.lang.catalog import BASE_FIELDS, FieldInfo, FieldType
from guardrail.lang.loader import load_pack
from support import write_pack

# Fields by type, and a pool of string values that includes hostile text.
_BY_TYPE: dict[FieldType, list[FieldInfo]] = {}
for _info in BASE_FIELDS:
    _BY_TYPE.setdefault(_info.type, []).append(_info)
_STRING_POOL = [
    "CN-ZJ",
    "CN-SH",
    "6222020200998877665",
    "B1",
    "",
    "'\"\\",
    "安全账户",
    "x" * 300,
    "null",
    "1e9",
]
_STRING_FIELDS = [f for f in _BY_TYPE[FieldType.STRING]]
_ENUM_FIELDS = _BY_TYPE[FieldType.ENUM]
_INT_FIELDS = _BY_TYPE[FieldType.INT]
_MONEY_FIELDS = _BY_TYPE[FieldType.MONEY]
_BOOL_FIELDS = _BY_TYPE[FieldType.BOOL]
_OPS = ["==", "!=", "<", "<=", ">", ">="]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def atoms(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["bool", "int", "money", "enum", "string", "in", "field"]))
    if kind == "bool":
        field = draw(st.sampled_from(_BOOL_FIELDS)).name
        return draw(
            st.sampled_from([field, f"not {field}", f"{field} == true", f"{field} != false"])
        )
    if kind == "int":
        field = draw(st.sampled_from(_INT_FIELDS)).name
        return f"{field} {draw(st.sampled_from(_OPS))} {draw(st.integers(1, 200))}"
    if kind == "money":
        field = draw(st.sampled_from(_MONEY_FIELDS)).name
        value = draw(st.sampled_from(["1", "5000", "50000", "50000.01", "200000", "1000000"]))
        return f"{field} {draw(st.sampled_from(_OPS))} {value}"
    if kind == "enum":
        info = draw(st.sampled_from(_ENUM_FIELDS))
        value = _quote(draw(st.sampled_from(info.values)))
        return f"{info.name} {draw(st.sampled_from(['==', '!=']))} {value}"
    if kind == "string":
        info = draw(st.sampled_from(_STRING_FIELDS))
        value = draw(st.sampled_from([v for v in _STRING_POOL if v and len(v) <= 200]))
        return f"{info.name} {draw(st.sampled_from(['==', '!=']))} {_quote(value)}"
    if kind == "in":
        info = draw(st.sampled_from(_ENUM_FIELDS))
        values = draw(st.lists(st.sampled_from(info.values), min_size=1, max_size=3))
        negation = draw(st.sampled_from(["in", "not in"]))
        return f"{info.name} {negation} [{', '.join(_quote(v) for v in values)}]"
    # field against field of the same type
    group = draw(st.sampled_from([_MONEY_FIELDS, _INT_FIELDS, _BOOL_FIELDS, _STRING_FIELDS]))
    left, right = draw(st.lists(st.sampled_from(group), min_size=2, max_size=2, unique=True))
    ops = _OPS if left.type in (FieldType.INT, FieldType.MONEY) else ["==", "!="]
    return f"{left.name} {draw(st.sampled_from(ops))} {right.name}"


conditions = st.recursive(
    atoms(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        inner.map(lambda c: f"not ({c})"),
    ),
    max_leaves=6,
)


def _feature_value(info: FieldInfo) -> st.SearchStrategy[Any]:
    none = st.none()
    if info.type is FieldType.BOOL:
        return st.one_of(none, st.booleans())
    if info.type is FieldType.INT:
        return st.one_of(none, st.integers(0, 250))
    if info.type is FieldType.MONEY:
        return st.one_of(
            none, st.sampled_from([0, 100, 499999, 500000, 500001, 5000000, 20000000, 100000000])
        )
    if info.type is FieldType.ENUM:
        return st.one_of(none, st.sampled_from(info.values))
    return st.one_of(none, st.sampled_from(_STRING_POOL))


feature_sets = st.fixed_dictionaries(
    {info.name: _feature_value(info) for info in BASE_FIELDS if info.type is not FieldType.TEXT}
)

_counter = itertools.count()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.large_base_example,
        HealthCheck.data_too_large,
    ],
)
@given(
    rules=st.lists(conditions, min_size=1, max_size=8),
    features=st.lists(feature_sets, min_size=20, max_size=20),
)
def test_backends_agree_on_generated_rules(
    tmp_path_factory: Any, rules: list[str], features: list[dict[str, Any]]
) -> None:
    folder: Path = tmp_path_factory.mktemp(f"gen{next(_counter)}")
    write_pack(
        folder, [{"id": f"g{i}", "condition": condition} for i, condition in enumerate(rules)]
    )
    pack = load_pack(folder)
    reference = ReferenceBackend(pack.rules)
    durable = DurableRulesBackend(pack.rules, pack.content_hash)
    for feature_set in features:
        assert reference.evaluate(feature_set) == durable.evaluate(feature_set), feature_set
