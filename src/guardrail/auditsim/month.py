"""Write a simulated bank's audit log from the labelled stream.

Every counter request is screened with the pack. Below ``inquire`` the transaction simply goes
through: its decision and an ``executed`` outcome are logged. At ``inquire`` or above a real
:class:`~guardrail.counter.CounterSession` is worked as the simulated customer would: the
questions answered from the event's answers, the notice delivered, the supervisor called
when the gates need one; fraud is dissuaded, stopped or reported more often the higher the
action, legitimate customers mostly go ahead. Requests at or above the case policy's action
open a case; the ledger then lives on over the following days (assignment, notes, verdicts
from the police or the customer, money returned, the close); some legitimate customers who
were questioned or held complain (friction complaints), some customers complain about
ordinary service, and some missed frauds come back as victims' reports. Entries due after
the stream ends are not written, so some cases are still open, as in a real month.

Deterministic for a given seed (the clock is the simulated time).
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from guardrail.audit.keys import AuditKeys
from guardrail.audit.records import (
    CaseEntryKind,
    CaseEntryRecord,
    CaseType,
    PartyRole,
    ProtectedParty,
    Resolution,
    Verdict,
)
from guardrail.audit.sqlite_store import SQLiteStore
from guardrail.auditsim.batching import BatchingAuditLog
from guardrail.cases.evidence import EvidenceStore, default_evidence_root
from guardrail.cases.ledger import CaseLedger, CasePolicy
from guardrail.counter import CounterSession, IllegalStep, Outcome
from guardrail.guard import Guard
from guardrail.model import Action, Decision, Event, Money
from guardrail.model.session import SessionStep, StepKind
from guardrail.model.stream import StreamLine

_ANSWER_FIELDS = {
    "purpose": "stated_purpose",
    "knows_payee": "knows_payee",
    "instructed": "instructed_by_other",
    "family_aware": "family_aware",
}


@dataclass
class SimulationSummary:
    """What was written, for the command's last line and for tests."""

    events: int = 0
    screened: int = 0
    background: int = 0
    sessions: int = 0
    executed: int = 0
    prevented: int = 0
    cases_opened: int = 0
    complaints: int = 0
    friction_complaints: int = 0
    verdicts: int = 0
    closed: int = 0
    records: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


@dataclass(order=True)
class _Due:
    at: dt.datetime
    order: int
    entry: CaseEntryRecord = field(compare=False)


