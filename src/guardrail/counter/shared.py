"""Counter sessions kept in a :class:`~guardrail.counter.session_store.SessionStore`, so one
teller process can open a session and another continue and close it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from guardrail.counter.session import Clock, CounterSession, _utcnow
from guardrail.counter.session_store import SessionExists, SessionNotFound, SessionStore
from guardrail.guard import Guard
from guardrail.model.event import Event
from guardrail.model.session import StepJournal


def open_shared(store: SessionStore, guard: Guard, event: Event, **options: Any) -> CounterSession:
    """Open a session (:meth:`CounterSession.open`, same options) and store it;
    :class:`SessionExists` if its case id is already stored (nothing is screened then)."""
    case_id = options.get("session_id") or event.event_id
    try:
        store.load(case_id)
    except SessionNotFound:
        pass
    else:
        raise SessionExists(f"session {case_id!r} already exists")
    session = CounterSession.open(guard, event, **options)
    store.create(session.session_id, session.to_json())
    return session


def load_shared(
    store: SessionStore,
    case_id: str,
    guard: Guard,
    *,
    clock: Clock = _utcnow,
    audit: StepJournal | None = None,
) -> CounterSession:
    """The stored session, to read (changes to it are not saved: use :func:`continue_shared`)."""
    return CounterSession.from_json(store.load(case_id).state, guard, clock=clock, audit=audit)


@contextmanager
def continue_shared(
    store: SessionStore,
    case_id: str,
    guard: Guard,
    *,
    clock: Clock = _utcnow,
    audit: StepJournal | None = None,
) -> Iterator[CounterSession]:
    """Take the stored session for a step: ``with continue_shared(...) as session:
    session.escalate()``. A concurrent holder makes this raise :class:`SessionConflict` before
    anything is applied; when the block raises (a refused step), nothing is saved."""
    with store.hold(case_id) as hold:
        session = CounterSession.from_json(hold.stored.state, guard, clock=clock, audit=audit)
        yield session
        hold.save(session.to_json(), closed=session.closed)
