"""``Guard``: load a pack once, then screen events from any number of teller threads."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guardrail.context.compiled import Screening, compile_screening
from guardrail.context.deadline import with_budget
from guardrail.context.enrich import FeaturePlan, Resolution
from guardrail.context.history import (
    HistoryRecord,
    HistoryStore,
    InMemoryHistoryStore,
    retention_for,
)
from guardrail.context.watchlist import Watchlist, WatchlistRegistry, load_watchlist
from guardrail.engine import Backend, load_backend
from guardrail.engine.decide import Decider
from guardrail.engine.reference import ReferenceBackend
from guardrail.errors import EventError as EventError  # re-exported: its historic home
from guardrail.lang.approval import verify_approval
from guardrail.lang.loader import load_pack
from guardrail.lang.pack import Pack
from guardrail.model.decision import FAIL_CLOSED_FLOOR, Decision, Failure
from guardrail.model.event import Event
from guardrail.model.features import FeatureMap
from guardrail.policy.apply import PostDecisionPolicies
from guardrail.policy.shadow import ShadowSink

logger = logging.getLogger("guardrail")

MAX_EVENT_BYTES = 256 * 1024
DEFAULT_HISTORY_BUDGET_S = 2.0  # a teller waits this long at most for a blocking history store


MAX_EVENT_DEPTH = 16  # an event nests five levels; deeper input is refused before any recursion


def parse_event(data: str | bytes | Mapping[str, Any]) -> Event:
    """Validate JSON text or a JSON-like mapping into an ``Event``.

    Raises ``EventError`` naming every field that is wrong. Refused outright: a key given twice
    in one object (parsers disagree on which one wins), nesting deeper than
    ``MAX_EVENT_DEPTH``, and in a mapping any value JSON has no type for (``bytes`` among them).
    """
    from_text = not isinstance(data, Mapping)
    if isinstance(data, Mapping):
        _check_plain(data, "", 0)
        data = json.dumps(data, default=_json_scalar, ensure_ascii=False)
    if len(data) > MAX_EVENT_BYTES:
        raise EventError([("(event)", f"larger than {MAX_EVENT_BYTES} bytes")])
    try:
        event = Event.model_validate_json(data)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            path = ".".join(str(part) for part in item["loc"]) or "(event)"
            message = item["msg"]
            if item["type"] == "extra_forbidden":
                message = "unknown field"
            problems.append((path, message))
        raise EventError(problems) from None
    if from_text:  # a mapping cannot hold a key twice
        _refuse_duplicate_keys(data)
    return event


_SCALARS = (str, int, float, bool, type(None), Decimal, dt.date, Enum)


def _check_plain(value: object, path: str, depth: int) -> None:
    """Refuse what JSON cannot say (bytes, sets, objects) and nesting deeper than allowed."""
    if depth > MAX_EVENT_DEPTH:
        raise EventError([(path or "(event)", f"nested deeper than {MAX_EVENT_DEPTH} levels")])
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EventError([(path or "(event)", f"key {key!r} is not a string")])
            _check_plain(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_plain(item, f"{path}.{index}" if path else str(index), depth + 1)
    elif not isinstance(value, _SCALARS) or isinstance(value, bytes):
        kind = type(value).__name__
        raise EventError([(path or "(event)", f"a {kind} is not a JSON value; send text")])


def _json_scalar(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)  # Decimal: exact digits


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_unique_pairs)


def _refuse_duplicate_keys(data: str | bytes) -> None:
    try:
        _STRICT_JSON.decode(data if isinstance(data, str) else data.decode("utf-8"))
    except _DuplicateKey as duplicate:
        raise EventError([(duplicate.key, "key given more than once")]) from None
    except (ValueError, RecursionError):
        pass  # not JSON: the validation error already says why


def make_backend(name: str, pack: Pack) -> Backend:
    """The backend called ``name`` (see ``guardrail.engine.BACKENDS``), compiled for ``pack``;
    ``BackendUnavailable`` when it cannot load on this interpreter."""
    return load_backend(name, pack.engine_rules, pack.content_hash)


_NO_HITS: tuple[str, ...] = ()  # the hits of a screening that failed before the engine ran


class _Screener:
    """One pack compiled for screening: its backend and feature plan."""

    def __init__(self, pack: Pack, backend: str) -> None:
        self.pack = pack
        self.backend: Backend = make_backend(backend, pack)
        self.plan = FeaturePlan(pack)
        # The reference backend's rules, generated with the resolver as one function: what
        # screen() runs on that backend (same decisions, without the feature map in between).
        self.screening: Screening | None = (
            compile_screening(pack, self.plan)
            if isinstance(self.backend, ReferenceBackend)
            else None
        )
        self.decider = Decider(pack)
        # The versions of the pack's watchlists, for the last snapshot seen (a snapshot is a
        # new object after every reload, so identity tells when to recompute).
        self._versions: tuple[Mapping[str, Watchlist], dict[str, str]] | None = None

    def versions(self, snapshot: Mapping[str, Watchlist]) -> dict[str, str]:
        known = self._versions
        if known is not None and known[0] is snapshot:
            return known[1]
        versions = {
            name: snapshot[name].version for name in self.pack.watchlists if name in snapshot
        }
        self._versions = (snapshot, versions)
        return versions


class Guard:
    """Screens events against one rule pack. Thread-safe; Guards never share state.

    Optional: a ``candidate`` pack screened beside the live one with the same code, its
    decision passed to ``shadow_sink`` and never returned; ``policies`` (snoozes, circuit
    breakers) applied to the live decision; ``production=True`` refuses a pack without a
    valid approval for its exact content (``approval_key``: ``AuditKeys.approval``)."""

    def __init__(
        self,
        pack: Pack,
        *,
        backend: str = "reference",
        history: HistoryStore | None = None,
        watchlists: WatchlistRegistry | None = None,
        candidate: Pack | None = None,
        shadow_sink: ShadowSink | None = None,
        policies: PostDecisionPolicies | None = None,
        production: bool = False,
        approval_key: bytes | None = None,
        history_budget_s: float | None = DEFAULT_HISTORY_BUDGET_S,
    ) -> None:
        """``history_budget_s``: how long one history read may take before screening fails
        closed (stores whose reads can block only; None waits for ever)."""
        if production:
            verify_approval(pack, approval_key)
        self.pack = pack
        self._live = _Screener(pack, backend)
        self.backend: Backend = self._live.backend
        # "is None", not "or": an empty store has len() 0 and would be silently replaced.
        retention = retention_for(
            [*pack.windows.values(), *(candidate.windows.values() if candidate else ())]
        )
        store = history if history is not None else InMemoryHistoryStore(retention)
        self.history: HistoryStore = with_budget(store, history_budget_s)
        self.watchlists = watchlists if watchlists is not None else WatchlistRegistry()
        loaded = self.watchlists.names()
        for name, path in pack.watchlist_paths.items():
            if name not in loaded:
                self.watchlists.register(load_watchlist(path, name))
        self._plan = self._live.plan
        self.policies = policies
        self.shadow_sink = shadow_sink
        self._candidate: _Screener | None = None
        self._candidate_lists: dict[str, Watchlist] = {}
        if candidate is not None:
            self._candidate = _Screener(candidate, backend)
            for name, path in candidate.watchlist_paths.items():
                if candidate.watchlist_digests.get(name) != pack.watchlist_digests.get(name):
                    self._candidate_lists[name] = load_watchlist(path, name)

    @property
    def candidate(self) -> Pack | None:
        """The pack screened in shadow, if any."""
        return None if self._candidate is None else self._candidate.pack

    @classmethod
    def from_path(cls, path: str | Path, **options: Any) -> Guard:
        """Load the pack at ``path`` and build a Guard; ``PackError`` lists every problem."""
        return cls(load_pack(path), **options)

    def screen(self, event: Event) -> Decision:
        """Screen one event. Never raises for a valid event: any internal failure gives a decision
        of at least ``review`` that names the failure."""
        snapshot = self.watchlists.snapshot()  # one version of every list for this whole call
        decision = self._screen(self._live, event, snapshot)
        if self._candidate is not None:
            self._shadow(event, decision, snapshot)
        if self.policies is not None:
            decision = self._apply_policies(event, decision)
        return decision

    def _screen(
        self, screener: _Screener, event: Event, snapshot: Mapping[str, Watchlist]
    ) -> Decision:
        """The pack's decision for ``event``: the one code path of live, shadow, test and
        replay screening. One pass down the layers and back: the resolver computes the features
        the pack's rules can still use (context), the engine evaluates the rules on those plain
        values, ``decide`` builds the decision from them; nothing calls back into the context."""
        started = time.perf_counter_ns()
        stage = "context"
        features: FeatureMap | None = None
        details: dict[str, str] | None = None
        hit_ids: Sequence[str] = _NO_HITS
        versions = screener.versions(snapshot)
        resolution: Resolution | None = None
        try:
            if screener.screening is not None:
                resolution = Resolution(event, self.history, snapshot, FeatureMap(), {})
                hit_ids = screener.screening(event, resolution)
                features, details = resolution.features, resolution.details
            else:
                resolution = screener.plan.resolve(event, self.history, snapshot)
                features, details = resolution.features, resolution.details
                stage = "engine"
                hit_ids = screener.backend.evaluate(features)
            stage = "decide"
            elapsed_us = (time.perf_counter_ns() - started) // 1000
            if not hit_ids:  # most events
                return screener.decider.nothing_hit(
                    event.event_id, screener.backend.name, elapsed_us, versions
                )
            return screener.decider.decide(
                event.event_id,
                hit_ids,
                features,
                screener.backend.name,
                details=details,
                elapsed_us=elapsed_us,
                watchlists=versions,
            )
        except Exception as error:  # fail closed: the teller must never see a silent proceed
            if stage == "context" and resolution is not None:
                stage = resolution.stage  # the generated screening says how far it got
            logger.exception("screening failed in %s for event %s", stage, event.event_id)
            failure = Failure(
                stage=stage, error_type=type(error).__name__, message=str(error)[:500]
            )
            return self._failed_decision(
                screener,
                event,
                hit_ids,
                FeatureMap() if features is None else features,
                {} if details is None else details,
                failure,
                started,
            )
        except BaseException as interrupt:  # KeyboardInterrupt, SystemExit: leave a trace, go on
            logger.warning(
                "screening of event %s interrupted in %s by %s",
                event.event_id,
                stage,
                type(interrupt).__name__,
            )
            raise

    def _shadow(self, event: Event, live: Decision, snapshot: Mapping[str, Watchlist]) -> None:
        assert self._candidate is not None
        try:
            lists = {**snapshot, **self._candidate_lists} if self._candidate_lists else snapshot
            shadow = self._screen(self._candidate, event, lists)
            if self.shadow_sink is not None:
                self.shadow_sink(event, live, shadow)
        except Exception:  # a shadow run never changes or delays the live answer's validity
            logger.exception("shadow screening failed for event %s", event.event_id)

    def _apply_policies(self, event: Event, decision: Decision) -> Decision:
        assert self.policies is not None
        try:
            return self.policies.apply(self.pack, event, decision)
        except Exception as error:  # snoozes and breakers only lower: without them, fail closed
            logger.exception("post-decision policies failed for event %s", event.event_id)
            failure = Failure(
                stage="policy", error_type=type(error).__name__, message=str(error)[:500]
            )
            return decision.model_copy(
                update={
                    "action": max(decision.action, FAIL_CLOSED_FLOOR),
                    "failures": (*decision.failures, failure),
                }
            )

    def _failed_decision(
        self,
        screener: _Screener,
        event: Event,
        hit_ids: Sequence[str],
        features: FeatureMap,
        details: dict[str, str],
        failure: Failure,
        started: int,
    ) -> Decision:
        elapsed = (time.perf_counter_ns() - started) // 1000
        try:
            return screener.decider.decide(
                event.event_id,
                hit_ids,
                features,
                screener.backend.name,
                details=details,
                failures=[failure],
                elapsed_us=elapsed,
            )
        except Exception:
            logger.exception(
                "building the fail-closed decision failed for event %s", event.event_id
            )
            return Decision(
                event_id=event.event_id,
                action=FAIL_CLOSED_FLOOR,
                pack=screener.pack.ref,
                backend=screener.backend.name,
                failures=(failure,),
                elapsed_us=elapsed,
            )

    def screen_json(self, data: str | bytes | Mapping[str, Any]) -> Decision:
        """Validate then screen; raises ``EventError`` for a malformed event."""
        return self.screen(parse_event(data))

    def record_executed(self, event: Event) -> None:
        """Tell the guard the transaction was carried out, so it counts in later windows.
        A refused or withdrawn request must not be recorded."""
        self.history.record(HistoryRecord.from_event(event))

    def reload_watchlist(self, name: str, path: str | Path | None = None) -> Watchlist:
        """Reload a watchlist from its file; screenings in flight keep the version they had."""
        source = Path(path) if path is not None else self.pack.watchlist_paths.get(name)
        if source is None:
            raise KeyError(f"the pack declares no watchlist {name!r}")
        return self.watchlists.reload(name, source)
