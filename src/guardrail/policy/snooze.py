"""Snoozes: one rule quietened for one entity (customer, account or payee) until a time.

A compliance officer who has cleared a customer can stop one rule from raising that
customer's action, with a reason, their id and an expiry. Never for a rule that reads a
watchlist or that reports (action ``report`` or a reporting obligation): those are duties,
not judgement calls. A snoozed hit still shows in the decision, its action does not count,
and its obligations stay.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from enum import Enum

from guardrail.errors import GuardrailError
from guardrail.lang.pack import CompiledRule, Pack
from guardrail.model.decision import Action, Obligation
from guardrail.model.event import Event

MAX_SNOOZE = dt.timedelta(days=366)
MAX_REASON = 1000
REPORTING_OBLIGATIONS = frozenset(
    {Obligation.LARGE_VALUE_REPORT, Obligation.SUSPICIOUS_TRANSACTION_REPORT}
)


class SnoozeRefused(GuardrailError, ValueError):
    """A snooze that may not be created; the message says why."""


class EntityKind(str, Enum):
    CUSTOMER = "customer"  # event.customer.id
    ACCOUNT = "account"  # event.account.id
    PAYEE = "payee"  # event.counterparty.account


@dataclass(frozen=True)
class Snooze:
    """One rule snoozed for one entity. ``entity_hash`` identifies the entity without storing
    the account number or customer id itself; ``entity_hint`` is its last four characters."""

    rule_id: str
    entity: EntityKind
    entity_hash: str
    entity_hint: str
    until: dt.datetime
    reason: str
    approver: str
    created_at: dt.datetime

    def describe(self) -> str:
        return (
            f"rule {self.rule_id} snoozed for this {self.entity.value} until "
            f"{self.until.isoformat()} by {self.approver}: {self.reason}"
        )


def entity_hash(kind: EntityKind, value: str) -> str:
    """A stable identifier of an entity value (stripped, case-folded)."""
    return hashlib.sha256(f"{kind.value}:{value.strip().casefold()}".encode()).hexdigest()


def event_entities(event: Event) -> dict[EntityKind, str]:
    """The hashes of the entities of an event that snoozes can name."""
    values = {
        EntityKind.CUSTOMER: event.customer.id,
        EntityKind.ACCOUNT: None if event.account is None else event.account.id,
        EntityKind.PAYEE: None if event.counterparty is None else event.counterparty.account,
    }
    return {kind: entity_hash(kind, value) for kind, value in values.items() if value}


def refusal(rule: CompiledRule) -> str | None:
    """Why this rule version may never be snoozed, or None."""
    if rule.watchlists:
        return f"rule {rule.rule_id!r} reads a watchlist ({', '.join(sorted(rule.watchlists))})"
    if rule.spec.action is Action.REPORT:
        return f"rule {rule.rule_id!r} reports to the police (action 'report')"
    reporting = REPORTING_OBLIGATIONS.intersection(rule.spec.obligations)
    if reporting:
        names = ", ".join(sorted(o.value for o in reporting))
        return f"rule {rule.rule_id!r} carries a reporting obligation ({names})"
    return None


def new_snooze(
    pack: Pack,
    rule_id: str,
    entity: EntityKind | str,
    value: str,
    *,
    until: dt.datetime,
    reason: str,
    approver: str,
    now: dt.datetime,
) -> Snooze:
    """A checked snooze; raises ``SnoozeRefused`` naming the problem."""
    versions = pack.versions.get(rule_id)
    if not versions:
        raise SnoozeRefused(f"the pack {pack.meta.name!r} has no rule {rule_id!r}")
    for rule in versions:
        why = refusal(rule)
        if why is not None:
            raise SnoozeRefused(f"cannot snooze: {why}")
    try:
        kind = EntityKind(entity)
    except ValueError:
        choices = ", ".join(k.value for k in EntityKind)
        raise SnoozeRefused(f"entity must be one of {choices}, got {entity!r}") from None
    if not value.strip():
        raise SnoozeRefused(f"the {kind.value} to snooze for is empty")
    if not reason.strip() or len(reason) > MAX_REASON:
        raise SnoozeRefused(f"a snooze needs a reason of 1 to {MAX_REASON} characters")
    if not approver.strip():
        raise SnoozeRefused("a snooze needs the approver's id")
    for name, moment in (("until", until), ("now", now)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise SnoozeRefused(f"{name} must carry a time zone offset")
    if until <= now:
        raise SnoozeRefused(f"until ({until.isoformat()}) is not in the future")
    if until - now > MAX_SNOOZE:
        raise SnoozeRefused(f"a snooze lasts at most {MAX_SNOOZE.days} days")
    cleaned = value.strip()
    return Snooze(
        rule_id=rule_id,
        entity=kind,
        entity_hash=entity_hash(kind, cleaned),
        entity_hint="…" + cleaned[-4:],
        until=until,
        reason=reason.strip(),
        approver=approver.strip(),
        created_at=now,
    )
