"""The durable-rules backend: the pack's IR compiled to a durable-rules ruleset (Rete, C core).

How the hazards of durable-rules 2.0.28 are avoided:

- A posted event fires only the first matching rule. We assert a *fact* with a unique id,
  collect every rule it activates, then retract it.
- ``durable.engine.Host`` starts background threads that dispatch pending actions; they could
  run our actions on another thread. We drive the C core directly and never create a Host.
- Strings compare with numbers as text. The engine never sees a string: every string value is
  replaced by an integer code (pack literals get fixed codes, other values per-fact codes),
  and only validated booleans and integers (money in fen) reach it.
- Crash shapes (absence-only rules, sequences referencing earlier events, huge regex ranges,
  ``delete_state`` across many sids) cannot be emitted: the IR has no absence test, no
  sequence, no regex, and one fixed sid is reused under a lock. The lock covers only the
  calls into the C core; the fact is built (from plain feature values) before it.
- Rulesets live in a process-wide registry and are never freed, so each backend registers
  under a name unique to its pack hash and instance; two Guards never share one.
- The C core walks its alpha network with a fixed stack of 64 nodes and fails with error 303
  when more comparisons match one fact; the pack is split into as few rulesets as keep
  the comparisons that can match at once within it (``lang.durable_limits``). Each ruleset's
  fact carries only the properties its own rules read.
"""

from __future__ import annotations

import itertools
import json
import operator
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import durable_rules_engine as _engine

from guardrail.engine.base import EngineError
from guardrail.lang.catalog import FieldType
from guardrail.lang.durable_limits import MAX_MATCHING, matching_demand
from guardrail.lang.ir import All, Compare, Condition, FieldRef, Op, walk
from guardrail.lang.pack import CompiledRule
from guardrail.model.features import Features, FeatureValue

_OPS = {Op.NE: "$neq", Op.LT: "$lt", Op.LE: "$lte", Op.GT: "$gt", Op.GE: "$gte"}
_STRING_TYPES = (FieldType.ENUM, FieldType.STRING)
_SID = "0"
_RESULT_NOT_HANDLED = 1
_BOOLS = frozenset({bool, type(None)})
_INTS = frozenset({int, type(None)})

_instances = itertools.count()


