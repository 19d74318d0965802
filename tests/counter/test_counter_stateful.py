"""Stateful property test: for any sequence of session operations, each is either applied with
the session in a valid state or refused with a clear error that changes nothing; no applied
step is ever lost; saving and resuming at any point changes nothing. Every attempt reaches the
audit log: an applied step as its own records, a refusal as one ``step_refused``."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from counter_factory import (
    FULL,
    INVOLVED_ACCOUNT,
    STARTER,
    Clock,
    case_001,
    case_003,
    elderly_cash_on_phone,
    guard,
    involved_payee,
)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from guardrail.audit import AuditKeys, AuditLog, SessionStepRecord, StepKind
from guardrail.counter import CounterSession, IllegalStep, Outcome, State, Step
from guardrail.counter.session import OBSERVATION_NAMES
from guardrail.model import Action, PurposeCode, Relationship

EVENTS = [case_003, case_001, involved_payee, elderly_cash_on_phone]
QUESTIONS = [
    "purpose",
    "purpose_detail",
    "knows_payee",
    "relationship",
    "instructed",
    "family_aware",
    "promised_return",
    "bogus",
]
ANSWERS = st.one_of(
    st.booleans(),
    st.integers(min_value=-5, max_value=200),
    st.sampled_from([p.value for p in PurposeCode] + [r.value for r in Relationship]),
    st.sampled_from(["种树投资，年化收益30%", "给孙子交学费", "", "安全账户"]),
)
PEOPLE = st.sampled_from(["S0001", "S0002", "T0001", "not an id"])
REASONS = st.sampled_from(["", "客户坚持", "已核实"])
ACTIONS = st.sampled_from([*Action, "sideways"])


class SessionMachine(RuleBasedStateMachine):
    session: CounterSession

    @initialize(make=st.sampled_from(EVENTS), pack=st.sampled_from([STARTER, FULL]))
    def open_session(self, make: Callable[[], Any], pack: Any) -> None:
        self.guard = guard(pack)
        self.clock = Clock()
        self.tmp = Path(tempfile.mkdtemp(prefix="counter-stateful-"))
        self.audit = AuditLog.open(
            self.tmp / "audit.db", keys=AuditKeys.from_secret(b"counter-tests-secret-0123456789")
        )
        self.session = CounterSession.open(self.guard, make(), clock=self.clock, audit=self.audit)
        self.applied = 1
        self.refused = 0

    def teardown(self) -> None:
        if hasattr(self, "audit"):
            try:
                assert self.audit.verify().ok
            finally:
                self.audit.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def audit_seq(self) -> int:
        head = self.audit.head()
        assert head is not None
        return head.seq

    def attempt(self, call: Callable[[CounterSession], object]) -> None:
        before = self.session.to_json()
        steps = list(self.session.steps)
        state = self.session.state
        seq = self.audit_seq()
        try:
            call(self.session)
        except IllegalStep as error:
            self.refused += 1
            assert self.session.to_json() == before, "a refused step changed the session"
            assert error.state == state.value
            assert error.step in {s.value for s in Step}
            assert error.reason and error.step in str(error)
            # the attempt is in the audit log, once, under its own kind
            assert self.audit_seq() == seq + 1 == error.audit_seq
            refusal = next(iter(self.audit.records(seq + 1))).payload
            assert isinstance(refusal, SessionStepRecord)
            assert refusal.step is StepKind.STEP_REFUSED and refusal.refused_step == error.step
            return
        self.applied += 1
        new_seqs = self.session.steps[-1].audit_seqs
        assert new_seqs == tuple(range(seq + 1, self.audit_seq() + 1)) and new_seqs
        assert self.session.steps[: len(steps)] == steps, "an applied step rewrote history"
        assert len(self.session.steps) == len(steps) + 1
        entry = self.session.steps[-1]
        assert entry.state_before is state and entry.state_after is self.session.state

    @rule(ids=st.none() | st.lists(st.sampled_from(QUESTIONS), max_size=3))
    def ask(self, ids: list[str] | None) -> None:
        self.attempt(lambda s: s.ask_questions(ids))

    @rule(question=st.sampled_from(QUESTIONS), value=ANSWERS)
    def answer(self, question: str, value: object) -> None:
        self.attempt(lambda s: s.record_answer(question, value))

    @rule(
        names=st.lists(st.sampled_from([*OBSERVATION_NAMES[:6], "bogus"]), min_size=1, max_size=2)
    )
    def observe(self, names: list[str]) -> None:
        self.attempt(lambda s: s.record_observations(names))

    @rule()
    def deliver(self) -> None:
        self.attempt(lambda s: s.deliver_notice())

    @rule()
    def acknowledge(self) -> None:
        self.attempt(lambda s: s.acknowledge_notice())

    @rule()
    def sign_risk(self) -> None:
        self.attempt(lambda s: s.sign_risk_acknowledgement())

    @rule(to=ACTIONS, reason=REASONS)
    def teller_raise(self, to: Any, reason: str) -> None:
        self.attempt(lambda s: s.teller_raise(to, reason))

    @rule(reason=REASONS)
    def escalate(self, reason: str) -> None:
        self.attempt(lambda s: s.escalate(reason))

    @rule(who=PEOPLE, reason=REASONS)
    def approve(self, who: str, reason: str) -> None:
        self.attempt(lambda s: s.supervisor_approve(who, reason))

    @rule(who=PEOPLE, reason=REASONS)
    def reject(self, who: str, reason: str) -> None:
        self.attempt(lambda s: s.supervisor_reject(who, reason))

    @rule(who=PEOPLE, to=ACTIONS, reason=REASONS)
    def override(self, who: str, to: Any, reason: str) -> None:
        self.attempt(lambda s: s.supervisor_override(who, to, reason))

    @rule(outcome=st.sampled_from([*Outcome, "lost"]))
    def outcome(self, outcome: Any) -> None:
        self.attempt(lambda s: s.record_outcome(outcome))

    @rule()
    def close(self) -> None:
        self.attempt(lambda s: s.close())

    @rule()
    def restart(self) -> None:
        """The teller application restarts: the session is resumed from its JSON."""
        text = self.session.to_json()
        self.session = CounterSession.from_json(
            text, self.guard, clock=self.clock, audit=self.audit
        )
        assert self.session.to_json() == text

    @invariant()
    def resumes_exactly(self) -> None:
        text = self.session.to_json()
        resumed = CounterSession.from_json(text, self.guard)
        assert resumed.to_json() == text
        assert resumed.action is self.session.action
        assert resumed.state is self.session.state

    @invariant()
    def no_step_lost(self) -> None:
        session = self.session
        assert len(session.steps) == self.applied
        assert [e.seq for e in session.steps] == list(range(1, self.applied + 1))
        assert session.steps[0].step is Step.OPEN
        assert session.steps[-1].state_after is session.state
        assert session.steps[-1].action_after is session.action
        assert (session.state is State.CLOSED) == (session.steps[-1].step is Step.CLOSE)
        json.loads(session.to_json())

    @invariant()
    def hard_rules_hold_until_a_supervisor_overrides(self) -> None:
        session = self.session
        overridden = any(e.step is Step.SUPERVISOR_OVERRIDE for e in session.steps)
        involved = (
            session.event.counterparty is not None
            and session.event.counterparty.account == INVOLVED_ACCOUNT
        )
        if involved and not overridden:
            assert session.action is Action.REPORT

    @invariant()
    def executed_only_through_the_gates(self) -> None:
        for entry in self.session.steps:
            if entry.outcome is Outcome.EXECUTED and entry.step is Step.RECORD_OUTCOME:
                assert entry.action_before < Action.INTERCEPT
                assert entry.state_before is not State.ESCALATED
        executed = self.session.outcome is Outcome.EXECUTED
        assert len(self.guard.history) == (1 if executed else 0)


SessionMachine.TestCase.settings = settings(
    max_examples=75,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCounterSessionStateful = SessionMachine.TestCase