class _Month:
    def __init__(
        self, guard: Guard, log: BatchingAuditLog, ledger: CaseLedger, policy: CasePolicy, seed: int
    ) -> None:
        self.guard = guard
        self.log = log
        self.ledger = ledger
        self.policy = policy
        self.rng = random.Random(seed * 7919 + 16)
        self.now = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        self.due: list[_Due] = []
        self._order = 0
        self.summary = SimulationSummary()

    def clock(self) -> dt.datetime:
        return self.now

    # -- the ledger's future ------------------------------------------------------------------
    def later(
        self, at: dt.datetime, case_id: str, kind: CaseEntryKind, by: str, **f: object
    ) -> None:
        self._order += 1
        entry = self.ledger.build_entry(case_id, kind, at, by, **f)
        heapq.heappush(self.due, _Due(at, self._order, entry))

    def write_due(self, until: dt.datetime) -> None:
        while self.due and self.due[0].at <= until:
            item = heapq.heappop(self.due)
            self.now = item.at
            self.log.append([item.entry])
            kind = item.entry.entry
            if kind is CaseEntryKind.VERDICT:
                self.summary.verdicts += 1
            elif kind is CaseEntryKind.CLOSED:
                self.summary.closed += 1

    def days(self, low: float, high: float) -> dt.timedelta:
        return dt.timedelta(hours=self.rng.uniform(low * 24, high * 24))

    # -- one request ------------------------------------------------------------------------
    def handle(self, item: StreamLine) -> None:
        event = item.event
        self.summary.events += 1
        self.write_due(event.timestamp)
        self.now = event.timestamp
        if item.executed_history_hint == "always":  # another channel: it happened anyway
            self.guard.record_executed(event)
            self.summary.background += 1
            return
        self.summary.screened += 1
        decision = self.guard.screen(event)
        if decision.action < Action.INQUIRE:
            self.log.append(
                [
                    self.log.decision_record(event, decision),
                    self.log.session_step_record(
                        SessionStep(
                            case_id=event.event_id,
                            kind=StepKind.OUTCOME_RECORDED,
                            at=event.timestamp,
                            teller_id=event.teller_id,
                            outcome=Outcome.EXECUTED,
                            amount=event.amount,
                        )
                    ),
                ]
            )
            self.guard.record_executed(event)
            self._count(Outcome.EXECUTED)
            return
        session = CounterSession.open(self.guard, event, clock=self.tick, audit=self.log)
        self.summary.sessions += 1
        outcome = self.work(session, item)
        self._count(outcome)
        highest = max([d.action for d in session.decisions] + [session.action])
        if self.policy.opens_case(highest):
            self.open_case(item, session.decisions[0], outcome)
        elif item.label == "legitimate" and self.rng.random() < 0.04:
            self.friction_complaint(item, outcome)
        elif item.label == "fraud" and outcome is Outcome.EXECUTED and self.rng.random() < 0.3:
            self.victim_report(item)

    def tick(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=self.rng.randint(20, 90))
        return self.now

    def _count(self, outcome: Outcome) -> None:
        key = outcome.value
        self.summary.by_outcome[key] = self.summary.by_outcome.get(key, 0) + 1
        if outcome is Outcome.EXECUTED:
            self.summary.executed += 1
        else:
            self.summary.prevented += 1

    def work(self, session: CounterSession, item: StreamLine) -> Outcome:
        """The counter session as the simulated customer and staff would run it."""
        fraud, rng = item.label == "fraud", self.rng
        supervisor = session.event.branch.id + "-S1"
        try:
            asked = session.ask_questions() if session.questions_to_ask() else ()
            answers = self.answers(item, asked)
            if answers:
                session.record_answers(answers)
            session.deliver_notice()
            session.acknowledge_notice()
            action = session.action
            if fraud:
                stopped = {
                    Action.INQUIRE: 0.45,
                    Action.REVIEW: 0.6,
                    Action.HOLD: 0.8,
                    Action.INTERCEPT: 0.95,
                    Action.REPORT: 0.97,
                }.get(action, 0.3)
                go_ahead = rng.random() >= stopped
            else:
                go_ahead = rng.random() >= 0.04  # a few legitimate customers give up
            if not go_ahead:
                outcome = self.stop(session, fraud)
            else:
                outcome = self.execute(session, supervisor)
        except IllegalStep:
            outcome = Outcome.WITHDRAWN_AFTER_DISSUASION
            if session.outcome is None:
                session.record_outcome(outcome)
        if session.outcome is None:
            session.record_outcome(outcome)
        session.close()
        return outcome

    def answers(self, item: StreamLine, asked: Iterable[str]) -> dict[str, object]:
        given = item.event.answers
        fraud = item.label == "fraud"
        values: dict[str, object] = {}
        for question in asked:
            name = _ANSWER_FIELDS.get(question)
            if name is None:
                continue
            value = getattr(given, name, None)
            if value is None:
                if name == "stated_purpose":
                    purpose = item.event.purpose
                    value = None if purpose is None else purpose.code.value
                elif name in ("knows_payee", "family_aware"):
                    value = not fraud or self.rng.random() < 0.5
                else:
                    value = fraud and self.rng.random() < 0.3
            elif hasattr(value, "value"):
                value = value.value
            if value is not None:
                values[question] = value
        return values

    def stop(self, session: CounterSession, fraud: bool) -> Outcome:
        action, rng = session.action, self.rng
        if fraud and action >= Action.INTERCEPT:
            outcome = Outcome.POLICE_NOTIFIED if rng.random() < 0.4 else Outcome.INTERCEPTED
        elif fraud and action >= Action.HOLD and rng.random() < 0.3:
            outcome = Outcome.PROTECTIVE_STOP_PAYMENT
        else:
            outcome = Outcome.WITHDRAWN_AFTER_DISSUASION
        session.record_outcome(outcome)
        return outcome

    def execute(self, session: CounterSession, supervisor: str) -> Outcome:
        action = session.action
        if action >= Action.INTERCEPT:
            session.escalate("customer insists; the teller asks the supervisor")
            session.supervisor_override(
                supervisor, Action.REVIEW, "supervisor verified the purpose with the customer"
            )
            session.sign_risk_acknowledgement()
        elif action >= Action.REVIEW:
            session.escalate("needs the supervisor's approval")
            session.supervisor_approve(supervisor, "purpose verified")
            session.sign_risk_acknowledgement()
        session.record_outcome(Outcome.EXECUTED)
        self.guard.record_executed(session.event)
        return Outcome.EXECUTED

    # -- cases ---------------------------------------------------------------------------------
    def open_case(self, item: StreamLine, decision: Decision, outcome: Outcome) -> None:
        event, rng = item.event, self.rng
        record = self.log.decision_record(event, decision)
        at = self.now + dt.timedelta(minutes=rng.randint(1, 30))
        self.summary.cases_opened += 1
        opened = self.ledger.opening_entry(
            record, at=at, by=f"{event.branch.id}-S1", typology=item.typology
        )
        self.later(at, record.case_id, CaseEntryKind.OPENED, opened.by, **_fields(opened))
        case, officer = record.case_id, f"CO{rng.randint(1, 9):02d}"
        fraud = item.label == "fraud"
        prevented = outcome is not Outcome.EXECUTED
        self.later(at + self.days(0.05, 1), case, CaseEntryKind.ASSIGNED, "HQ", assignee=officer)
        self.later(
            at + self.days(0.1, 2),
            case,
            CaseEntryKind.NOTE,
            officer,
            text="called the customer's family; customer's account reviewed",
        )
        verdict_at = at + self.days(2, 15)
        if rng.random() < (0.75 if fraud else 0.6):
            verdict = Verdict.FRAUD_CONFIRMED if fraud else Verdict.NOT_FRAUD
            who = "PSB-96110" if fraud else officer
            self.later(verdict_at, case, CaseEntryKind.VERDICT, who, verdict=verdict)
        returned = None
        if fraud and not prevented and rng.random() < 0.4:
            share = Decimal(rng.choice(("0.3", "0.5", "0.8", "1")))
            returned = Money(value=(event.amount.value * share).quantize(Decimal("0.01")))
        police = outcome is Outcome.POLICE_NOTIFIED or (fraud and rng.random() < 0.5)
        if rng.random() < 0.93:
            resolution = (
                Resolution.FRAUD_PREVENTED
                if fraud and prevented
                else Resolution.FUNDS_RETURNED
                if returned is not None
                else Resolution.FRAUD_NOT_PREVENTED
                if fraud
                else Resolution.NO_FRAUD
            )
            self.later(
                verdict_at + self.days(0.5, 10),
                case,
                CaseEntryKind.CLOSED,
                officer,
                resolution=resolution,
                amount_prevented=event.amount if prevented else None,
                amount_returned=returned,
                reported_to_police=police,
            )

    def friction_complaint(self, item: StreamLine, outcome: Outcome) -> None:
        event, rng = item.event, self.rng
        at = self.now + self.days(0.2, 3)
        case = f"FRC-{event.event_id}"
        self.summary.friction_complaints += 1
        customer = self.log.decision_record(event, self.guard.screen(event)).event.customer
        self.later(
            at,
            case,
            CaseEntryKind.OPENED,
            "complaints-desk",
            case_type=CaseType.FRICTION_COMPLAINT,
            text="customer complains of being questioned at length at the counter"
            + (" and gave up the transaction" if outcome is not Outcome.EXECUTED else ""),
            source_case_id=event.event_id,
            branch_id=event.branch.id,
            parties=(
                ProtectedParty(
                    role=PartyRole.COMPLAINANT,
                    name=customer.name,
                    phone=customer.phone,
                    customer_id=customer.id,
                ),
            ),
        )
        self.later(
            at + self.days(0.5, 4),
            case,
            CaseEntryKind.VERDICT,
            "complaints-desk",
            verdict=Verdict.NOT_FRAUD,
        )
        if rng.random() < 0.97:
            self.later(
                at + self.days(1, 8),
                case,
                CaseEntryKind.CLOSED,
                "complaints-desk",
                resolution=Resolution.COMPLAINT_UPHELD
                if rng.random() < 0.5
                else Resolution.COMPLAINT_REJECTED,
                text="apologised; explained the anti-fraud procedure",
            )

    def service_complaint(self, event: Event) -> None:
        rng = self.rng
        at = self.now + self.days(0, 1)
        case = f"CMP-{event.event_id}"
        self.summary.complaints += 1
        self.later(
            at,
            case,
            CaseEntryKind.OPENED,
            "complaints-desk",
            case_type=CaseType.COMPLAINT,
            text=rng.choice(("waiting time too long", "matured product rolled over", "card fee")),
            branch_id=event.branch.id,
        )
        if rng.random() < 0.99:
            self.later(
                at + self.days(0.5, 9),
                case,
                CaseEntryKind.CLOSED,
                "complaints-desk",
                resolution=Resolution.COMPLAINT_UPHELD,
            )

    def victim_report(self, item: StreamLine) -> None:
        event, rng = item.event, self.rng
        at = self.now + self.days(1, 10)
        case = f"CASE-{event.event_id}"
        self.summary.cases_opened += 1
        self.later(
            at,
            case,
            CaseEntryKind.OPENED,
            "PSB-96110",
            case_type=CaseType.MANUAL,
            text="victim reported to the police; funds traced to this branch",
            source_case_id=event.event_id,
            branch_id=event.branch.id,
            typology=item.typology,
            amount_at_risk=event.amount,
        )
        self.later(
            at + self.days(1, 7),
            case,
            CaseEntryKind.VERDICT,
            "PSB-96110",
            verdict=Verdict.FRAUD_CONFIRMED,
        )
        if rng.random() < 0.5:
            share = Decimal(rng.choice(("0.2", "0.5", "1")))
            self.later(
                at + self.days(3, 20),
                case,
                CaseEntryKind.CLOSED,
                "CO01",
                resolution=Resolution.FUNDS_RETURNED,
                amount_returned=Money(value=(event.amount.value * share).quantize(Decimal("0.01"))),
                reported_to_police=True,
            )


