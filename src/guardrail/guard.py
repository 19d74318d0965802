"""``Guard``: load a pack once, then screen events from any number of teller threads."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guardrail.context.enrich import Enrichment, FeaturePlan
from guardrail.context.history import (
    HistoryRecord,
    HistoryStore,
    InMemoryHistoryStore,
    retention_for,
)
from guardrail.context.watchlist import Watchlist, WatchlistRegistry, load_watchlist
from guardrail.engine import BACKENDS, Backend, DurableRulesBackend, ReferenceBackend, decide
from guardrail.engine.decide import FAIL_CLOSED_FLOOR
from guardrail.errors import GuardrailError
from guardrail.lang.pack import Pack, load_pack
from guardrail.model.decision import Decision, Failure
from guardrail.model.event import Event

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
    """The backend called ``name`` (see ``guardrail.engine.BACKENDS``), compiled for ``pack``."""
    if name == "reference":
        return ReferenceBackend(pack.engine_rules)
    if name == "durable_rules":
        return DurableRulesBackend(pack.engine_rules, pack.content_hash)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


class Guard:
    """Screens events against one rule pack. Thread-safe; Guards never share state."""

    def __init__(
        self,
        pack: Pack,
        *,
        backend: str = "reference",
        history: HistoryStore | None = None,
        watchlists: WatchlistRegistry | None = None,
    ) -> None:
        self.pack = pack
        self.backend: Backend = make_backend(backend, pack)
        # "is None", not "or": an empty store has len() 0 and would be silently replaced.
        retention = retention_for(list(pack.windows.values()))
        self.history: HistoryStore = (
            history if history is not None else InMemoryHistoryStore(retention)
        )
        self.watchlists = watchlists if watchlists is not None else WatchlistRegistry()
        loaded = self.watchlists.names()
        for name, path in pack.watchlist_paths.items():
            if name not in loaded:
                self.watchlists.register(load_watchlist(path, name))
        self._plan = FeaturePlan(pack)

    @classmethod
    def from_path(cls, path: str | Path, **options: Any) -> Guard:
        """Load the pack at ``path`` and build a Guard; ``PackError`` lists every problem."""
        return cls(load_pack(path), **options)

    def screen(self, event: Event) -> Decision:
        """Screen one event. Never raises for a valid event: any internal failure gives a decision
        of at least ``review`` that names the failure."""
        started = time.perf_counter_ns()
        stage = "context"
        enrichment = Enrichment()
        hit_ids: list[str] = []
        try:
            snapshot = self.watchlists.snapshot()  # one version of every list for this whole call
            enrichment = self._plan.enrich(event, self.history, snapshot)
            stage = "engine"
            hit_ids = self.backend.evaluate(enrichment)
            stage = "decide"
            return decide(
                self.pack,
                event.event_id,
                hit_ids,
                enrichment,
                self.backend.name,
                details=enrichment.details,
                elapsed_us=(time.perf_counter_ns() - started) // 1000,
            )
        except Exception as error:  # fail closed: the teller must never see a silent proceed
            logger.exception("screening failed in %s for event %s", stage, event.event_id)
            failure = Failure(
                stage=stage, error_type=type(error).__name__, message=str(error)[:500]
            )
            return self._failed_decision(event, hit_ids, enrichment, failure, started)

    def _failed_decision(
        self,
        event: Event,
        hit_ids: list[str],
        enrichment: Enrichment,
        failure: Failure,
        started: int,
    ) -> Decision:
        elapsed = (time.perf_counter_ns() - started) // 1000
        try:
            return decide(
                self.pack,
                event.event_id,
                hit_ids,
                enrichment,
                self.backend.name,
                details=enrichment.details,
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
                pack=self.pack.ref,
                backend=self.backend.name,
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
