"""The IR as z3 formulas under the language's three-valued logic.

Every feature is a pair: ``known`` (a Bool: the value is present) and its typed value. A
comparison holds only when both sides are known and the relation holds, which is exactly what
the engines do with a missing value (``None`` makes a comparison false). ``not`` never appears:
the checker pushed it into the comparisons.

The encoding over-approximates the set of real feature maps (windows, lexicon matches, watchlist
membership and history features are free variables with a few known constraints), so a proof
of unsatisfiability (a dead rule, an implication, an equivalence) is sound; a satisfying model
may be one no real event produces, which is why counterexamples are replayed by screening.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import z3

from guardrail.context.windows import ELDERLY_AGE
from guardrail.errors import GuardrailError
from guardrail.lang.catalog import LOCAL_DATE_KEY, REGION_KEY_PREFIX, FieldType
from guardrail.lang.declarations import Aggregate, Measure, WindowSpec
from guardrail.lang.ir import All, AnyOf, Compare, Condition, Const, FieldRef, Op, RefKind
from guardrail.lang.pack import KIND_KEY, CompiledRule, Pack
from guardrail.model.decision import Action, Obligation
from guardrail.model.event import DIRECTION_OF_KIND, TransactionKind
from guardrail.model.money import MAX_AMOUNT

ACTIONS = tuple(Action)  # ladder order, lowest first
OBLIGATIONS = tuple(Obligation)

_MAX_FEN = int(MAX_AMOUNT * 100)  # the largest amount an event may carry, in fen

# Bounds the model guarantees (pydantic validation or how the context computes the field).
_RANGES: dict[str, tuple[int, int]] = {
    "customer.age": (0, 150),
    "event.local_hour": (0, 23),
    "answers.promised_return_pct": (0, 10000),
    "opening.accounts_at_other_banks": (0, 100),
    LOCAL_DATE_KEY: (19000101, 99991231),
    # Money the event itself carries is validated to at most MAX_AMOUNT yuan, so a witness
    # above it could never be replayed; derived sums (windows, history) stay unbounded.
    "amount": (0, _MAX_FEN),
    "new_daily_limit": (0, _MAX_FEN),
}


class NotCovered(GuardrailError):
    """A construct the encoding does not model; the verdict that needs it is 'not covered'."""


@dataclass
class Feature:
    known: z3.BoolRef
    value: z3.ExprRef
    type: FieldType
    values: tuple[str, ...] = ()  # ENUM domain, index = solver value


@dataclass
class Encoder:
    """Solver variables shared by every formula built through one encoder (so two packs read
    the same event), plus the model constraints those variables obey."""

    features: dict[str, Feature] = field(default_factory=dict)
    constraints: list[z3.BoolRef] = field(default_factory=list)
    windows: dict[str, WindowSpec] = field(default_factory=dict)  # variable name -> declaration
    catalog_pack: Pack | None = None  # a pack whose catalogue names every field (the first seen)

    def feature(self, ref: FieldRef, pack: Pack) -> Feature:
        name = self._variable_name(ref, pack)
        found = self.features.get(name)
        if found is not None:
            return found
        info = pack.catalog.get(ref.key)
        known = z3.Bool(f"known:{name}")
        kind = ref.type
        if ref.kind is not RefKind.FIELD or kind is FieldType.BOOL:
            feature = Feature(known, z3.Bool(name), FieldType.BOOL)
        elif kind in (FieldType.INT, FieldType.MONEY):
            value = z3.Int(name)
            feature = Feature(known, value, kind)
            low, high = _RANGES.get(ref.key, (None, None))
            if low is not None and high is not None:
                self.constraints += [value >= low, value <= high]
            elif info is not None and info.non_negative:
                self.constraints.append(value >= 0)
        elif kind is FieldType.ENUM and info is not None and info.values:
            value = z3.Int(name)
            feature = Feature(known, value, kind, info.values)
            self.constraints += [value >= 0, value < len(info.values)]
        elif kind is FieldType.STRING:
            feature = Feature(known, z3.String(name), kind)
        else:
            raise NotCovered(f"field {ref.key} of type {kind.value}")
        if ref.key in (KIND_KEY, "direction", "amount", "currency", LOCAL_DATE_KEY):
            self.constraints.append(known)  # every event has them
        self.features[name] = feature
        if ref.key in (KIND_KEY, "direction"):
            self._direction_follows_kind(pack)
        if self.catalog_pack is None:
            self.catalog_pack = pack
        if ref.key.startswith("window."):
            spec = pack.windows.get(ref.key.removeprefix("window."))
            if spec is not None:
                self.windows[name] = spec
            self._window_bounds(ref, pack, feature)
        if ref.key in ("customer.age", "customer.is_elderly"):
            self._elderly_follows_age(pack)
        if ref.key in ("counterparty.first_seen", "history.same_payee_count_today"):
            self._first_payment_has_no_earlier_today()
        return feature

    def _first_payment_has_no_earlier_today(self) -> None:
        """A payee never paid before has not been paid earlier today either."""
        first = self.features.get("counterparty.first_seen")
        today = self.features.get("history.same_payee_count_today")
        if first is not None and today is not None:
            self.constraints.append(
                z3.Implies(z3.And(first.known, first.value, today.known), today.value == 0)
            )

    def _elderly_follows_age(self, pack: Pack) -> None:
        """``customer.is_elderly`` is ``customer.age >= 60``, unknown exactly when age is."""
        if "customer.age" not in self.features:
            self._plain("customer.age", pack)  # adds the constraints through this method
            return
        if "customer.is_elderly" not in self.features:
            return
        age, elderly = self.features["customer.age"], self.features["customer.is_elderly"]
        self.constraints += [
            elderly.known == age.known,
            z3.Implies(age.known, elderly.value == (age.value >= ELDERLY_AGE)),
        ]

    def _variable_name(self, ref: FieldRef, pack: Pack) -> str:
        # A window, lexicon or watchlist is only the same feature in two packs when declared
        # alike: the declaration's fingerprint is part of the variable's name.
        declaration: object = None
        if ref.key.startswith("window."):
            declaration = pack.windows.get(ref.key.removeprefix("window."))
        elif ref.kind is RefKind.LEXICON:
            declaration = pack.lexicons.get(ref.name)
        elif ref.kind is RefKind.WATCHLIST:
            declaration = (
                pack.watchlists.get(ref.name),
                pack.watchlist_digests.get(ref.name),
            )
        if declaration is None:
            return ref.key
        digest = hashlib.sha256(repr(declaration).encode()).hexdigest()[:10]
        return f"{ref.key}#{digest}"

    def plain(self, key: str, pack: Pack | None = None) -> Feature:
        """The variable of catalogue field ``key`` (created when no formula read it yet)."""
        pack = pack or self.catalog_pack
        if pack is None:
            raise NotCovered(f"field {key}: no pack encoded yet")
        return self._plain(key, pack)

    def _plain(self, key: str, pack: Pack) -> Feature:
        info = pack.catalog.get(key)
        if info is None:
            raise NotCovered(f"field {key} is not in the catalogue")
        return self.feature(FieldRef(key, info.type), pack)

    def _direction_follows_kind(self, pack: Pack) -> None:
        if KIND_KEY not in self.features or "direction" not in self.features:
            return
        kind, direction = self.features[KIND_KEY], self.features["direction"]
        for member, way in DIRECTION_OF_KIND.items():
            self.constraints.append(
                z3.Implies(
                    kind.value == kind.values.index(member.value),
                    direction.value == direction.values.index(way.value),
                )
            )

    def _window_bounds(self, ref: FieldRef, pack: Pack, feature: Feature) -> None:
        """A window that counts this event is at least 1 (counts) or at least its amount (sums
        and maxima of CNY amounts); filters we do not model leave the window free."""
        spec = pack.windows.get(ref.key.removeprefix("window."))
        if spec is None or not spec.include_current or spec.same_purpose:
            return
        if spec.min_customer_age is not None or spec.currency is not None:
            return
        kind = self._plain(KIND_KEY, pack)
        counts: list[z3.BoolRef] = []
        if spec.kinds:
            counts.append(z3.Or(*(kind.value == kind.values.index(k.value) for k in spec.kinds)))
        if spec.direction is not None:
            direction = self._plain("direction", pack)
            counts.append(direction.value == direction.values.index(spec.direction.value))
        if spec.channels:
            channel = self._plain("channel", pack)
            counts.append(
                z3.And(
                    channel.known,
                    z3.Or(*(channel.value == channel.values.index(c.value) for c in spec.channels)),
                )
            )
        if spec.aggregate in (Aggregate.COUNT, Aggregate.COUNT_DISTINCT):
            bound: z3.BoolRef = feature.value >= 1
        elif spec.aggregate in (Aggregate.SUM, Aggregate.MAX) and spec.measure is Measure.AMOUNT:
            amount, currency = self._plain("amount", pack), self._plain("currency", pack)
            counts.append(currency.value == currency.values.index("CNY"))
            bound = feature.value >= amount.value
        else:
            return
        self.constraints.append(z3.Implies(z3.And(feature.known, *counts), bound))

    def condition(self, condition: Condition, pack: Pack) -> z3.BoolRef:
        """The formula that holds exactly when the engines find ``condition`` true."""
        if isinstance(condition, Compare):
            return self._compare(condition, pack)
        parts = [self.condition(item, pack) for item in condition.items]
        if isinstance(condition, All):
            return z3.And(*parts) if parts else z3.BoolVal(True)
        assert isinstance(condition, AnyOf)
        return z3.Or(*parts) if parts else z3.BoolVal(False)

    def _compare(self, compare: Compare, pack: Pack) -> z3.BoolRef:
        left = self.feature(compare.left, pack)
        right = compare.right
        if isinstance(right, Const):
            known: z3.BoolRef = left.known
            other = self._constant(right, left, compare.left.key)
        else:
            right_feature = self.feature(right, pack)
            if right_feature.type is not left.type or right_feature.values != left.values:
                raise NotCovered(f"comparison of {compare.left.key} with {right.key}")
            known = z3.And(left.known, right_feature.known)
            other = right_feature.value
        ordered = compare.op not in (Op.EQ, Op.NE)
        if ordered and left.type not in (FieldType.INT, FieldType.MONEY):
            raise NotCovered(f"ordering comparison on {compare.left.key} ({left.type.value})")
        return z3.And(known, _relate(compare.op, left.value, other))

    @staticmethod
    def _constant(const: Const, feature: Feature, key: str) -> z3.ExprRef:
        value = const.value
        if feature.type is FieldType.BOOL and isinstance(value, bool):
            return z3.BoolVal(value)
        if feature.type in (FieldType.INT, FieldType.MONEY) and isinstance(value, int):
            return z3.IntVal(value)
        if feature.type is FieldType.ENUM and isinstance(value, str):
            if value not in feature.values:
                return z3.IntVal(-1)  # outside the domain: never equal
            return z3.IntVal(feature.values.index(value))
        if feature.type is FieldType.STRING and isinstance(value, str):
            return z3.StringVal(value)
        raise NotCovered(f"constant {value!r} compared with {key}")


def _relate(op: Op, left: Any, right: Any) -> z3.BoolRef:
    relation: z3.BoolRef
    if op is Op.EQ:
        relation = left == right
    elif op is Op.NE:
        relation = left != right
    elif op is Op.LT:
        relation = left < right
    elif op is Op.LE:
        relation = left <= right
    elif op is Op.GT:
        relation = left > right
    else:
        relation = left >= right
    return relation


@dataclass
class PackFormulas:
    """One pack's rules as formulas: when each hits, when each is live (hit and not cleared),
    and the decision (action rank, obligations) they settle to."""

    hit: dict[str, z3.BoolRef]
    live: dict[str, z3.BoolRef]
    action: z3.ArithRef
    obligations: dict[Obligation, z3.BoolRef]
    uses_region: bool
    hits: dict[str, z3.BoolRef] = field(default_factory=dict)  # rule id as written -> listed

    def listed(self, rule_id: str) -> z3.BoolRef:
        """Whether the decision lists ``rule_id`` among its hits (live, not cleared)."""
        return self.hits.get(rule_id, z3.BoolVal(False))


def _max(values: list[z3.ArithRef]) -> z3.ArithRef:
    result: z3.ArithRef = z3.IntVal(0)
    for value in values:
        result = z3.If(value > result, value, result)
    return result


def encode_rule(encoder: Encoder, pack: Pack, rule: CompiledRule) -> z3.BoolRef:
    return encoder.condition(rule.guarded, pack)


def encode_pack(encoder: Encoder, pack: Pack) -> PackFormulas:
    """Every rule of ``pack`` and its decision, exactly as ``engine.decide._settle`` settles."""
    hit: dict[str, z3.BoolRef] = {}
    live: dict[str, z3.BoolRef] = {}
    uses_region = False
    for rule in pack.rules:
        uses_region |= any(
            c.left.key.startswith(REGION_KEY_PREFIX) for c in _compares(rule.guarded)
        )
        hit[rule.id] = encoder.condition(rule.guarded, pack)
        clearing = rule.clearing_rule()
        cleared = (
            encoder.condition(clearing.guarded, pack) if clearing is not None else z3.BoolVal(False)
        )
        live[rule.id] = z3.And(hit[rule.id], z3.Not(cleared))
    ladder = _max(
        [z3.If(live[r.id], z3.IntVal(ACTIONS.index(r.action)), z3.IntVal(0)) for r in pack.rules]
    )
    score = (
        z3.Sum(*(z3.If(live[r.id], z3.IntVal(r.spec.score), z3.IntVal(0)) for r in pack.rules))
        if pack.rules
        else z3.IntVal(0)
    )
    banded = _max(
        [
            z3.If(score >= band.min_score, z3.IntVal(ACTIONS.index(band.action)), z3.IntVal(0))
            for band in pack.score_bands
        ]
    )
    action = z3.If(banded > ladder, banded, ladder)
    obligations = {
        o: z3.Or(*[live[r.id] for r in pack.rules if o in r.spec.obligations], z3.BoolVal(False))
        for o in OBLIGATIONS
    }
    hits: dict[str, z3.BoolRef] = {}
    for rule in pack.rules:  # every version of an overridden rule is listed under its id
        previous = hits.get(rule.rule_id)
        hits[rule.rule_id] = live[rule.id] if previous is None else z3.Or(previous, live[rule.id])
    return PackFormulas(hit, live, action, obligations, uses_region, hits)


def _compares(condition: Condition) -> list[Compare]:
    from guardrail.lang.ir import walk

    return list(walk(condition))


__all__ = ["ACTIONS", "Encoder", "Feature", "NotCovered", "PackFormulas", "TransactionKind"]