def _fields(entry: CaseEntryRecord) -> dict[str, object]:
    data = {k: getattr(entry, k) for k in type(entry).model_fields}
    for key in ("type", "case_id", "entry", "at", "by"):
        data.pop(key)
    return data


def simulate_audit_log(
    guard: Guard,
    records: Iterable[StreamLine],
    log_path: str | Path,
    keys: AuditKeys,
    *,
    seed: int,
    policy: CasePolicy | None = None,
    service_complaint_rate: float = 0.004,
    progress: Callable[[int], None] | None = None,
) -> SimulationSummary:
    """Screen ``records`` with ``guard`` and write the bank's audit log to ``log_path``."""
    path = Path(log_path)
    if path.exists():
        raise FileExistsError(f"{path}: already exists; the simulation writes a new log")
    store = SQLiteStore(path)
    clock: list[Callable[[], dt.datetime]] = [lambda: dt.datetime.now(dt.UTC)]
    log = BatchingAuditLog(store, keys, clock=lambda: clock[0]())
    ledger = CaseLedger(log, EvidenceStore(default_evidence_root(path)))
    month = _Month(guard, log, ledger, policy or CasePolicy(), seed)
    clock[0] = month.clock  # the log's clock is the simulated time from here on
    last: dt.datetime | None = None
    try:
        for count, item in enumerate(records, 1):
            month.handle(item)
            last = item.event.timestamp
            if (
                item.executed_history_hint == "if_allowed"
                and month.rng.random() < service_complaint_rate
            ):
                month.service_complaint(item.event)
            if progress is not None and count % 10_000 == 0:
                progress(count)
        if last is not None:  # what falls due by the end of the stream's last day
            month.write_due(last.replace(hour=23, minute=59, second=59))
    finally:
        log.close()
    summary = month.summary
    summary.records = _count_records(path)
    return summary


def _count_records(path: Path) -> int:
    store = SQLiteStore(path, create=False)
    try:
        head = store.head()
        return 0 if head is None else head.seq
    finally:
        store.close()
