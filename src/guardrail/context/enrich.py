"""Turn one event plus its context (history, watchlists, lexicons) into the flat, typed features
the engines read. Only the features some rule of the pack names are computed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from guardrail.context.history import HistoryStore
from guardrail.context.lexicon import LexiconMatcher
from guardrail.context.watchlist import Watchlist
from guardrail.context.windows import (
    compute_window,
    derived_history_features,
    local_time,
    static_derived_features,
)
from guardrail.lang.catalog import OBSERVATIONS
from guardrail.lang.ir import FieldRef, RefKind, walk
from guardrail.lang.pack import LOCAL_DATE_KEY, Pack
from guardrail.model.event import Event
from guardrail.model.money import from_fen

FeatureValue = bool | int | str | None
Extractor = Callable[[Event], FeatureValue]


def _enum(value: object) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


_BASE: dict[str, Extractor] = {
    "kind": lambda e: e.kind.value,
    "direction": lambda e: e.direction.value,
    "channel": lambda e: e.channel.value,
    "amount": lambda e: e.amount.fen,
    "currency": lambda e: e.amount.currency.value,
    "cross_border": lambda e: e.cross_border,
    "new_daily_limit": lambda e: None if e.new_daily_limit is None else e.new_daily_limit.fen,
    "branch.id": lambda e: e.branch.id,
    "branch.region": lambda e: e.branch.region,
    "teller_id": lambda e: e.teller_id,
    "customer.id": lambda e: e.customer.id,
    "customer.id_number": lambda e: e.customer.id_number,
    "customer.phone": lambda e: e.customer.phone,
    "customer.party_type": lambda e: e.customer.party_type.value,
    "customer.segment": lambda e: e.customer.segment.value,
    "customer.region": lambda e: e.customer.region,
    "account.id": lambda e: None if e.account is None else e.account.id,
    "account.account_class": lambda e: None if e.account is None else e.account.account_class.value,
    "counterparty.account": lambda e: None if e.counterparty is None else e.counterparty.account,
    "counterparty.bank": lambda e: None if e.counterparty is None else e.counterparty.bank,
    "counterparty.region": lambda e: None if e.counterparty is None else e.counterparty.region,
    "counterparty.phone": lambda e: None if e.counterparty is None else e.counterparty.phone,
    "counterparty.same_name": lambda e: (
        None if e.counterparty is None else e.counterparty.same_name
    ),
    "counterparty.party_type": lambda e: (
        None if e.counterparty is None else e.counterparty.party_type.value
    ),
    "purpose.code": lambda e: None if e.purpose is None else e.purpose.code.value,
    "answers.stated_purpose": lambda e: _enum(e.answers.stated_purpose),
    "answers.knows_payee": lambda e: e.answers.knows_payee,
    "answers.payee_relationship": lambda e: _enum(e.answers.payee_relationship),
    "answers.met_payee_in_person": lambda e: e.answers.met_payee_in_person,
    "answers.instructed_by_other": lambda e: e.answers.instructed_by_other,
    "answers.told_to_keep_secret": lambda e: e.answers.told_to_keep_secret,
    "answers.family_aware": lambda e: e.answers.family_aware,
    "answers.promised_return_pct": lambda e: e.answers.promised_return_pct,
}


def _observation(name: str) -> Extractor:
    return lambda e: bool(getattr(e.observations, name))


for _name in OBSERVATIONS:
    _BASE[f"observations.{_name}"] = _observation(_name)

_TEXT: dict[str, Callable[[Event], str]] = {
    "purpose.text": lambda e: "" if e.purpose is None else e.purpose.text,
    "notes": lambda e: e.notes,
    "answers.purpose_detail": lambda e: e.answers.purpose_detail or "",
    "any_text": lambda e: "\n".join(
        part
        for part in (
            "" if e.purpose is None else e.purpose.text,
            e.answers.purpose_detail or "",
            e.notes,
        )
        if part
    ),
}

STATIC_DERIVED = frozenset(
    {
        "customer.age",
        "customer.is_elderly",
        "account.age_days",
        "account.days_since_last_activity",
        "counterparty.other_region",
        "event.local_hour",
    }
)
HISTORY_DERIVED = frozenset(
    {
        "counterparty.first_seen",
        "history.inbound_24h",
        "history.inbound_24h_pct",
        "history.outbound_count_24h",
        "history.same_payee_count_today",
    }
)


class Enrichment(Mapping[str, FeatureValue]):
    """The features of one event, computed on first read and then kept.

    Rules for other event kinds never read their features, so a cash withdrawal does not pay
    for transfer-only windows. ``details`` says how some values were found (which lexicon
    term, which watchlist version, which window).
    """

    def __init__(
        self,
        plan: FeaturePlan | None = None,
        event: Event | None = None,
        history: HistoryStore | None = None,
        watchlists: Mapping[str, Watchlist] | None = None,
    ) -> None:
        self._plan = plan
        self._event = event
        self._history = history
        self._watchlists = watchlists or {}
        self.known: dict[str, FeatureValue] = {}
        self.details: dict[str, str] = {}

    def get(self, key: str, default: FeatureValue = None) -> FeatureValue:  # type: ignore[override]
        # The engines' hot path: no exception on a first read.
        values = self.known
        if key in values:
            return values[key]
        plan = self._plan
        if plan is None or self._event is None or key not in plan.keys:
            return default
        assert self._history is not None
        plan.compute(key, self._event, self._history, self._watchlists, self)
        return values.get(key, default)

    def __getitem__(self, key: str) -> FeatureValue:
        if key in self.known or (self._plan is not None and key in self._plan.keys):
            return self.get(key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._plan.keys if self._plan is not None else self.known)

    def __len__(self) -> int:
        return len(self._plan.keys) if self._plan is not None else len(self.known)

    def materialise(self) -> dict[str, FeatureValue]:
        """Compute every feature the pack needs and return them all."""
        for key in self:
            self[key]
        return dict(self.known)


class FeaturePlan:
    """Built once per pack: which features its rules read and how to compute each."""

    def __init__(self, pack: Pack) -> None:
        needed: dict[str, FieldRef] = {}
        for rule in pack.rules:
            for compare in walk(rule.guarded):
                for ref in (compare.left, compare.right):
                    if isinstance(ref, FieldRef):
                        needed.setdefault(ref.key, ref)
        self.keys = frozenset(needed)
        self._refs = needed
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

    def _computable(self, key: str) -> bool:
        return (
            key in _BASE
            or key in STATIC_DERIVED
            or key in HISTORY_DERIVED
            or key in self._windows
            or key == LOCAL_DATE_KEY
        )

    def enrich(
        self, event: Event, history: HistoryStore, watchlists: Mapping[str, Watchlist]
    ) -> Enrichment:
        """The (lazily computed) features of ``event``."""
        return Enrichment(self, event, history, watchlists)

    def compute(
        self,
        key: str,
        event: Event,
        history: HistoryStore,
        watchlists: Mapping[str, Watchlist],
        out: Enrichment,
    ) -> None:
        """Compute ``key`` (and any features that come with it) into ``out``."""
        values = out.known
        extract = _BASE.get(key)
        if extract is not None:
            values[key] = extract(event)
        elif key == LOCAL_DATE_KEY:
            local = local_time(event)
            values[key] = local.year * 10000 + local.month * 100 + local.day
        elif key in STATIC_DERIVED:
            derived = static_derived_features(event)
            for name in STATIC_DERIVED:
                values.setdefault(name, derived[name])
        elif key in HISTORY_DERIVED:
            from_history = derived_history_features(event, history)
            for name in HISTORY_DERIVED:
                values.setdefault(name, from_history[name])
        elif key in self._windows:
            spec = self._windows[key]
            value = compute_window(spec, event, history)
            values[key] = value
            shown = str(from_fen(value)) if spec.is_money else str(value)
            out.details[key] = f"{spec.aggregate.value} over {spec.span.value} = {shown}"
        else:
            ref = self._refs[key]
            if ref.kind is RefKind.LEXICON:
                self._lexicons(ref.field, event, out)
            else:
                self._watchlist(ref, event, watchlists, out)

    def _lexicons(self, text_field: str, event: Event, out: Enrichment) -> None:
        hits = self.matcher.find(_TEXT[text_field](event), text_field)
        for ref in self._lexicon_fields[text_field]:
            first = next((hit for hit in hits if hit.lexicon == ref.name), None)
            out.known[ref.key] = first is not None
            if first is not None:
                out.details[ref.key] = (
                    f"lexicon {ref.name}: term {first.term!r} in {text_field} "
                    f"at {first.start}-{first.end}"
                )

    def _watchlist(
        self, ref: FieldRef, event: Event, watchlists: Mapping[str, Watchlist], out: Enrichment
    ) -> None:
        listed = watchlists.get(ref.name)
        if listed is None:
            raise LookupError(f"watchlist {ref.name!r} is not loaded")
        value = _BASE[ref.field](event)
        if value is None:
            out.known[ref.key] = None
            return
        member = listed.contains(str(value))
        out.known[ref.key] = member
        out.details[ref.key] = (
            f"watchlist {ref.name} version {listed.version}: {'listed' if member else 'not listed'}"
        )
