"""``Guard``: load a pack once, then screen events from any number of teller threads."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guardrail.context.deadline import reads_can_fail, with_budget
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
from guardrail.errors import EventError as EventError  # re-exported: its historic home
from guardrail.lang.pack import Pack, load_pack
from guardrail.model.decision import Decision, Failure
from guardrail.model.event import Event

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
        history_budget_s: float | None = DEFAULT_HISTORY_BUDGET_S,
    ) -> None:
        """``history_budget_s``: how long one history read may take before screening fails
        closed (stores whose reads can block only; None waits for ever)."""
        self.pack = pack
        self.backend: Backend = make_backend(backend, pack)
        # "is None", not "or": an empty store has len() 0 and would be silently replaced.
        retention = retention_for(list(pack.windows.values()))
        store = history if history is not None else InMemoryHistoryStore(retention)
        self.history: HistoryStore = with_budget(store, history_budget_s)
        # A store read can fail: read every history feature, so that a failure fails closed on
        # every backend alike, whether or not a rule of this event reads that feature.
        self._read_all_history = reads_can_fail(store)
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
            if self._read_all_history:
                for key in self._plan.history_keys:
                    enrichment[key]
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
        except BaseException as interrupt:  # KeyboardInterrupt, SystemExit: leave a trace, go on
            logger.warning(
                "screening of event %s interrupted in %s by %s",
                event.event_id,
                stage,
                type(interrupt).__name__,
            )
            raise

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
