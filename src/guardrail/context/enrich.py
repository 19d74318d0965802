"""The feature resolver: one event plus its context (history, watchlists, lexicons) in, the
plain feature values the engines read out.

A :class:`FeaturePlan` is built once per pack. For each event it computes, in one pass and
cheapest first: the event's own fields, then the derived fields (age, local date, ...), then
only those costly features (history, windows, lexicon scans, watchlist lookups) read by a rule
that can still fire: a rule whose cheap conditions (kind, amount, age...) are already false
costs nothing more. Nothing is computed later: the engines and ``decide`` read plain values,
and an absent key is unknown (``None``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from guardrail.context.extract import base_features, extractor
from guardrail.context.history import HistoryRecord, HistoryStore
from guardrail.context.lexicon import LexiconMatcher
from guardrail.context.watchlist import Watchlist
from guardrail.context.windows import (
    WindowedHistory,
    derived_history_features,
    is_windowed,
    local_time,
    static_derived_features,
    window_function,
)
from guardrail.engine.codegen import compile_function, expression
from guardrail.engine.reference import cost
from guardrail.lang.catalog import (
    BASE_FIELDS,
    LOCAL_DATE_KEY,
    REGION_KEY_PREFIX,
    FieldSource,
    FieldType,
)
from guardrail.lang.declarations import Span, WindowSpec
from guardrail.lang.ir import All, Condition, FieldRef, RefKind, refs, walk
from guardrail.lang.pack import KIND_KEY, CompiledRule, Pack
from guardrail.model.event import Event
from guardrail.model.features import FeatureMap, FeatureValue

__all__ = ["BASE_KEYS", "FeaturePlan", "Resolution", "base_features"]

# Fields a watchlist tests against every value the event has (any third party), not the first.
_MANY_VALUES: dict[str, Callable[[Event], tuple[str, ...]]] = {
    "third_party.phone": lambda e: tuple(p.phone for p in e.third_parties if p.phone),
    "third_party.id_number": lambda e: tuple(p.id_number for p in e.third_parties if p.id_number),
}

MANY_VALUED = frozenset(_MANY_VALUES)


STATIC_DERIVED = frozenset(i.name for i in BASE_FIELDS if i.source is FieldSource.DERIVED)
HISTORY_DERIVED = frozenset(i.name for i in BASE_FIELDS if i.source is FieldSource.HISTORY)
# Every catalogue field that ``base_features`` fills: the event's own fields but free text.
BASE_KEYS = frozenset(
    i.name for i in BASE_FIELDS if i.source is FieldSource.EVENT and i.type is not FieldType.TEXT
)


def _any_text(event: Event) -> str:
    """Every free-text part of ``event`` that is not empty, one per line."""
    purpose, detail, opening = event.purpose, event.answers.purpose_detail, event.opening
    parts = (
        "" if purpose is None else purpose.text,
        detail or "",
        event.notes,
        "" if opening is None else opening.purpose_text,
    )
    return "\n".join([part for part in parts if part])


_TEXT: dict[str, Callable[[Event], str]] = {
    "purpose.text": lambda e: "" if e.purpose is None else e.purpose.text,
    "notes": lambda e: e.notes,
    "answers.purpose_detail": lambda e: e.answers.purpose_detail or "",
    "opening.purpose_text": lambda e: "" if e.opening is None else e.opening.purpose_text,
    "any_text": _any_text,
}


# What each text is made of, as a key to remember its scan by (``any_text``: its parts, so the
# joined text is built only for a text not seen lately).
_TEXT_KEY: dict[str, Callable[[Event], object]] = {
    "any_text": lambda e: (
        None if e.purpose is None else e.purpose.text,
        e.answers.purpose_detail,
        e.notes,
        None if e.opening is None else e.opening.purpose_text,
    ),
}
_TEXTS_KEPT = 4096  # distinct texts per lexicon step whose features are kept


def text_of(event: Event, field: str) -> str:
    """The free text a lexicon test on ``field`` reads (``any_text``: every part, joined)."""
    return _TEXT[field](event)


_COUNTER_CONTEXT = extractor(
    [
        key
        for key in BASE_KEYS
        if key.startswith(("opening.", "third_party.", "documents.", "family."))
        or key in ("answers.paid_to_open", "answers.lends_account")
    ]
)


def counter_context(event: Event) -> dict[str, FeatureValue]:
    """The counter-context features of ``event`` (account opening, third parties, documents,
    family), as screening computes them; the bulk replay engines reuse this."""
    return _COUNTER_CONTEXT(event)


def many_values(event: Event, field: str) -> tuple[str, ...] | None:
    """Every value a watchlist test on ``field`` checks when the field has many (each third
    party's), or None for an ordinary single-valued field."""
    many = _MANY_VALUES.get(field)
    return None if many is None else many(event)


Step = Callable[["Resolution"], None]


@dataclass(slots=True)
class Resolution:
    """The features of one event being resolved, and how some values were found (``details``:
    which lexicon term, which watchlist version, which window). Plain values only."""

    event: Event
    history: HistoryStore
    watchlists: Mapping[str, Watchlist]
    features: FeatureMap
    details: dict[str, str]
    current: HistoryRecord | None = None
    local: datetime | None = None  # the event's time on the branch clock, once computed
    stage: str = "context"  # where screening is: "context" until the features are resolved

    def current_record(self) -> HistoryRecord:
        """The event as a history record, built once for all the windows of this screening."""
        if self.current is None:
            self.current = HistoryRecord.from_event(self.event)
        return self.current

    def local_time(self) -> datetime:
        """The event's time on the branch's wall clock, converted once per screening."""
        if self.local is None:
            self.local = local_time(self.event)
        return self.local


def _cheap(ref: FieldRef) -> bool:
    return ref.kind is RefKind.FIELD and (
        ref.key in BASE_KEYS
        or ref.key in STATIC_DERIVED
        or ref.key == LOCAL_DATE_KEY
        or ref.key.startswith(REGION_KEY_PREFIX)
    )


class FeaturePlan:
    """Built once per pack: which features its rules read, how to compute each, and which
    rules need which costly features."""

    def __init__(self, pack: Pack) -> None:
        needed: dict[str, FieldRef] = {}
        for rule in pack.engine_rules:
            for compare in walk(rule.guarded):
                for ref in (compare.left, compare.right):
                    if isinstance(ref, FieldRef):
                        needed.setdefault(ref.key, ref)
        self.keys = frozenset(needed)
        # Only the event fields a rule (or a watchlist lookup, or the engine's kind dispatch)
        # reads are extracted; ``complete`` resolutions extract all of them.
        watched = {ref.field for ref in needed.values() if ref.kind is RefKind.WATCHLIST}
        self.extract_keys = frozenset({*needed, *watched, KIND_KEY})
        self._extract = extractor(self.extract_keys)
        # the base features a costly step reads from the map (a watchlist lookup's field)
        self.step_reads = frozenset(field for field in watched if field not in MANY_VALUED)
        self._needs_local_date = LOCAL_DATE_KEY in needed
        self._needs_static = not STATIC_DERIVED.isdisjoint(needed)
        # the branch region cut to N parts, for windows across customers of a region
        self._region_depths = {
            key: int(key.removeprefix(REGION_KEY_PREFIX))
            for key in needed
            if key.startswith(REGION_KEY_PREFIX)
        }
        self._windows = {
            key: pack.windows[key.removeprefix("window.")]
            for key in needed
            if key.startswith("window.")
        }
        self._lexicon_fields: dict[str, list[FieldRef]] = {}
        for ref in needed.values():
            if ref.kind is RefKind.LEXICON:
                self._lexicon_fields.setdefault(ref.field, []).append(ref)
        self.matcher = LexiconMatcher({name: spec.terms for name, spec in pack.lexicons.items()})
        unknown = [
            key
            for key, ref in needed.items()
            if ref.kind is RefKind.FIELD and not self._computable(key)
        ]
        if unknown:
            raise ValueError(f"no way to compute features: {', '.join(sorted(unknown))}")
        # One step per costly group, cheapest first; each key maps to the step that computes it.
        self._steps: list[Step] = []
        step_of: dict[str, int] = {}
        groups: dict[tuple[str, str], int] = {}
        costly = sorted(
            (ref for ref in needed.values() if not _cheap(ref)), key=lambda ref: _COST[_group(ref)]
        )
        for ref in costly:
            group = _group(ref)
            name = {"lexicon": ref.field, "history": ""}.get(group, ref.key)
            if (group, name) not in groups:
                groups[group, name] = len(self._steps)
                self._steps.append(self._make_step(group, ref))
            step_of[ref.key] = groups[group, name]
        # A store that computes windows where the records are answers the ones an event needs
        # at once: only the windows (and derived features) of rules that can still fire.
        self._history_mask = sum(
            1 << index for (group, _), index in groups.items() if group in ("history", "window")
        )
        self._window_bits = [
            (1 << index, name) for (group, name), index in groups.items() if group == "window"
        ]
        self._derived_bit = sum(
            1 << index for (group, _), index in groups.items() if group == "history"
        )
        self._requests: dict[int, tuple[dict[str, WindowSpec], bool]] = {}
        # Which steps the event needs: for each rule with costly features, a test of its cheap
        # top-level conditions and the steps it needs once that test passes, generated as one
        # function returning a bit mask. Rules reading only cheap features cost nothing here.
        self._gates: dict[str, tuple[int, Condition | None]] = {}
        body = ["m = 0"]
        for rule in pack.engine_rules:
            steps = {step_of[r.key] for r in refs(rule.guarded) if r.key in step_of}
            if not steps:
                continue
            mask = sum(1 << step for step in steps)
            gate = _cheap_part(rule.guarded)
            self._gates[rule.key or rule.id] = (mask, gate)
            test = f"m & {mask} != {mask}" + (f" and {expression(gate, cost)}" if gate else "")
            body += [f"if {test}:", f"    m |= {mask}"]
        body.append("return m")
        self._needed_steps: Callable[[FeatureMap], int] = compile_function("needed_steps", body)
        self._all_steps = (1 << len(self._steps)) - 1
        self._bits = [(1 << index, step) for index, step in enumerate(self._steps)]

    # What ``context.compiled`` generates its screening function from (read only).
    @property
    def steps(self) -> tuple[Step, ...]:
        """The costly steps, cheapest first; bit ``1 << i`` of a gate's mask is step ``i``."""
        return tuple(self._steps)

    @property
    def history_mask(self) -> int:
        """The bits of the steps a :class:`WindowedHistory` store answers in one request."""
        return self._history_mask

    @property
    def needs_static(self) -> bool:
        """Whether a rule reads a derived feature of the event alone (``STATIC_DERIVED``)."""
        return self._needs_static

    @property
    def needs_local_date(self) -> bool:
        """Whether a rule reads the event's branch-local date."""
        return self._needs_local_date

    @property
    def region_depths(self) -> Mapping[str, int]:
        """Each branch-region key a rule reads, with how many parts it keeps."""
        return self._region_depths

    def gate_of(self, rule: CompiledRule) -> tuple[int, Condition | None] | None:
        """For a rule that reads costly features: the steps computing them (a bit mask), and
        the cheap part of its condition that must hold first (None: always needed)."""
        return self._gates.get(rule.key or rule.id)

    def all_windows(self, out: Resolution, mask: int) -> None:
        """The windows (and history features) of the history steps in ``mask`` from a
        :class:`WindowedHistory` store, in one request."""
        windowed = cast(WindowedHistory, out.history)
        windows, derived = self._history_request(mask)
        out.features.update(
            windowed.window_values(out.event, windows, out.current_record(), derived=derived)
        )

    def _computable(self, key: str) -> bool:
        return (
            key in BASE_KEYS
            or key in STATIC_DERIVED
            or key in HISTORY_DERIVED
            or key in self._windows
            or key == LOCAL_DATE_KEY
            or key.startswith(REGION_KEY_PREFIX)
        )

    def resolve(
        self,
        event: Event,
        history: HistoryStore,
        watchlists: Mapping[str, Watchlist],
        *,
        complete: bool = False,
    ) -> Resolution:
        """Every feature a rule that can still fire reads (``complete``: every feature the
        pack reads), as plain values."""
        features = FeatureMap(base_features(event) if complete else self._extract(event))
        resolution = Resolution(event, history, watchlists, features, {})
        if self._needs_static or self._needs_local_date:
            local = resolution.local_time()
            if self._needs_local_date:
                features[LOCAL_DATE_KEY] = local.year * 10000 + local.month * 100 + local.day
            if self._needs_static:
                features.update(static_derived_features(event, local))
        for key, depth in self._region_depths.items():
            features[key] = "-".join(event.branch.region.split("-")[:depth])
        if not self._steps:
            return resolution
        todo = self._all_steps if complete else self._needed_steps(features)
        if todo & self._history_mask and is_windowed(history):
            self.all_windows(resolution, todo & self._history_mask)
            todo &= ~self._history_mask
        for bit, step in self._bits:
            if todo & bit:
                step(resolution)
        return resolution

    def _history_request(self, mask: int) -> tuple[dict[str, WindowSpec], bool]:
        """The windows and whether the derived features are read, for the history steps in
        ``mask``; the same mapping object for the same mask (a store may cache by it)."""
        request = self._requests.get(mask)
        if request is None:
            windows = {key: self._windows[key] for bit, key in self._window_bits if mask & bit}
            request = (windows, bool(mask & self._derived_bit))
            if len(self._requests) >= 4096:  # bounded: masks are combinations of rules' needs
                self._requests.clear()
            self._requests[mask] = request
        return request

    def _make_step(self, group: str, ref: FieldRef) -> Step:
        if group == "lexicon":
            return self._lexicons(ref)
        if group == "watchlist":
            return self._watchlist(ref)
        if group == "history":
            return _history_derived
        return self._window(ref.key)

    def _window(self, key: str) -> Step:
        spec = self._windows[key]
        compute = window_function(spec)
        same_day = spec.span is Span.SAME_DAY

        def window(out: Resolution) -> None:
            # decide() writes the window's detail for a hit: most values explain nothing.
            local = out.local_time() if same_day else None
            out.features[key] = compute(out.event, out.history, out.current, local)

        return window

    def _lexicons(self, ref: FieldRef) -> Step:
        text_field = ref.field
        wanted = self._lexicon_fields[text_field]
        text_of = _TEXT[text_field]
        key_of = _TEXT_KEY.get(text_field, text_of)
        matcher = self.matcher
        none_found: dict[str, FeatureValue] = {item.key: False for item in wanted}
        nothing: dict[str, str] = {}
        # What a text gives (the features, the details of the hits), by what the text is made
        # of: counter texts repeat all day. Bounded; threads at worst compute one twice.
        found_in: dict[object, tuple[dict[str, FeatureValue], dict[str, str]]] = {}

        def scan(text: str) -> tuple[dict[str, FeatureValue], dict[str, str]]:
            first = matcher.first_hits(text) if text else None
            if not first:  # most events: nothing written, or nothing found
                return none_found, nothing
            values: dict[str, FeatureValue] = {}
            details: dict[str, str] = {}
            for item in wanted:
                found = first.get(item.name)
                values[item.key] = found is not None
                if found is not None:
                    details[item.key] = (
                        f"lexicon {item.name}: term {found.term!r} in {text_field} "
                        f"at {found.start}-{found.end}"
                    )
            return values, details

        def lexicons(out: Resolution) -> None:
            event = out.event
            key = key_of(event)
            known = found_in.get(key)
            if known is None:
                known = scan(text_of(event))
                if len(found_in) >= _TEXTS_KEPT:
                    found_in.clear()
                found_in[key] = known
            out.features.update(known[0])
            if known[1]:
                out.details.update(known[1])

        return lexicons

    @staticmethod
    def _watchlist(ref: FieldRef) -> Step:
        many = _MANY_VALUES.get(ref.field)
        key, field, name = ref.key, ref.field, ref.name
        # The details of the last list version seen ("listed", "not listed"), built once per
        # version: one tuple, replaced whole, so threads never see a mix of two versions.
        said: tuple[Watchlist | None, str, str] = (None, "", "")

        def watchlist(out: Resolution) -> None:
            nonlocal said
            listed = out.watchlists.get(name)
            if listed is None:
                raise LookupError(f"watchlist {name!r} is not loaded")
            if many is not None:  # every third party's value, not the first
                values = many(out.event)
                if not values:
                    out.features[key] = None
                    return
                member = any(listed.contains(value) for value in values)
                out.features[key] = member
                out.details[key] = (
                    f"watchlist {name} version {listed.version}: "
                    f"{'listed' if member else 'not listed'} ({len(values)} checked)"
                )
                return
            value = out.features[field]
            if value is None:
                out.features[key] = None
                return
            member = listed.contains(str(value))
            out.features[key] = member
            known = said
            if known[0] is not listed:
                prefix = f"watchlist {name} version {listed.version}: "
                known = said = (listed, prefix + "listed", prefix + "not listed")
            out.details[key] = known[1] if member else known[2]

        return watchlist


def _history_derived(out: Resolution) -> None:
    out.features.update(derived_history_features(out.event, out.history))


def _group(ref: FieldRef) -> str:
    if ref.kind is RefKind.FIELD:
        return "history" if ref.key in HISTORY_DERIVED else "window"
    return "lexicon" if ref.kind is RefKind.LEXICON else "watchlist"


# Cheapest first: a watchlist lookup, a lexicon scan, history, then windows.
_COST = {"watchlist": 0, "lexicon": 1, "history": 2, "window": 3}


def _cheap_part(condition: Condition) -> Condition | None:
    """The cheap top-level conjuncts of ``condition``: when they are false the rule cannot fire."""
    items = condition.items if isinstance(condition, All) else (condition,)
    cheap = tuple(item for item in items if all(_cheap(ref) for ref in refs(item)))
    if not cheap:
        return None
    return cheap[0] if len(cheap) == 1 else All(cheap)
