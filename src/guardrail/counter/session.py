"""``CounterSession``: one counter conversation, from the first screening to how it ended.

Every method is one step: it checks the step against the state table (``counter.states``) and
the gates (``counter.gates``), then applies it whole or refuses it with ``IllegalStep`` and
leaves the session exactly as it was (a refused attempt is still written to the audit log, as
``step_refused``). Applied steps are appended to ``steps`` and never changed; everything else
(questions asked, answers, notice, overrides, the effective action) is read from the steps, so
a session that serialises to JSON resumes exactly.

One job here: the steps. What a step records (``counter.entries``), the effective-action
policy (``counter.policy``), the texts handed over (``counter.notices``), writing steps to the
journal (``counter.journal``), the closed record (``counter.closing``) and checking typed input
(``counter.inputs``) live in their own modules.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, Literal, NoReturn, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

from guardrail.counter import gates, inputs
from guardrail.counter.closing import closed_record
from guardrail.counter.entries import Notice, Role, StepEntry
from guardrail.counter.errors import IllegalStep
from guardrail.counter.journal import write_refusal, write_step
from guardrail.counter.notices import notice_for, risk_acknowledgement_for
from guardrail.counter.outcome import Outcome
from guardrail.counter.policy import effective_action
from guardrail.counter.questions import (
    AnswerError,
    AnswerValue,
    apply_answers,
    lexicon_matches,
    question_spec,
    questions_to_ask,
    validate_answer,
)
from guardrail.counter.record import SessionRecord
from guardrail.counter.states import State, Step, next_state, refusal_reason
from guardrail.guard import Guard
from guardrail.lang.spec import AnswerType
from guardrail.model.decision import Action, Decision, PackRef
from guardrail.model.event import Event, Observations
from guardrail.model.session import StepJournal

OBSERVATION_NAMES = tuple(Observations.model_fields)

Clock = Callable[[], dt.datetime]
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _attempt(
    step: Step, *, by_supervisor: bool = False
) -> Callable[
    [Callable[Concatenate[CounterSession, _P], _R]],
    Callable[Concatenate[CounterSession, _P], _R],
]:
    """Mark a method as the attempt of ``step``: a refusal (``IllegalStep``) is written to the
    audit log as ``step_refused`` and raised again; the session is not touched. With
    ``by_supervisor`` the first argument (``supervisor_id``) is kept as the one who tried."""

    def wrap(
        method: Callable[Concatenate[CounterSession, _P], _R],
    ) -> Callable[Concatenate[CounterSession, _P], _R]:
        @functools.wraps(method)
        def attempt(self: CounterSession, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return method(self, *args, **kwargs)
            except IllegalStep as refusal:
                supervisor: object = None
                if by_supervisor:
                    supervisor = args[0] if args else kwargs.get("supervisor_id")
                self._audit_refusal(
                    step, refusal, supervisor if isinstance(supervisor, str) else None
                )
                raise

        return attempt

    return wrap


@dataclass(frozen=True)
class _Runtime:
    """What a session works with but does not serialise."""

    guard: Guard
    clock: Clock
    audit: StepJournal | None


class CounterSession(BaseModel):
    """The whole state of one counter session. Build with :meth:`open`; resume with
    :meth:`from_json`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    format: Literal[1] = 1
    session_id: str
    teller_id: str
    pack: PackRef
    state: State
    event: Event  # the event as last screened: answers and observations included
    decisions: list[Decision]
    steps: list[StepEntry]

    # Held in one plain object: pydantic would bind a bare function attribute as a method.
    _runtime: _Runtime = PrivateAttr()

    # -- building and resuming ---------------------------------------------------------------
    @classmethod
    def open(
        cls,
        guard: Guard,
        event: Event,
        *,
        teller_id: str | None = None,
        session_id: str | None = None,
        clock: Clock = _utcnow,
        audit: StepJournal | None = None,
    ) -> CounterSession:
        """Screen the request and open its session (the first step, ``open``)."""
        teller = inputs.identifier(teller_id or event.teller_id, "teller_id", Step.OPEN)
        case = inputs.identifier(session_id or event.event_id, "session_id", Step.OPEN)
        decision = guard.screen(event)
        session = cls(
            session_id=case,
            teller_id=teller,
            pack=guard.pack.ref,
            state=State.OPENED,
            event=event,
            decisions=[],
            steps=[],
        )
        session._attach(guard, clock, audit)
        session._commit(Step.OPEN, State.OPENED, decision=decision, event=event)
        return session

    def to_json(self) -> str:
        """The whole session as JSON; :meth:`from_json` resumes it exactly."""
        return self.model_dump_json()

    @classmethod
    def from_json(
        cls,
        text: str | bytes,
        guard: Guard,
        *,
        clock: Clock = _utcnow,
        audit: StepJournal | None = None,
    ) -> CounterSession:
        """Resume a session saved with :meth:`to_json`. Nothing is re-screened. The guard must
        load the same pack (same content hash): decisions would otherwise silently change."""
        session = cls.model_validate_json(text)
        if session.pack.content_hash != guard.pack.ref.content_hash:
            raise ValueError(
                f"session {session.session_id} was screened with pack {session.pack.name} "
                f"{session.pack.version} ({session.pack.content_hash[:12]}); the guard has "
                f"{guard.pack.ref.name} {guard.pack.ref.version} "
                f"({guard.pack.ref.content_hash[:12]}): resume with the same pack"
            )
        session._attach(guard, clock, audit)
        return session

    def _attach(self, guard: Guard, clock: Clock, audit: StepJournal | None) -> None:
        self._runtime = _Runtime(guard, clock, audit)

    @property
    def guard(self) -> Guard:
        return self._runtime.guard

    @property
    def audit(self) -> StepJournal | None:
        return self._runtime.audit

    # -- reading the session -----------------------------------------------------------------
    @property
    def decision(self) -> Decision:
        """The latest screening."""
        return self.decisions[-1]

    @property
    def action(self) -> Action:
        """The effective action now (see the module docstring)."""
        return effective_action(self.steps, self.decisions)

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def _steps(self, *kinds: Step) -> list[StepEntry]:
        return [entry for entry in self.steps if entry.step in kinds]

    @property
    def questions_asked(self) -> tuple[str, ...]:
        return tuple(q for e in self._steps(Step.ASK_QUESTIONS) for q in e.question_ids)

    @property
    def answers(self) -> dict[str, AnswerValue]:
        """Question id -> answer, as recorded."""
        return {q: v for e in self._steps(Step.RECORD_ANSWERS) for q, v in e.answers.items()}

    @property
    def unanswered(self) -> tuple[str, ...]:
        answered = self.answers
        return tuple(q for q in self.questions_asked if q not in answered)

    def questions_to_ask(self) -> tuple[str, ...]:
        """Questions the rules and the action want asked that have not been asked yet."""
        return questions_to_ask(
            self.guard.pack, self.decisions, self.action, already=self.questions_asked
        )

    @property
    def notice(self) -> Notice | None:
        delivered = self._steps(Step.DELIVER_NOTICE)
        return delivered[0].notice if delivered else None

    @property
    def notice_acknowledged(self) -> bool:
        return bool(self._steps(Step.ACKNOWLEDGE_NOTICE))

    @property
    def risk_acknowledged(self) -> bool:
        return bool(self._steps(Step.SIGN_RISK_ACKNOWLEDGEMENT))

    @property
    def outcome(self) -> Outcome | None:
        recorded = self._steps(Step.RECORD_OUTCOME)
        return recorded[-1].outcome if recorded else None

    @property
    def supervisor_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.actor_id for e in self.steps if e.actor_role == "supervisor"))

    @property
    def approved_up_to(self) -> Action | None:
        """The highest action the supervisor's latest word lets execute, if any."""
        words = self._steps(
            Step.SUPERVISOR_APPROVE, Step.SUPERVISOR_OVERRIDE, Step.SUPERVISOR_REJECT
        )
        if not words or words[-1].step is Step.SUPERVISOR_REJECT:
            return None
        last = words[-1]
        return last.override_to if last.step is Step.SUPERVISOR_OVERRIDE else last.action_after

    def gate_view(self) -> gates.GateView:
        notice = self.notice
        return gates.GateView(
            action=self.action,
            waiting_for_supervisor=self.state is State.ESCALATED,
            unanswered=self.unanswered,
            notice_delivered=notice is not None,
            notice_acknowledged=self.notice_acknowledged,
            notice_requires_signature=notice.requires_signature if notice else True,
            risk_acknowledged=self.risk_acknowledged,
            approved_up_to=self.approved_up_to,
        )

    def can_execute(self) -> str | None:
        """None when executing is allowed now, else why not."""
        if next_state(self.state, Step.RECORD_OUTCOME) is None:
            return refusal_reason(self.state, Step.RECORD_OUTCOME)
        return gates.execute_refusal(self.gate_view())

    def notice_text(self) -> Notice:
        """The notice this session's pack hands over (the questionnaire's, else a default that
        carries the hit rules' own notices)."""
        return notice_for(self.guard.pack, self.decisions)

    def risk_acknowledgement_text(self) -> Notice:
        """What the customer signs on insisting (the questionnaire's, else a default)."""
        return risk_acknowledgement_for(self.guard.pack)

    # -- the steps -----------------------------------------------------------------------------
    @_attempt(Step.ASK_QUESTIONS)
    def ask_questions(self, question_ids: Sequence[str] | None = None) -> tuple[str, ...]:
        """Mark questions as asked: by default those the rules and the action want; a teller
        may also ask any other question of the questionnaire. Returns the ids asked."""
        step = Step.ASK_QUESTIONS
        target = self._allowed(step)
        questionnaire = self.guard.pack.questionnaire
        if questionnaire is None:
            self._refuse(step, f"pack {self.pack.name} has no questionnaire")
        asked = set(self.questions_asked)
        if question_ids is None:
            ids = self.questions_to_ask()
            if not ids:
                self._refuse(step, "no question is waiting to be asked; name the questions to ask")
        else:
            ids = tuple(dict.fromkeys(question_ids))
            if not ids:
                self._refuse(step, "no question named")
            for question_id in ids:
                try:
                    question_spec(questionnaire, question_id)
                except AnswerError as error:
                    self._refuse(step, str(error))
                if question_id in asked:
                    self._refuse(step, f"question {question_id!r} was already asked")
        self._commit(step, target, question_ids=ids)
        return ids

    @_attempt(Step.RECORD_ANSWERS)
    def record_answers(self, values: Mapping[str, object]) -> Decision:
        """Record answers (question id -> answer) to questions asked and not yet answered, and
        re-screen the event with them. Returns the new decision."""
        step = Step.RECORD_ANSWERS
        target = self._allowed(step)
        questionnaire = self.guard.pack.questionnaire
        if questionnaire is None:
            self._refuse(step, f"pack {self.pack.name} has no questionnaire")
        if not values:
            self._refuse(step, "no answer given")
        asked, answered = set(self.questions_asked), self.answers
        clean: dict[str, AnswerValue] = {}
        lexicons: dict[str, tuple[str, ...]] = {}
        for question_id, raw in values.items():
            if question_id not in asked:
                self._refuse(step, f"question {question_id!r} was not asked; ask it first")
            if question_id in answered:
                self._refuse(
                    step,
                    f"question {question_id!r} is already answered ({answered[question_id]!r}); "
                    "answers are never overwritten",
                )
            try:
                value = validate_answer(questionnaire, question_id, raw)
            except AnswerError as error:
                self._refuse(step, str(error))
            clean[question_id] = value
            if questionnaire.answer_types.get(question_id) is AnswerType.FREE_TEXT:
                found = lexicon_matches(self.guard.pack, str(value))
                if found:
                    lexicons[question_id] = found
        answers = apply_answers(self.event.answers, questionnaire, clean)
        event = self.event.model_copy(update={"answers": answers})
        return self._commit(
            step,
            target,
            event=event,
            decision=self.guard.screen(event),
            question_ids=tuple(clean),
            answers=clean,
            lexicons=lexicons,
        )

    def record_answer(self, question_id: str, value: object) -> Decision:
        return self.record_answers({question_id: value})

    @_attempt(Step.RECORD_OBSERVATIONS)
    def record_observations(self, names: Iterable[str]) -> Decision:
        """Record what the teller saw (``on_phone``, ``nervous``...); observations are only
        ever added. Re-screens the event and returns the new decision."""
        step = Step.RECORD_OBSERVATIONS
        target = self._allowed(step)
        wanted = tuple(dict.fromkeys(names))
        unknown = [n for n in wanted if n not in OBSERVATION_NAMES]
        if unknown:
            self._refuse(
                step,
                f"unknown observation {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(OBSERVATION_NAMES)}",
            )
        current = self.event.observations
        new = tuple(n for n in wanted if not getattr(current, n))
        if not new:
            self._refuse(step, "nothing new observed (each observation is recorded once)")
        observations = current.model_copy(update=dict.fromkeys(new, True))
        event = self.event.model_copy(update={"observations": observations})
        return self._commit(
            step, target, event=event, decision=self.guard.screen(event), observations=new
        )

    @_attempt(Step.DELIVER_NOTICE)
    def deliver_notice(self) -> Notice:
        """Hand over the anti-fraud notice; returns its text."""
        step = Step.DELIVER_NOTICE
        target = self._allowed(step)
        if self.notice is not None:
            self._refuse(step, "the notice was already delivered")
        notice = self.notice_text()
        self._commit(step, target, notice=notice)
        return notice

    @_attempt(Step.ACKNOWLEDGE_NOTICE)
    def acknowledge_notice(self) -> None:
        """The customer signed (or acknowledged) the delivered notice."""
        step = Step.ACKNOWLEDGE_NOTICE
        target = self._allowed(step)
        if self.notice is None:
            self._refuse(step, "deliver the notice before it can be acknowledged")
        if self.notice_acknowledged:
            self._refuse(step, "the notice was already acknowledged")
        self._commit(step, target)

    @_attempt(Step.SIGN_RISK_ACKNOWLEDGEMENT)
    def sign_risk_acknowledgement(self) -> Notice:
        """The customer insists after dissuasion and signs the risk acknowledgement."""
        step = Step.SIGN_RISK_ACKNOWLEDGEMENT
        target = self._allowed(step)
        if self.notice is None:
            self._refuse(step, "deliver the anti-fraud notice before a risk acknowledgement")
        if self.risk_acknowledged:
            self._refuse(step, "the risk acknowledgement was already signed")
        notice = self.risk_acknowledgement_text()
        self._commit(step, target, notice=notice)
        return notice

    @_attempt(Step.TELLER_RAISE)
    def teller_raise(self, to: Action | str, reason: str) -> Action:
        """The teller raises the action (never lowers it). Returns the new effective action."""
        step = Step.TELLER_RAISE
        target = self._allowed(step)
        level = inputs.action(to, step, self.state)
        if level <= self.action:
            self._refuse(
                step,
                f"a teller can only raise the action: it is {self.action.value}, asked "
                f"{level.value}; lowering needs a supervisor's override with a reason",
            )
        self._commit(
            step, target, override_to=level, reason=inputs.reason(reason, step, self.state)
        )
        return self.action

    @_attempt(Step.ESCALATE)
    def escalate(self, reason: str = "") -> None:
        """Call the operations supervisor."""
        step = Step.ESCALATE
        target = self._allowed(step)
        self._commit(step, target, reason=inputs.text(reason, step, self.state))

    @_attempt(Step.SUPERVISOR_APPROVE, by_supervisor=True)
    def supervisor_approve(self, supervisor_id: str, reason: str = "") -> None:
        """The supervisor lets the request go ahead at its current action (up to ``hold``);
        the other gates (notice, risk acknowledgement) still apply."""
        step = Step.SUPERVISOR_APPROVE
        target = self._allowed(step)
        supervisor = self._supervisor(step, supervisor_id)
        if self.action >= Action.INTERCEPT:
            self._refuse(
                step,
                f"the action is {self.action.value}: it cannot be approved as it stands; "
                "override it with a reason, or reject",
            )
        self._commit(
            step,
            target,
            actor=("supervisor", supervisor),
            reason=inputs.text(reason, step, self.state),
        )

    @_attempt(Step.SUPERVISOR_REJECT, by_supervisor=True)
    def supervisor_reject(self, supervisor_id: str, reason: str) -> Action:
        """The supervisor refuses the request: the action rises to at least ``intercept``."""
        step = Step.SUPERVISOR_REJECT
        target = self._allowed(step)
        supervisor = self._supervisor(step, supervisor_id)
        self._commit(
            step,
            target,
            actor=("supervisor", supervisor),
            override_to=max(self.action, Action.INTERCEPT),
            reason=inputs.reason(reason, step, self.state),
        )
        return self.action

    @_attempt(Step.SUPERVISOR_OVERRIDE, by_supervisor=True)
    def supervisor_override(self, supervisor_id: str, to: Action | str, reason: str) -> Action:
        """The supervisor sets the action (lower or higher), with a reason. Kept in the steps
        beside every teller raise."""
        step = Step.SUPERVISOR_OVERRIDE
        target = self._allowed(step)
        supervisor = self._supervisor(step, supervisor_id)
        level = inputs.action(to, step, self.state)
        if level == self.action:
            self._refuse(step, f"the action is already {level.value}; approve instead")
        self._commit(
            step,
            target,
            actor=("supervisor", supervisor),
            override_to=level,
            reason=inputs.reason(reason, step, self.state),
        )
        return self.action

    @_attempt(Step.RECORD_OUTCOME)
    def record_outcome(
        self, outcome: Outcome | str, *, confirmed_fraud: bool | None = None, note: str = ""
    ) -> None:
        """Record how the case ended; the gates in ``counter.gates`` decide whether it may.
        ``executed`` tells the guard, so the transaction counts in later windows."""
        step = Step.RECORD_OUTCOME
        target = self._allowed(step)
        try:
            result = Outcome(outcome)
        except ValueError:
            known = ", ".join(o.value for o in Outcome)
            self._refuse(step, f"unknown outcome {outcome!r}; one of: {known}")
        refusal = gates.outcome_refusal(self.gate_view(), result)
        if refusal is not None:
            self._refuse(step, refusal)
        self._commit(
            step,
            target,
            outcome=result,
            confirmed_fraud=confirmed_fraud,
            reason=inputs.text(note, step, self.state),
        )
        if result is Outcome.EXECUTED:
            self.guard.record_executed(self.event)

    @_attempt(Step.CLOSE)
    def close(self) -> SessionRecord:
        """Close the session (only after its outcome) and return its audit record."""
        step = Step.CLOSE
        target = self._allowed(step)
        outcome = self.outcome
        fraud = self._steps(Step.RECORD_OUTCOME)[-1].confirmed_fraud
        self._commit(step, target, outcome=outcome, confirmed_fraud=fraud)
        return self.record()

    # -- the closed record --------------------------------------------------------------------
    def record(self) -> SessionRecord:
        """The audit record of a closed session."""
        return closed_record(self)

    # -- machinery -------------------------------------------------------------------------------
    def _allowed(self, step: Step) -> State:
        target = next_state(self.state, step)
        if target is None:
            self._refuse(step, refusal_reason(self.state, step))
        return target

    def _refuse(self, step: Step, reason: str) -> NoReturn:
        raise IllegalStep(step.value, self.state.value, reason)

    def _audit_refusal(self, step: Step, refusal: IllegalStep, supervisor_id: str | None) -> None:
        """Write a refused attempt to the audit log (if any). Never changes the session; a
        failed write is attached to the refusal, which is raised all the same."""
        audit = self.audit
        if audit is None or refusal.audit_seq is not None or refusal.audit_error is not None:
            return
        try:
            refusal.audit_seq = write_refusal(
                audit,
                case_id=self.session_id,
                step=step.value,
                state=refusal.state,
                reason=refusal.reason,
                event=self.event,
                at=self._now(),
                teller_id=self.teller_id,
                supervisor_id=supervisor_id,
            )
        except Exception as error:  # the refusal stands; the teller must still see it
            refusal.audit_error = error
            refusal.add_note(
                f"the refused attempt could not be written to the audit log: {error!r}"
            )

    def _supervisor(self, step: Step, supervisor_id: str) -> str:
        supervisor = inputs.identifier(supervisor_id, "supervisor_id", step, self.state)
        if supervisor == self.teller_id:
            self._refuse(step, "the supervisor must be another person than the teller (four eyes)")
        return supervisor

    def _now(self) -> dt.datetime:
        now = self._runtime.clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the session clock must return aware datetimes")
        return now

    def _commit(
        self,
        step: Step,
        target: State,
        *,
        actor: tuple[Role, str] | None = None,
        event: Event | None = None,
        decision: Decision | None = None,
        **fields: Any,
    ) -> Decision:
        """Apply one checked step: audit it first (all or nothing), then record it."""
        role, actor_id = actor or ("teller", self.teller_id)
        decisions = [*self.decisions, decision] if decision is not None else self.decisions
        entry = StepEntry(
            seq=len(self.steps) + 1,
            step=step,
            at=self._now(),
            actor_role=role,
            actor_id=actor_id,
            state_before=self.state,
            state_after=target,
            action_before=self.action if self.decisions else Action.PROCEED,
            action_after=Action.PROCEED,
            decision=len(decisions) - 1 if decision is not None else None,
            **fields,
        )
        after = effective_action([*self.steps, entry], decisions)
        entry = entry.model_copy(update={"action_after": after})
        new_event = event if event is not None else self.event
        if self.audit is not None:
            seqs = write_step(
                self.audit,
                case_id=self.session_id,
                step=step,
                event=new_event,
                decision=decision,
                at=entry.at,
                teller_id=self.teller_id,
                supervisor_id=actor_id if role == "supervisor" else None,
                override_from=entry.action_before,
                override_to=entry.override_to or (after if role == "supervisor" else None),
                reason=_audit_reason(entry),
                question_ids=entry.question_ids,
                answers=new_event.answers if step is Step.RECORD_ANSWERS else None,
                outcome=entry.outcome.value if entry.outcome else None,
                confirmed_fraud=entry.confirmed_fraud,
                with_amount=step in (Step.RECORD_OUTCOME, Step.CLOSE),
            )
            entry = entry.model_copy(update={"audit_seqs": seqs})
        self.event = new_event
        self.decisions = decisions
        self.steps = [*self.steps, entry]
        self.state = target
        return self.decisions[-1]


def _audit_reason(entry: StepEntry) -> str:
    parts = [entry.reason] if entry.reason else []
    if entry.step is Step.TELLER_RAISE and entry.override_to is not None:
        parts.append(f"raised {entry.action_before.value} -> {entry.override_to.value}")
    if entry.observations:
        parts.append("observed: " + ", ".join(entry.observations))
    if entry.notice is not None:
        parts.append(f"notice: {entry.notice.id}")
    if entry.lexicons:
        parts.append(
            "lexicons: "
            + "; ".join(f"{q}={','.join(names)}" for q, names in entry.lexicons.items())
        )
    return " | ".join(parts)
