"""Turn one event plus its context (history, watchlists, lexicons) into the flat, typed features
the engines read. Only the features some rule of the pack names are computed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import cast

from guardrail.context.history import HistoryRecord, HistoryStore
from guardrail.context.lexicon import LexiconMatcher
from guardrail.context.watchlist import Watchlist
from guardrail.context.windows import (
    WindowedHistory,
    compute_window,
    derived_history_features,
    is_windowed,
    local_time,
    static_derived_features,
)
from guardrail.engine.base import FeatureMap
from guardrail.lang.catalog import (
    BASE_FIELDS,
    DOCUMENT_KINDS,
    LOCAL_DATE_KEY,
    OBSERVATIONS,
    FieldSource,
    FieldType,
)
from guardrail.lang.ir import FieldRef, RefKind, walk
from guardrail.lang.pack import Pack
from guardrail.model.event import DIRECTION_OF_KIND, Event, Relationship, ThirdPartyRole
from guardrail.model.money import from_fen

FeatureValue = bool | int | str | None


_OBSERVATION_KEYS = tuple((f"observations.{name}", name) for name in OBSERVATIONS)


def base_features(e: Event) -> dict[str, FeatureValue]:
    """The event's own fields as flat features, in one pass (the hot path of every screening).
    Enum members are ``str`` subclasses and compare equal to their values."""
    account, counterparty, purpose = e.account, e.counterparty, e.purpose
    customer, answers, observations = e.customer, e.answers, e.observations
    features: dict[str, FeatureValue] = {
        "kind": e.kind,
        "direction": DIRECTION_OF_KIND[e.kind],
        "channel": e.channel,
        "amount": e.amount.fen,
        "currency": e.amount.currency,
        "cross_border": e.cross_border,
        "new_daily_limit": None if e.new_daily_limit is None else e.new_daily_limit.fen,
        "branch.id": e.branch.id,
        "branch.region": e.branch.region,
        "teller_id": e.teller_id,
        "customer.id": customer.id,
        "customer.id_number": customer.id_number,
        "customer.phone": customer.phone,
        "customer.party_type": customer.party_type,
        "customer.segment": customer.segment,
        "customer.region": customer.region,
        "account.id": None if account is None else account.id,
        "account.account_class": None if account is None else account.account_class,
        "counterparty.account": None if counterparty is None else counterparty.account,
        "counterparty.bank": None if counterparty is None else counterparty.bank,
        "counterparty.region": None if counterparty is None else counterparty.region,
        "counterparty.phone": None if counterparty is None else counterparty.phone,
        "counterparty.same_name": None if counterparty is None else counterparty.same_name,
        "counterparty.party_type": None if counterparty is None else counterparty.party_type,
        "purpose.code": None if purpose is None else purpose.code,
        "answers.stated_purpose": answers.stated_purpose,
        "answers.knows_payee": answers.knows_payee,
        "answers.payee_relationship": answers.payee_relationship,
        "answers.met_payee_in_person": answers.met_payee_in_person,
        "answers.instructed_by_other": answers.instructed_by_other,
        "answers.told_to_keep_secret": answers.told_to_keep_secret,
        "answers.family_aware": answers.family_aware,
        "answers.promised_return_pct": answers.promised_return_pct,
    }
    for key, name in _OBSERVATION_KEYS:
        features[key] = getattr(observations, name)
    _add_counter_context(e, features)
    return features


_FAMILY_ROLES = frozenset({ThirdPartyRole.FAMILY, ThirdPartyRole.GUARDIAN})
_DOCUMENT_KEYS = tuple((f"documents.{kind}", kind) for kind in DOCUMENT_KINDS)


def _add_counter_context(e: Event, features: dict[str, FeatureValue]) -> None:
    """Account opening, third parties, documents and family: who and what is at the counter."""
    opening, parties, family = e.opening, e.third_parties, e.family
    features["answers.paid_to_open"] = e.answers.paid_to_open
    features["answers.lends_account"] = e.answers.lends_account
    features["opening.purpose"] = None if opening is None else opening.purpose
    features["opening.accounts_at_other_banks"] = (
        None if opening is None else opening.accounts_at_other_banks
    )
    features["opening.opened_elsewhere_last_30d"] = (
        None if opening is None else opening.opened_elsewhere_last_30d
    )
    features["opening.accompanied"] = (
        None if opening is None else (opening.accompanied or bool(parties))
    )
    features["third_party.present"] = bool(parties)
    features["third_party.count"] = len(parties)
    features["third_party.answers_for_customer"] = any(p.answers_for_customer for p in parties)
    features["third_party.agent_present"] = any(p.role is ThirdPartyRole.AGENT for p in parties)
    features["third_party.non_family_present"] = any(
        p.role not in _FAMILY_ROLES and p.relationship is not Relationship.FAMILY for p in parties
    )
    features["third_party.phone"] = next((p.phone for p in parties if p.phone), None)
    features["third_party.id_number"] = next((p.id_number for p in parties if p.id_number), None)
    shown = {d.kind.value for d in e.documents}
    for key, kind in _DOCUMENT_KEYS:
        features[key] = kind in shown
    features["documents.any_verified"] = any(d.verified for d in e.documents)
    features["family.present"] = False if family is None else family.present
    features["family.reached_by_phone"] = False if family is None else family.reached_by_phone
    features["family.confirms"] = None if family is None else family.confirms
    features["family.confirmed"] = (
        None
        if family is None or family.confirms is None
        else family.confirms and (family.present or family.reached_by_phone)
    )


# Fields a watchlist tests against every value the event has (any third party), not the first.
_MANY_VALUES: dict[str, Callable[[Event], tuple[str, ...]]] = {
    "third_party.phone": lambda e: tuple(p.phone for p in e.third_parties if p.phone),
    "third_party.id_number": lambda e: tuple(p.id_number for p in e.third_parties if p.id_number),
}


STATIC_DERIVED = frozenset(i.name for i in BASE_FIELDS if i.source is FieldSource.DERIVED)
HISTORY_DERIVED = frozenset(i.name for i in BASE_FIELDS if i.source is FieldSource.HISTORY)
# Every catalogue field that ``base_features`` fills: the event's own fields but free text.
BASE_KEYS = frozenset(
    i.name for i in BASE_FIELDS if i.source is FieldSource.EVENT and i.type is not FieldType.TEXT
)

_TEXT: dict[str, Callable[[Event], str]] = {
    "purpose.text": lambda e: "" if e.purpose is None else e.purpose.text,
    "notes": lambda e: e.notes,
    "answers.purpose_detail": lambda e: e.answers.purpose_detail or "",
    "opening.purpose_text": lambda e: "" if e.opening is None else e.opening.purpose_text,
    "any_text": lambda e: "\n".join(
        part
        for part in (
            "" if e.purpose is None else e.purpose.text,
            e.answers.purpose_detail or "",
            e.notes,
            "" if e.opening is None else e.opening.purpose_text,
        )
        if part
    ),
}


class Enrichment(FeatureMap):
    """The features of one event. The event's own fields are filled in at once; the costly
    ones (windows, history, lexicons, watchlists, derived dates) on first read.

    Rules for other event kinds never read their features, so a cash withdrawal does not pay
    for transfer-only windows. ``details`` says how some values were found (which lexicon
    term, which watchlist version, which window).
    """

    __slots__ = ("_current", "_event", "_history", "_plan", "_watchlists", "details")

    def __init__(
        self,
        base: Mapping[str, FeatureValue] | None = None,
        plan: FeaturePlan | None = None,
        event: Event | None = None,
        history: HistoryStore | None = None,
        watchlists: Mapping[str, Watchlist] | None = None,
    ) -> None:
        super().__init__(base or {})
        self._plan = plan
        self._event = event
        self._history = history
        self._watchlists = watchlists or {}
        self._current: HistoryRecord | None = None
        self.details: dict[str, str] = {}

    def current_record(self) -> HistoryRecord:
        """The event as a history record, built once for all the windows of this screening."""
        if self._current is None:
            assert self._event is not None
            self._current = HistoryRecord.from_event(self._event)
        return self._current

    def __missing__(self, key: str) -> FeatureValue:
        plan = self._plan
        if (
            plan is None
            or key not in plan.lazy_keys
            or self._event is None
            or self._history is None
        ):
            return None
        plan.compute(key, self._event, self._history, self._watchlists, self)
        return dict.get(self, key)

    def get(self, key: str, default: FeatureValue = None) -> FeatureValue:  # type: ignore[override]
        value = self[key]
        return default if value is None else value

    def materialise(self) -> dict[str, FeatureValue]:
        """Compute every feature the pack needs and return them all."""
        if self._plan is not None:
            for key in self._plan.keys:
                self[key]
        return dict(self)


class FeaturePlan:
    """Built once per pack: which features its rules read and how to compute each."""

    def __init__(self, pack: Pack) -> None:
        needed: dict[str, FieldRef] = {}
        for rule in pack.engine_rules:
            for compare in walk(rule.guarded):
                for ref in (compare.left, compare.right):
                    if isinstance(ref, FieldRef):
                        needed.setdefault(ref.key, ref)
        self.keys = frozenset(needed)
        self.lazy_keys = frozenset(key for key in needed if key not in BASE_KEYS)
        # Features read from the history store: the only ones whose computation can fail on a
        # valid event (a store error or timeout), so screening may read them all up front.
        self.history_keys = frozenset(
            key for key in needed if key in HISTORY_DERIVED or key.startswith("window.")
        )
        self._refs = needed
        self._windows = {
            key: pack.windows[key.removeprefix("window.")]
            for key in needed
            if key.startswith("window.")
        }
        self._reads_derived = any(key in HISTORY_DERIVED for key in needed)
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
            key in BASE_KEYS
            or key in STATIC_DERIVED
            or key in HISTORY_DERIVED
            or key in self._windows
            or key == LOCAL_DATE_KEY
        )

    def enrich(
        self, event: Event, history: HistoryStore, watchlists: Mapping[str, Watchlist]
    ) -> Enrichment:
        """The (lazily computed) features of ``event``."""
        return Enrichment(base_features(event), self, event, history, watchlists)

    def compute(
        self,
        key: str,
        event: Event,
        history: HistoryStore,
        watchlists: Mapping[str, Watchlist],
        out: Enrichment,
    ) -> None:
        """Compute ``key`` (and any features that come with it) into ``out``."""
        values = out
        if key == LOCAL_DATE_KEY:
            local = local_time(event)
            values[key] = local.year * 10000 + local.month * 100 + local.day
        elif key in STATIC_DERIVED:
            derived = static_derived_features(event)
            for name in STATIC_DERIVED:
                values.setdefault(name, derived[name])
        elif (key in HISTORY_DERIVED or key in self._windows) and is_windowed(history):
            self._history_at_once(event, cast(WindowedHistory, history), out)
        elif key in HISTORY_DERIVED:
            from_history = derived_history_features(event, history)
            for name in HISTORY_DERIVED:
                values.setdefault(name, from_history[name])
        elif key in self._windows:
            spec = self._windows[key]
            value = compute_window(spec, event, history, out.current_record())
            values[key] = value
            shown = str(from_fen(value)) if spec.is_money else str(value)
            out.details[key] = f"{spec.aggregate.value} over {spec.span.value} = {shown}"
        else:
            ref = self._refs[key]
            if ref.kind is RefKind.LEXICON:
                self._lexicons(ref.field, event, out)
            else:
                self._watchlist(ref, event, watchlists, out)

    def _history_at_once(self, event: Event, history: WindowedHistory, out: Enrichment) -> None:
        """Every window and history feature the pack reads, in one request to the store."""
        values = history.window_values(
            event, self._windows, out.current_record(), derived=self._reads_derived
        )
        for key, value in values.items():
            out.setdefault(key, value)
        for key, spec in self._windows.items():
            value = values[key]
            shown = str(from_fen(int(value or 0))) if spec.is_money else str(value)
            out.details[key] = f"{spec.aggregate.value} over {spec.span.value} = {shown}"

    def _lexicons(self, text_field: str, event: Event, out: Enrichment) -> None:
        hits = self.matcher.find(_TEXT[text_field](event), text_field)
        for ref in self._lexicon_fields[text_field]:
            first = next((hit for hit in hits if hit.lexicon == ref.name), None)
            out[ref.key] = first is not None
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
        many = _MANY_VALUES.get(ref.field)
        if many is not None:
            values = many(event)
            if not values:
                out[ref.key] = None
                return
            member = any(listed.contains(value) for value in values)
            out[ref.key] = member
            out.details[ref.key] = (
                f"watchlist {ref.name} version {listed.version}: "
                f"{'listed' if member else 'not listed'} ({len(values)} checked)"
            )
            return
        value = out[ref.field]
        if value is None:
            out[ref.key] = None
            return
        member = listed.contains(str(value))
        out[ref.key] = member
        out.details[ref.key] = (
            f"watchlist {ref.name} version {listed.version}: {'listed' if member else 'not listed'}"
        )
