"""Turn rule hits into a decision: the highest action wins, obligations are a set beside it,
and every hit carries the values that decided it.

Two refinements over the plain ladder: a rule whose clearing condition also held (engine id
``RULE#clears``) is *cleared*: it drops out of the action, the score and the obligations, and is
listed under ``cleared`` with the clearing values; and the weights of the uncleared hits add up
to a score that the pack's score bands map to an action. The decision is the higher of the
ladder's and the score's, so neither clearing nor scoring can go below the highest uncleared
rule, and a further hit can never lower anything (weights are non-negative).

Pure: reads plain feature values, never computes one. A hit is explained by the comparisons
that made its condition true: every part of an ``and``, and of an ``or`` only the first part
that held (the one the evaluator stopped at), so nothing from a branch that did not decide the
hit is shown."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum

from guardrail.engine.codegen import compile_function
from guardrail.engine.reference import holds
from guardrail.lang.catalog import FieldType
from guardrail.lang.ir import All, AnyOf, Compare, Condition, FieldRef
from guardrail.lang.pack import CLEARS_SUFFIX, CompiledRule, Pack
from guardrail.model.decision import (
    FAIL_CLOSED_FLOOR,
    Action,
    Cleared,
    Decision,
    Evidence,
    Failure,
    Hit,
    JsonScalar,
    Obligation,
    ScorePart,
    trusted,
)
from guardrail.model.features import Features, FeatureValue
from guardrail.model.money import from_fen


def decide(
    pack: Pack,
    event_id: str,
    hit_ids: Sequence[str],
    features: Features,
    backend: str,
    *,
    details: Mapping[str, str] | None = None,
    failures: Iterable[Failure] = (),
    elapsed_us: int = 0,
    watchlists: Mapping[str, str] | None = None,
) -> Decision:
    """Build the decision for one event from the ids of the rules it hit."""
    return Decider(pack).decide(
        event_id,
        hit_ids,
        features,
        backend,
        details=details,
        failures=failures,
        elapsed_us=elapsed_us,
        watchlists=watchlists,
    )


class Decider:
    """``decide`` for one pack, keeping what does not change from one event to the next: each
    hit rule's fixed fields and, when its condition has no ``or``, the features that explain
    it. Safe to share between threads (the cache only ever gains equal entries)."""

    def __init__(self, pack: Pack) -> None:
        self.pack = pack
        self._plans: dict[str, _HitPlan] = {}
        self._settled: dict[tuple[str, ...], _Settled] = {}
        self._zero_score_action = pack.score_action(0) if pack.score_bands else Action.PROCEED
        # The fields of a decision without hits or failures, in declaration order: ``decide``
        # fills in the event's own (its id, the backend, the time, the watchlist versions).
        self._nothing_hit: dict[str, object] = {
            "event_id": "",
            "action": self._zero_score_action,
            "obligations": (),
            "hits": (),
            "pack": pack.ref,
            "backend": "",
            "failures": (),
            "elapsed_us": 0,
            "ladder_action": Action.PROCEED,
            "score": 0,
            "score_action": self._zero_score_action,
            "score_parts": (),
            "cleared": (),
            "watchlists": {},
            "adjustments": (),
        }

    def decide(
        self,
        event_id: str,
        hit_ids: Sequence[str],
        features: Features,
        backend: str,
        *,
        details: Mapping[str, str] | None = None,
        failures: Iterable[Failure] = (),
        elapsed_us: int = 0,
        watchlists: Mapping[str, str] | None = None,
    ) -> Decision:
        """The decision for one event from the ids of the rules it hit."""
        if not hit_ids and not failures:  # most events: nothing to explain
            return self.nothing_hit(event_id, backend, elapsed_us, watchlists)
        pack = self.pack
        failures = tuple(failures)
        if hit_ids:
            details = details or {}
            rules = pack.rules_by_id
            key = tuple(hit_ids)
            settled = self._settled.get(key)
            if settled is None:
                settled = self._settle(key)
            live, cleared_ids, ladder, score, score_action, action, owed, parts = settled
            plans = self._plans
            hits = tuple(
                [
                    (plans.get(rule_id) or self._plan(rule_id)).hit(features, details)
                    for rule_id in live
                ]
            )
            cleared = (
                tuple(_cleared(pack, rules[rule_id], features, details) for rule_id in cleared_ids)
                if cleared_ids
                else ()
            )
        else:  # most events: nothing to settle or explain
            hits, parts, cleared, owed = (), (), (), ()
            ladder, score = Action.PROCEED, 0
            score_action = action = self._zero_score_action
        if failures:
            action = max(action, FAIL_CLOSED_FLOOR)
        if elapsed_us < 0:
            raise ValueError("elapsed_us must not be negative")
        # Every value is already of its declared type (the pack was validated when loaded, the
        # features are plain values): the decision is built without validating it again.
        return trusted(
            Decision,
            {
                "event_id": event_id,
                "action": action,
                "obligations": owed,
                "hits": hits,
                "pack": pack.ref,
                "backend": backend,
                "failures": failures,
                "elapsed_us": elapsed_us,
                "ladder_action": ladder,
                "score": score,
                "score_action": score_action,
                "score_parts": parts,
                "cleared": cleared,
                "watchlists": dict(watchlists) if watchlists else {},
                "adjustments": (),
            },
        )

    def nothing_hit(
        self,
        event_id: str,
        backend: str,
        elapsed_us: int,
        watchlists: Mapping[str, str] | None,
    ) -> Decision:
        """The decision for an event that hit no rule and met no failure (most events)."""
        if elapsed_us < 0:
            raise ValueError("elapsed_us must not be negative")
        fields = self._nothing_hit.copy()
        fields["event_id"] = event_id
        fields["backend"] = backend
        fields["elapsed_us"] = elapsed_us
        fields["watchlists"] = dict(watchlists) if watchlists else {}
        return trusted(Decision, fields)

    def _settle(self, hit_ids: tuple[str, ...]) -> _Settled:
        """``_settle`` of ``hit_ids`` and the score parts of the rules that stay, kept: the
        same few sets of rules fire again and again."""
        live, cleared, ladder, score, score_action, action, owed = _settle(self.pack, hit_ids)
        parts: tuple[ScorePart, ...] = ()
        if score:
            rules = self.pack.rules_by_id
            parts = tuple(
                trusted(ScorePart, {"rule_id": rule.spec.id, "weight": rule.spec.score})
                for rule in (rules[rule_id] for rule_id in live)
                if rule.spec.score
            )
        settled = (tuple(live), tuple(cleared), ladder, score, score_action, action, owed, parts)
        if len(self._settled) >= _SETTLED_KEPT:
            self._settled.clear()
        self._settled[hit_ids] = settled
        return settled

    def _plan(self, rule_id: str) -> _HitPlan:
        plan = self._plans[rule_id] = _HitPlan(self.pack, self.pack.rules_by_id[rule_id])
        return plan


class _HitPlan:
    """How to explain one rule's hit: its fixed fields, and the features its condition reads
    when it has no ``or`` (with one, which features explain it depends on the event)."""

    __slots__ = ("_fixed", "_hits", "_pack", "_reads", "_rule", "_show", "_shows", "_tail")

    def __init__(self, pack: Pack, rule: CompiledRule) -> None:
        spec = rule.spec
        self._pack = pack
        self._rule = rule
        self._fixed = {
            "rule_id": spec.id,
            "title_zh": spec.title_zh,
            "title_en": spec.title_en,
            "action": spec.action,
            "obligations": spec.obligations,
        }
        self._tail = {
            "source": spec.source,
            "notice_zh": spec.notice_zh,
            "notice_en": spec.notice_en,
            "tags": spec.tags,
            "ask": spec.ask,
        }
        # The hits already built, by the values shown: most hits of a rule show the same few
        # (a flag, a lexicon term), and a Hit is immutable. Each key holds one feature's values,
        # all of one type, so True and 1 never meet in a key.
        self._hits: dict[tuple[tuple[str, JsonScalar, str], ...], Hit] = {}
        self._reads: tuple[tuple[str, bool, str | None], ...] | None = None
        self._show: _Show | None = None
        # With an ``or``: the evidence function of each set of deciding features seen.
        self._shows: dict[tuple[str, ...], _Show] = {}
        if not any(isinstance(part, AnyOf) for part in _parts(rule.condition)):
            self._reads = tuple(
                (ref.key, ref.type is FieldType.MONEY, _window_prefix(pack, ref.key))
                for ref in deciding_refs(rule.condition, {})
            )
            self._show = _show_function(self._reads)

    def hit(self, features: Features, details: Mapping[str, str]) -> Hit:
        show = self._show
        if show is None:  # which features explain the hit depends on which part of an "or" held
            refs = deciding_refs(self._rule.condition, features)
            keys = tuple(ref.key for ref in refs)
            show = self._shows.get(keys)
            if show is None:
                if len(self._shows) >= _HITS_KEPT:
                    self._shows.clear()
                show = self._shows[keys] = _show_function(
                    [
                        (ref.key, ref.type is FieldType.MONEY, _window_prefix(self._pack, ref.key))
                        for ref in refs
                    ]
                )
        shown = show(features, details)
        hit = self._hits.get(shown)
        if hit is None:
            if len(self._hits) >= _HITS_KEPT:
                self._hits.clear()
            evidence = tuple(
                trusted(Evidence, {"feature": key, "value": value, "detail": detail})
                for key, value, detail in shown
            )
            hit = self._hits[shown] = self._built(evidence)
        return hit

    def _built(self, evidence: tuple[Evidence, ...]) -> Hit:
        return trusted(Hit, {**self._fixed, "evidence": evidence, **self._tail})


_HITS_KEPT = 256  # distinct evidence per rule whose Hit is kept
_SETTLED_KEPT = 4096  # distinct sets of hit rules whose settlement a Decider keeps

_Settled = tuple[
    tuple[str, ...],
    tuple[str, ...],
    Action,
    int,
    Action,
    Action,
    tuple[Obligation, ...],
    tuple[ScorePart, ...],
]
"""What ``_settle`` gives (the rules that stay, the cleared ones, the ladder's action, the
score, its action, the decision's action, the obligations), and the score parts."""

_Show = Callable[[Features, Mapping[str, str]], tuple[tuple[str, JsonScalar, str], ...]]


def _show_function(reads: Sequence[tuple[str, bool, str | None]]) -> _Show:
    """``_shown`` of each of ``reads`` (key, money, window prefix), generated as one function
    of the features and details: a hit's evidence in a few bytecodes per feature."""
    namespace: dict[str, object] = {"_Enum": Enum, "_from_fen": from_fen}
    body, shown = [], []
    for index, (key, money, prefix) in enumerate(reads):
        value, show, detail = f"v{index}", f"s{index}", f"t{index}"
        body.append(f"{value} = f.get({key!r})")
        money_case = (
            f"str(_from_fen({value})) if isinstance({value}, int) and not isinstance({value}, bool)"
            " else "
            if money
            else ""
        )
        body.append(
            f"{show} = {value}._value_ if isinstance({value}, _Enum) else {money_case}{value}"
        )
        body.append(f"{detail} = d.get({key!r}, '')")
        if prefix is not None:
            namespace[f"_p{index}"] = prefix
            body += [
                f"if not {detail} and {value} is not None:",
                f"    {detail} = f'{{_p{index}}}{{{show}}}'",
            ]
        shown.append(f"({key!r}, {show}, {detail})")
    body.append(f"return ({', '.join(shown)}{',' if len(shown) == 1 else ''})")
    show_function: _Show = compile_function("shown", body, parameter="f, d", namespace=namespace)
    return show_function


def _parts(condition: Condition) -> Iterable[Condition]:
    yield condition
    if not isinstance(condition, Compare):
        for item in condition.items:
            yield from _parts(item)


def _window_prefix(pack: Pack, key: str) -> str | None:
    """How a window's value is explained (``sum over same_day = ``); None for other keys."""
    window = pack.windows.get(key.removeprefix("window.")) if key.startswith("window.") else None
    if window is None:
        return None
    return f"{window.aggregate.value} over {window.span.value} = "


_OBLIGATIONS = tuple(Obligation)  # in declaration order


def deciding_refs(condition: Condition, features: Features) -> list[FieldRef]:
    """The references of the comparisons that made ``condition`` true, in order, no repeats."""
    seen: dict[str, FieldRef] = {}
    _collect(condition, features, seen)
    return list(seen.values())


def _collect(condition: Condition, features: Features, seen: dict[str, FieldRef]) -> None:
    if isinstance(condition, Compare):
        seen.setdefault(condition.left.key, condition.left)
        if isinstance(condition.right, FieldRef):
            seen.setdefault(condition.right.key, condition.right)
    elif isinstance(condition, All):
        for item in condition.items:
            _collect(item, features, seen)
    else:
        for item in condition.items:
            if holds(item, features):
                _collect(item, features, seen)
                return


def _explain(
    pack: Pack, condition: Condition | None, features: Features, details: Mapping[str, str]
) -> tuple[Evidence, ...]:
    if condition is None:
        return ()
    return tuple(
        _evidence(pack, ref, features.get(ref.key), details)
        for ref in deciding_refs(condition, features)
    )


def outcome(pack: Pack, hit_ids: Iterable[str]) -> tuple[Action, tuple[Obligation, ...]]:
    """The action and obligations of a set of engine hits, exactly as ``decide`` settles them
    (clearing, ladder, score bands). The bulk replay engines decide through this function."""
    settled = _settle(pack, list(hit_ids))
    return settled[5], settled[6]


def _settle(
    pack: Pack, hit_ids: Sequence[str]
) -> tuple[list[str], list[str], Action, int, Action, Action, tuple[Obligation, ...]]:
    rules = pack.rules_by_id
    if any(CLEARS_SUFFIX in rule_id for rule_id in hit_ids):
        clearing = {r.removesuffix(CLEARS_SUFFIX) for r in hit_ids if CLEARS_SUFFIX in r}
        matched = [rule_id for rule_id in hit_ids if CLEARS_SUFFIX not in rule_id]
        live = [rule_id for rule_id in matched if rule_id not in clearing]
        cleared = [rule_id for rule_id in matched if rule_id in clearing]
    else:  # most hits: nothing cleared
        live, cleared = list(hit_ids), []
    # By rank, not with Action's own comparisons, and in one loop: this runs for every event
    # with a hit.
    rank = score = 0
    obliged = False
    for rule_id in live:
        spec = rules[rule_id].spec
        rank = max(rank, _RANK[spec.action])
        score += spec.score
        obliged = obliged or bool(spec.obligations)
    ladder = _LADDER[rank]
    score_action = pack.score_action(score) if pack.score_bands else Action.PROCEED
    action = ladder if rank >= _RANK[score_action] else score_action
    owed: tuple[Obligation, ...] = ()
    if obliged:
        owed_set = {o for rule_id in live for o in rules[rule_id].spec.obligations}
        owed = tuple(o for o in _OBLIGATIONS if o in owed_set)
    return live, cleared, ladder, score, score_action, action, owed


_LADDER = tuple(Action)  # lowest first: an action's rank is its index
_RANK = {action: rank for rank, action in enumerate(_LADDER)}


def _cleared(
    pack: Pack, rule: CompiledRule, features: Features, details: Mapping[str, str]
) -> Cleared:
    spec = rule.spec
    return trusted(
        Cleared,
        {
            "rule_id": spec.id,
            "title_zh": spec.title_zh,
            "title_en": spec.title_en,
            "action": spec.action,
            "evidence": _explain(pack, rule.condition, features, details),
            "cleared_by": _explain(pack, rule.clears, features, details),
        },
    )


def _evidence(
    pack: Pack, ref: FieldRef, value: FeatureValue, details: Mapping[str, str]
) -> Evidence:
    return _shown_evidence(
        ref.key, value, ref.type is FieldType.MONEY, _window_prefix(pack, ref.key), details
    )


def _shown_evidence(
    key: str, value: FeatureValue, money: bool, prefix: str | None, details: Mapping[str, str]
) -> Evidence:
    key, shown, detail = _shown(key, value, money, prefix, details)
    return trusted(Evidence, {"feature": key, "value": shown, "detail": detail})


def _shown(
    key: str, value: FeatureValue, money: bool, prefix: str | None, details: Mapping[str, str]
) -> tuple[str, JsonScalar, str]:
    """How feature ``key`` is shown as evidence: its name, its value and how it was found."""
    shown: JsonScalar = value
    if isinstance(value, Enum):  # an enum member is shown, and validates, as its value
        shown = value._value_  # (``value`` is a slow descriptor; this is a hot path)
    elif money and isinstance(value, int) and not isinstance(value, bool):
        shown = str(from_fen(value))
    detail = details.get(key, "")
    if not detail and prefix is not None and value is not None:
        detail = f"{prefix}{shown}"
    return key, shown, detail
