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
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import durable_rules_engine as _engine

from guardrail.engine.base import EngineError
from guardrail.engine.codegen import compile_function
from guardrail.lang.catalog import FieldType
from guardrail.lang.durable_limits import MAX_MATCHING, matching_demand
from guardrail.lang.ir import All, Compare, Condition, FieldRef, Op, walk
from guardrail.lang.pack import CompiledRule
from guardrail.model.features import Features

_OPS = {Op.NE: "$neq", Op.LT: "$lt", Op.LE: "$lte", Op.GT: "$gt", Op.GE: "$gte"}
_STRING_TYPES = (FieldType.ENUM, FieldType.STRING)
_SID = "0"
_RESULT_NOT_HANDLED = 1

_instances = itertools.count()


class _Unexpected(Exception):
    """A feature value of a type the generated writer does not handle (see ``_Encoder``)."""


class _Encoder:
    """Maps feature keys to short slot names and string values to integer codes, and writes
    an event's features as the JSON facts of the pack's rulesets.

    A fact carries ``"id"``, ``"sid"`` and one property per slot its ruleset reads, written
    ``,"f3":44``; a feature that is unknown is left out (an absent property matches no
    comparison). Strings become their codes; only booleans and integers are written
    otherwise. ``writer`` generates one straight-line function that writes every ruleset's
    fact for the usual event (booleans in boolean slots, ints in integer slots, strings in
    string slots); any other value makes it raise ``_Unexpected``, and ``fragments`` then
    writes the event one feature at a time, accepting booleans and integers in any
    non-string slot and refusing every other type with an ``EngineError``.
    """

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.slots: dict[str, str] = {}
        self.codes: dict[str, int] = {}
        self._types: dict[str, FieldType] = {}
        for rule in rules:
            for compare in walk(rule.guarded):
                for ref in (compare.left, compare.right):
                    if isinstance(ref, FieldRef):
                        self.slot(ref.key)
                        self._types.setdefault(ref.key, ref.type)
                    elif ref.type in _STRING_TYPES:
                        self.code(str(ref.value))
        # Fragment i is the property of slot i, or "" when the feature is unknown.
        self._fields = [
            (key, self._types[key] in _STRING_TYPES, f',"{slot}":')
            for key, slot in self.slots.items()
        ]

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
        return int(self.slots[key][1:])

    def fragments(self, features: Features) -> list[str]:
        """Every slot's property as JSON text, one feature at a time."""
        get = features.get
        codes = self.codes
        local_codes: dict[str, int] = {}
        fragments: list[str] = []
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
                    # Values no rule names get negative codes, equal strings equal codes.
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

    def writer(self, rulesets: Sequence[_Ruleset]) -> Callable[[Features, int], list[str]]:
        """A function writing every ruleset's fact for an event, as ``_Ruleset.fact`` of
        ``fragments`` would, generated as one plain function at load time. Its source holds
        only ``repr`` of feature keys and of JSON text made here from slot names."""
        body = ["get = features.get", "local = None"]
        for index, (key, is_string, prefix) in enumerate(self._fields):
            out = f"p{index}"
            body.append(f"v = get({key!r})")
            if is_string:
                body += [
                    f"if v is None: {out} = ''",
                    "elif v.__class__ is str or isinstance(v, str):",
                    "    c = codes.get(v)",
                    "    if c is None:",
                    "        if local is None: local = {}",
                    "        c = local.setdefault(v, -1 - len(local))",
                    f"    {out} = f{prefix + '{c}'!r}",
                ]
            elif self._types[key] is FieldType.BOOL:
                body += [
                    f"if v is False: {out} = {prefix + 'false'!r}",
                    f"elif v is True: {out} = {prefix + 'true'!r}",
                    f"elif v is None: {out} = ''",
                ]
            else:
                body += [
                    f"if v is None: {out} = ''",
                    f"elif v.__class__ is int: {out} = f{prefix + '{v}'!r}",
                ]
            body.append("else: raise Unexpected")
        facts = [
            f"{ruleset.template!r} % (fact_id, {', '.join(f'p{i}' for i in ruleset.indexes)})"
            for ruleset in rulesets
        ]
        body.append(f"return [{', '.join(facts)}]")
        namespace = {"codes": self.codes, "Unexpected": _Unexpected}
        write: Callable[[Features, int], list[str]] = compile_function(
            "write_facts", body, parameter="features, fact_id", namespace=namespace
        )
        return write


class _Ruleset(NamedTuple):
    """One shard of the pack in the C core, and how to write its fact: ``template`` filled
    with the fact id and the fragments at ``indexes`` (the slots its rules read)."""

    handle: int
    template: str
    indexes: tuple[int, ...]

    def fact(self, fact_id: int, fragments: list[str]) -> str:
        return self.template % (fact_id, *(fragments[index] for index in self.indexes))


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
        self._write_facts = self._encoder.writer(self._rulesets)
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
        indexes = tuple(sorted(self._encoder.fragment_index(key) for key in keys))
        template = '{"id":%d,' + f'"sid":"{_SID}"' + "%s" * len(indexes) + "}"
        return _Ruleset(handle, template, indexes)

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
        fact_id = next(self._fact_ids)
        try:
            facts = self._write_facts(features, fact_id)
        except _Unexpected:  # a value of another type: checked one by one (or refused)
            fragments = self._encoder.fragments(features)
            facts = [ruleset.fact(fact_id, fragments) for ruleset in self._rulesets]
        with self._lock:
            for (handle, _, _), payload in zip(self._rulesets, facts, strict=True):
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