class _Encoder:
    """Maps feature keys to short slot names and string values to integer codes, and writes
    an event's features as JSON fragments (``,"f3":44``) that each ruleset's fact picks from.

    Fragment 0 is the fact id; then one fragment per slot, boolean slots first, then string
    slots, then integer slots, each ``""`` when the feature is unknown (an absent property
    matches no comparison). The usual event is written with a few C-level passes per group;
    anything unexpected goes through ``_checked``, which accepts booleans and integers in
    any non-string slot (as the rules compare them) and refuses every other type.
    """

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.slots: dict[str, str] = {}
        self.codes: dict[str, int] = {}
        types: dict[str, FieldType] = {}
        for rule in rules:
            for compare in walk(rule.guarded):
                for ref in (compare.left, compare.right):
                    if isinstance(ref, FieldRef):
                        self.slot(ref.key)
                        types.setdefault(ref.key, ref.type)
                    elif ref.type in _STRING_TYPES:
                        self.code(str(ref.value))
        self._bool_keys = [key for key in self.slots if types[key] is FieldType.BOOL]
        self._string_keys = [key for key in self.slots if types[key] in _STRING_TYPES]
        self._int_keys = [
            key for key in self.slots if key not in self._bool_keys + self._string_keys
        ]
        self._index = {
            key: index
            for index, key in enumerate(self._bool_keys + self._string_keys + self._int_keys, 1)
        }
        prefix = {key: f',"{slot}":' for key, slot in self.slots.items()}
        self._bool_texts: list[dict[FeatureValue, str]] = [
            {None: "", True: prefix[key] + "true", False: prefix[key] + "false"}
            for key in self._bool_keys
        ]
        self._string_prefixes = [(key, prefix[key]) for key in self._string_keys]
        self._int_prefixes = [prefix[key] for key in self._int_keys]
        self._fields = [(key, types[key] in _STRING_TYPES, prefix[key]) for key in self._index]

    def slot(self, key: str) -> str:
        if key not in self.slots:
            self.slots[key] = f"f{len(self.slots)}"
        return self.slots[key]

    def code(self, value: str) -> int:
        if value not in self.codes:
            self.codes[value] = len(self.codes)
        return self.codes[value]

    def fragment_index(self, key: str) -> int:
        """Where ``fragments`` puts feature ``key``'s property."""
        return self._index[key]

    def fragments(self, features: Features, fact_id: int) -> list[str]:
        """The fact's properties as JSON text, in fragment order (see the class)."""
        get = features.get
        bools = list(map(get, self._bool_keys))
        ints = list(map(get, self._int_keys))
        if not (_BOOLS.issuperset(map(type, bools)) and _INTS.issuperset(map(type, ints))):
            return self._checked(features, fact_id)
        fragments = [f'"id":{fact_id:d}']
        fragments += map(dict.__getitem__, self._bool_texts, bools)
        codes = self.codes
        local_codes: dict[str, int] = {}
        for key, prefix in self._string_prefixes:
            value = get(key)
            if value is None:
                fragments.append("")
                continue
            if not isinstance(value, str):
                raise EngineError(f"feature {key!r} should be a string, got {type(value).__name__}")
            known = codes.get(value)
            if known is None:
                # Values no rule names get negative codes, equal strings equal codes.
                known = local_codes.setdefault(value, -1 - len(local_codes))
            fragments.append(f"{prefix}{known:d}")
        fragments += [
            "" if value is None else f"{prefix}{value:d}"
            for prefix, value in zip(self._int_prefixes, ints, strict=True)
        ]
        return fragments

    def _checked(self, features: Features, fact_id: int) -> list[str]:
        """``fragments`` one feature at a time, for values of an unexpected type."""
        get = features.get
        codes = self.codes
        local_codes: dict[str, int] = {}
        fragments = [f'"id":{fact_id:d}']
        append = fragments.append
        for key, is_string, prefix in self._fields:
            value = get(key)
            if value is None:
                append("")
            elif is_string:
                if not isinstance(value, str):
                    raise EngineError(
                        f"feature {key!r} should be a string, got {type(value).__name__}"
                    )
                known = codes.get(value)
                if known is None:
                    known = local_codes.setdefault(value, -1 - len(local_codes))
                append(f"{prefix}{known:d}")
            elif value is True:
                append(prefix + "true")
            elif value is False:
                append(prefix + "false")
            elif isinstance(value, int):
                append(f"{prefix}{value:d}")
            else:
                raise EngineError(f"feature {key!r} has unsupported type {type(value).__name__}")
        return fragments


class _Ruleset(NamedTuple):
    """One shard of the pack in the C core, and how to write its fact: ``template`` filled
    with the fragments ``pick`` selects (the id and the slots its rules read)."""

    handle: int
    template: str
    pick: Callable[[list[str]], tuple[str, ...]]


