"""``Guard``: load a pack once, then screen events from any number of teller threads."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guardrail.context.enrich import FeaturePlan
from guardrail.context.history import (
    HistoryRecord,
    HistoryStore,
    InMemoryHistoryStore,
    retention_for,
)
from guardrail.context.watchlist import Watchlist, WatchlistRegistry, load_watchlist
from guardrail.engine import Backend, decide, load_backend
from guardrail.errors import GuardrailError
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


class EventError(GuardrailError, ValueError):
    """An event failed validation. ``problems`` lists ``(field path, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__(
            "invalid event:\n" + "\n".join(f"  {path}: {message}" for path, message in problems)
        )


def parse_event(data: str | bytes | Mapping[str, Any]) -> Event:
    """Validate JSON text or a JSON-like mapping into an ``Event``.

    Raises ``EventError`` naming every field that is wrong."""
    if isinstance(data, Mapping):
        try:
            data = json.dumps(data, default=str, ensure_ascii=False)
        except (TypeError, ValueError) as error:
            raise EventError([("(event)", f"not JSON-serialisable: {error}")]) from None
    if len(data) > MAX_EVENT_BYTES:
        raise EventError([("(event)", f"larger than {MAX_EVENT_BYTES} bytes")])
    try:
        return Event.model_validate_json(data)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            path = ".".join(str(part) for part in item["loc"]) or "(event)"
            message = item["msg"]
            if item["type"] == "extra_forbidden":
                message = "unknown field"
            problems.append((path, message))
        raise EventError(problems) from None


def make_backend(name: str, pack: Pack) -> Backend:
    """The backend called ``name`` (see ``guardrail.engine.BACKENDS``), compiled for ``pack``;
    ``BackendUnavailable`` when it cannot load on this interpreter."""
    return load_backend(name, pack.engine_rules, pack.content_hash)


class _Screener:
    """One pack compiled for screening: its backend and feature plan."""

    def __init__(self, pack: Pack, backend: str) -> None:
        self.pack = pack
        self.backend: Backend = make_backend(backend, pack)
        self.plan = FeaturePlan(pack)


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
    ) -> None:
        if production:
            verify_approval(pack, approval_key)
        self.pack = pack
        self._live = _Screener(pack, backend)
        self.backend: Backend = self._live.backend
        # "is None", not "or": an empty store has len() 0 and would be silently replaced.
        retention = retention_for(
            [*pack.windows.values(), *(candidate.windows.values() if candidate else ())]
        )
        self.history: HistoryStore = (
            history if history is not None else InMemoryHistoryStore(retention)
        )
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
        features = FeatureMap()
        details: dict[str, str] = {}
        hit_ids: list[str] = []
        pack = screener.pack
        versions = {name: snapshot[name].version for name in pack.watchlists if name in snapshot}
        try:
            resolution = screener.plan.resolve(event, self.history, snapshot)
            features, details = resolution.features, resolution.details
            stage = "engine"
            hit_ids = screener.backend.evaluate(features)
            stage = "decide"
            return decide(
                pack,
                event.event_id,
                hit_ids,
                features,
                screener.backend.name,
                details=details,
                elapsed_us=(time.perf_counter_ns() - started) // 1000,
                watchlists=versions,
            )
        except Exception as error:  # fail closed: the teller must never see a silent proceed
            logger.exception("screening failed in %s for event %s", stage, event.event_id)
            failure = Failure(
                stage=stage, error_type=type(error).__name__, message=str(error)[:500]
            )
            return self._failed_decision(
                screener, event, hit_ids, features, details, failure, started
            )

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
        hit_ids: list[str],
        features: FeatureMap,
        details: dict[str, str],
        failure: Failure,
        started: int,
    ) -> Decision:
        elapsed = (time.perf_counter_ns() - started) // 1000
        try:
            return decide(
                screener.pack,
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
