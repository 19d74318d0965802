"""guardrail: counter-side anti-fraud checks for bank teller software.

Everything a teller-software developer needs is importable from here::

    from guardrail import Guard, parse_event, CounterSession, AuditLog, Action

Names are imported on first use, so ``import guardrail.model`` (or loading the pytest plugin)
does not pull in the engines, the counter session or the audit log.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from guardrail.version import __version__ as __version__

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # screening
    "Guard": "guardrail.guard",
    "parse_event": "guardrail.guard",
    "EventError": "guardrail.guard",
    "Event": "guardrail.model",
    "Decision": "guardrail.model",
    "Action": "guardrail.model",
    "Obligation": "guardrail.model",
    "Hit": "guardrail.model",
    "Evidence": "guardrail.model",
    "Failure": "guardrail.model",
    "Money": "guardrail.model",
    "event_json_schema": "guardrail.model",
    # rule packs
    "Pack": "guardrail.lang",
    "PackError": "guardrail.lang",
    "load_pack": "guardrail.lang",
    # context a Guard can be given
    "HistoryStore": "guardrail.context",
    "InMemoryHistoryStore": "guardrail.context",
    "SQLiteHistoryStore": "guardrail.context",
    "WatchlistRegistry": "guardrail.context",
    # the counter session
    "CounterSession": "guardrail.counter",
    "IllegalStep": "guardrail.counter",
    "Notice": "guardrail.counter",
    "Outcome": "guardrail.counter",
    "SessionRecord": "guardrail.counter",
    # the audit log
    "AuditLog": "guardrail.audit",
    "AuditKeys": "guardrail.audit",
    "verify_log": "guardrail.audit",
    # errors
    "GuardrailError": "guardrail.errors",
    "StoreError": "guardrail.errors",
}

__all__ = [
    "Action",
    "AuditKeys",
    "AuditLog",
    "CounterSession",
    "Decision",
    "Event",
    "EventError",
    "Evidence",
    "Failure",
    "Guard",
    "GuardrailError",
    "HistoryStore",
    "Hit",
    "IllegalStep",
    "InMemoryHistoryStore",
    "Money",
    "Notice",
    "Obligation",
    "Outcome",
    "Pack",
    "PackError",
    "SQLiteHistoryStore",
    "SessionRecord",
    "StoreError",
    "WatchlistRegistry",
    "event_json_schema",
    "load_pack",
    "parse_event",
    "verify_log",
]  # the same names as _EXPORTS (a test checks)

if TYPE_CHECKING:
    from guardrail.audit import AuditKeys, AuditLog, verify_log
    from guardrail.context import (
        HistoryStore,
        InMemoryHistoryStore,
        SQLiteHistoryStore,
        WatchlistRegistry,
    )
    from guardrail.counter import CounterSession, IllegalStep, Notice, Outcome, SessionRecord
    from guardrail.errors import GuardrailError, StoreError
    from guardrail.guard import EventError, Guard, parse_event
    from guardrail.lang import Pack, PackError, load_pack
    from guardrail.model import (
        Action,
        Decision,
        Event,
        Evidence,
        Failure,
        Hit,
        Money,
        Obligation,
        event_json_schema,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'guardrail' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