class DurableRulesBackend:
    """Evaluates a pack with durable-rules; collects every hit per event."""

    name = "durable_rules"

    def __init__(self, rules: Sequence[CompiledRule], pack_hash: str = "pack") -> None:
        self._encoder = _Encoder(rules)
        self._rule_names = {f"r{index}": rule.id for index, rule in enumerate(rules)}
        self._order = {rule.id: index for index, rule in enumerate(rules)}
        instance = next(_instances)
        self.ruleset_names: list[str] = []
        self._rulesets: list[_Ruleset] = []
        named = list(zip(self._rule_names, rules, strict=True))
        for shard, members in enumerate(_shards(named)):
            definition = {
                name: {"all": [{"m": self._condition(rule.guarded)}]} for name, rule in members
            }
            ruleset_name = f"guardrail_{pack_hash[:16]}_{instance}_{shard}"
            self.ruleset_names.append(ruleset_name)
            handle = _engine.create_ruleset(ruleset_name, json.dumps(definition))
            self._rulesets.append(self._ruleset(handle, [rule for _, rule in members]))
        self._lock = threading.Lock()
        self._fact_ids = itertools.count(1)  # next() on a count is atomic under the GIL

    def _ruleset(self, handle: int, rules: Sequence[CompiledRule]) -> _Ruleset:
        """A shard's fact carries only the properties its own rules read: the C core parses
        and hashes every property of every fact it is given."""
        keys = {
            ref.key
            for rule in rules
            for compare in walk(rule.guarded)
            for ref in (compare.left, compare.right)
            if isinstance(ref, FieldRef)
        }
        indexes = sorted(self._encoder.fragment_index(key) for key in keys)
        # Every rule reads a field, so there are at least two indexes and pick gives a tuple.
        template = "{%s," + f'"sid":"{_SID}"' + "%s" * len(indexes) + "}"
        return _Ruleset(handle, template, operator.itemgetter(0, *indexes))

    def _condition(self, condition: Condition) -> dict[str, Any]:
        if isinstance(condition, Compare):
            return self._compare(condition)
        items = [self._condition(item) for item in condition.items]
        if len(items) == 1:
            return items[0]
        return {"$and" if isinstance(condition, All) else "$or": items}

    def _compare(self, compare: Compare) -> dict[str, Any]:
        slot = self._encoder.slot(compare.left.key)
        right = compare.right
        operand: Any
        if isinstance(right, FieldRef):
            operand = {"$m": self._encoder.slot(right.key)}
        elif right.type in _STRING_TYPES:
            operand = self._encoder.code(str(right.value))
        else:
            operand = right.value
        test = {slot: operand} if compare.op is Op.EQ else {_OPS[compare.op]: {slot: operand}}
        if isinstance(right, FieldRef):
            # durable-rules lets a comparison with a *missing* referenced field match; require it.
            return {"$and": [{"$ex": {operand["$m"]: 1}}, test]}
        return test

    def evaluate(self, features: Features) -> list[str]:
        if not self._rulesets:
            return []
        fired: set[str] = set()
        # Only the C core is serialised: the facts are written from plain values before the lock.
        fragments = self._encoder.fragments(features, next(self._fact_ids))
        payloads = [(rs.handle, rs.template % rs.pick(fragments)) for rs in self._rulesets]
        with self._lock:
            for handle, payload in payloads:
                try:
                    result = _engine.assert_fact(handle, payload)
                except Exception as error:  # the C core reports limits as generic errors
                    raise EngineError(
                        f"durable-rules could not evaluate the event: {error}"
                    ) from error
                try:
                    if result[0] != _RESULT_NOT_HANDLED:
                        self._collect(handle, result[1], fired)
                finally:
                    _engine.retract_fact(handle, payload)
        hits = [self._rule_names[name] for name in fired]
        hits.sort(key=self._order.__getitem__)
        return hits

    @staticmethod
    def _collect(handle: int, state_handle: int, fired: set[str]) -> None:
        started = _engine.start_action_for_state(handle, state_handle)
        if not started:
            return
        fired.update(_action_names(started[1]))
        while True:
            following = _engine.complete_and_start_action(handle, state_handle)
            if not following:
                return
            fired.update(_action_names(following))


def _shards(named: list[tuple[str, CompiledRule]]) -> list[list[tuple[str, CompiledRule]]]:
    """The rules in pack order, cut into rulesets whose comparisons can never overflow the C
    core's alpha stack (``matching_demand`` at most ``MAX_MATCHING``; lint refuses a rule
    that is over it alone): one ruleset is one engine call per event, so as few as fit."""
    shards: list[list[tuple[str, CompiledRule]]] = []
    current: list[tuple[str, CompiledRule]] = []
    for item in named:
        if current and matching_demand(rule.guarded for _, rule in [*current, item]) > MAX_MATCHING:
            shards.append(current)
            current = []
        current.append(item)
    if current:
        shards.append(current)
    return shards


def _action_names(message: str) -> list[str]:
    decoded = json.loads(message)
    if not isinstance(decoded, dict):
        raise EngineError("unexpected action message from durable-rules")
    return list(decoded)
