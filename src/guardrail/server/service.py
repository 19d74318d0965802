"""What the HTTP endpoints do, without HTTP: screen, record, run counter sessions, each as an
authenticated principal and each written to the audit log before it is answered.

Role rules live here (the endpoints only parse and render): a teller screens and works
sessions only as himself; a supervisor decides sessions of other tellers; an auditor reads;
an admin manages keys."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from guardrail.audit.capture import shadow_record
from guardrail.audit.dashboard import DashboardData, render_dashboard
from guardrail.audit.log import AuditLog
from guardrail.audit.period_report import PeriodReport, ReportError, store_report
from guardrail.context.history import retention_for
from guardrail.counter import CounterSession, IllegalStep, Step
from guardrail.counter.session_store import (
    SessionConflict,
    SessionExists,
    SessionNotFound,
    SessionStore,
)
from guardrail.errors import GuardrailError, StoreError
from guardrail.guard import EventError, Guard, parse_event
from guardrail.lang.errors import PackError
from guardrail.lang.loader import load_pack
from guardrail.model.decision import Decision, Failure
from guardrail.model.event import Event
from guardrail.model.session import SessionStep
from guardrail.policy import CircuitBreakers, PostDecisionPolicies
from guardrail.server import schemas, stores
from guardrail.server.audit_writer import AuditWriter
from guardrail.server.auth import require, require_self, security_log
from guardrail.server.cases import CaseDesk, case_desk
from guardrail.server.config import ServeConfig
from guardrail.server.keys import KeyStore, Principal, Role
from guardrail.server.metrics import Metrics
from guardrail.server.problems import (
    ProblemError,
    forbidden,
    invalid,
    loads_object,
    not_found,
    unavailable,
)
from guardrail.stores import open_breaker_store, open_snooze_store

logger = logging.getLogger("guardrail.server")

SCREENERS = (Role.TELLER, Role.SUPERVISOR)
READERS = (Role.TELLER, Role.SUPERVISOR, Role.AUDITOR)
HIDDEN_FAILURE = "internal failure; the server log has the details"


def event_problem(error: EventError) -> ProblemError:
    return invalid(error.problems, "the event is invalid")


def public_decision(decision: Decision) -> Decision:
    """The decision as a client sees it: failures keep their stage and type but not their
    message, which may hold internal paths (the audit log and server log keep it whole)."""
    if not decision.failures:
        return decision
    hidden = tuple(
        Failure(stage=f.stage, error_type=f.error_type, message=HIDDEN_FAILURE)
        for f in decision.failures
    )
    return decision.model_copy(update={"failures": hidden})


def change_options(
    config: ServeConfig, audit: AuditLog, writer: AuditWriter, metrics: Metrics
) -> dict[str, Any]:
    """Guard options for changing rules safely: the approval check in production, a candidate
    pack in shadow (records go through a background append, never delaying the answer), and
    snoozes and circuit breakers from the policy store."""
    options: dict[str, Any] = {}
    if config.serve.production:
        options.update(production=True, approval_key=audit.keys.approval)
    if config.serve.candidate_pack:

        def record_shadow(event: Event, live: Decision, shadow: Decision) -> None:
            writer.submit(shadow_record(event, live, shadow))

        options.update(candidate=load_pack(config.serve.candidate_pack), shadow_sink=record_shadow)
    if config.stores.policy:
        options["policies"] = PostDecisionPolicies(
            snoozes=open_snooze_store(config.stores.policy),
            breakers=CircuitBreakers(
                open_breaker_store(config.stores.policy),
                on_trip=audit.log_breaker_trip,
                metrics=metrics.breakers,
            ),
        )
    return options


@dataclass
class Stores:
    keys: KeyStore
    sessions: SessionStore
    audit: AuditLog


class Service:
    """One worker's service: the guard, the stores, the audit writer, the metrics."""

    def __init__(
        self,
        config: ServeConfig,
        stores_: Stores,
        guard: Guard | None,
        why: str,
        writer: AuditWriter | None = None,
        metrics: Metrics | None = None,
    ):
        self.config = config
        self.stores = stores_
        self.guard = guard
        self.pack_problem = why
        self.metrics = metrics if metrics is not None else Metrics()
        self.writer = writer if writer is not None else AuditWriter(stores_.audit)
        self._cases: CaseDesk | None = None

    @property
    def cases(self) -> CaseDesk:
        """The case ledger over this service's audit log (supervisors and auditors)."""
        if self._cases is None:
            self._cases = case_desk(self.config, self.stores.audit, self.metrics)
        return self._cases

    @classmethod
    def start(cls, config: ServeConfig) -> Service:
        """Open the stores and load the pack. A pack that fails to load leaves the service
        running but not ready (so the failure is visible in /v1/health/ready)."""
        stores.check_sharing(config)
        audit = stores.open_audit(config.stores.audit, stores.audit_keys(config))
        opened = Stores(
            keys=stores.open_keys(config.stores.keys),
            sessions=stores.open_sessions(config.stores.sessions),
            audit=audit,
        )
        guard: Guard | None = None
        why = ""
        writer = AuditWriter(audit)
        metrics = Metrics()
        try:
            pack = load_pack(config.pack_path)
            history = stores.open_history(
                config.stores.history, retention_for(list(pack.windows.values()))
            )
            guard = Guard(
                pack,
                backend=config.serve.backend,
                history=history,
                **change_options(config, audit, writer, metrics),
            )
        except PackError as error:
            why = f"the rule pack failed to load ({len(str(error).splitlines())} problem lines)"
            logger.error("rule pack failed to load: %s", error)
        except (GuardrailError, OSError, ValueError) as error:
            why = f"the guard could not start: {type(error).__name__}"
            logger.error("guard failed to start: %s", error)
        return cls(config, opened, guard, why, writer, metrics)

    def close(self) -> None:
        self.writer.close()
        self.stores.audit.close()
        self.stores.sessions.close()
        if self.guard is not None:
            self.guard.history.close()

    # -- readiness ---------------------------------------------------------------------------
    def readiness(self) -> dict[str, str]:
        """Each check's state: "ok" or why not (no internal paths)."""
        checks: dict[str, str] = {"pack": "ok" if self.guard is not None else self.pack_problem}
        probes = {
            "keys": self.stores.keys.ping,
            "sessions": self._ping_sessions,
            "audit": self._ping_audit,
        }
        if self.guard is not None:
            history = self.guard.history

            def probe_history() -> None:
                history.for_customer("~readiness~", None)

            probes["history"] = probe_history
        for name, probe in probes.items():
            try:
                probe()
                checks[name] = "ok"
            except Exception as error:  # a store that cannot be reached: not ready
                logger.warning("readiness: %s store unreachable: %s", name, error)
                self.metrics.store_error(name)
                checks[name] = "unreachable"
        return checks

    def _ping_sessions(self) -> None:
        with contextlib.suppress(SessionNotFound):
            self.stores.sessions.load("~readiness~")

    def _ping_audit(self) -> None:
        if self.stores.audit.head() is None:
            raise StoreError("the audit log has no head")

    def _guard(self) -> Guard:
        if self.guard is None:
            raise unavailable(f"not ready: {self.pack_problem}")
        return self.guard

    # -- screening ---------------------------------------------------------------------------
    def screen(self, principal: Principal, event: Event) -> tuple[Decision, Future[int]]:
        """Screen and queue the decision for the audit log; wait on the future before
        answering (it holds the record's seq once durably committed)."""
        require(principal, *SCREENERS, action="screen")
        require_self(principal, event.teller_id, field="teller_id", action="screen")
        guard = self._guard()
        started = time.perf_counter()
        decision = guard.screen(event)
        record = self.stores.audit.decision_record(event, decision)
        future = self.writer.submit(record)
        self.metrics.decision(
            decision.action, time.perf_counter() - started, failed=decision.failed
        )
        return decision, future

    def parse(self, body: bytes | Mapping[str, object]) -> Event:
        """Validate an event (JSON bytes or an already parsed object) or raise a 400/422
        problem naming every wrong field."""
        if isinstance(body, bytes):
            loads_object(body, "event")  # malformed JSON is a 400 of its own
        try:
            return parse_event(body)
        except EventError as error:
            raise event_problem(error) from None

    def record_executed(self, principal: Principal, event: Event) -> None:
        require(principal, *SCREENERS, action="record executed transactions")
        require_self(principal, event.teller_id, field="teller_id", action="record a transaction")
        guard = self._guard()
        try:
            guard.record_executed(event)
        except Exception as error:
            self.metrics.store_error("history")
            reference = uuid.uuid4().hex[:12]
            logger.exception("history write failed (%s)", reference)
            raise unavailable(
                f"the transaction could not be recorded in the history; retry ({reference})"
            ) from error

    # -- counter sessions --------------------------------------------------------------------
    def open_session(self, principal: Principal, event: Event) -> CounterSession:
        require(principal, *SCREENERS, action="open a counter session")
        require_self(principal, event.teller_id, field="teller_id", action="open a session")
        guard = self._guard()
        if self._stored(event.event_id) is not None:
            raise _session_exists(event.event_id)
        session = CounterSession.open(
            guard, event, teller_id=principal.name, audit=self.stores.audit
        )
        try:
            self.stores.sessions.create(session.session_id, session.to_json())
        except SessionExists:
            raise _session_exists(event.event_id) from None
        self.metrics.decision(session.decision.action, 0.0, failed=session.decision.failed)
        return session

    def read_session(self, principal: Principal, session_id: str) -> CounterSession:
        require(principal, *READERS, action="read counter sessions")
        text = self._stored(session_id)
        if text is None:
            raise not_found(f"no counter session {session_id!r}")
        session = self._resume(text, audit=False)
        if principal.role is Role.TELLER and session.teller_id != principal.name:
            require_self(principal, session.teller_id, field="session_id", action="read it")
        return session

    def step(
        self, principal: Principal, session_id: str, request: schemas.StepRequest
    ) -> CounterSession:
        """Apply one step to a stored session, holding it exclusively from load to save."""
        step = Step(request.step)
        try:
            with self.stores.sessions.hold(session_id) as hold:
                session = self._resume(hold.stored.state, audit=True)
                self._authorise_step(principal, session, step)
                try:
                    _apply(session, request, principal)
                except IllegalStep as refusal:
                    raise _refused(refusal, step, principal, session) from None
                hold.save(session.to_json(), closed=session.closed)
        except SessionNotFound:
            raise not_found(f"no counter session {session_id!r}") from None
        except SessionConflict:
            raise ProblemError(
                409,
                "session-busy",
                "Session busy",
                f"session {session_id!r} is being changed by another request; retry",
            ) from None
        return session

    def _stored(self, session_id: str) -> str | None:
        try:
            return self.stores.sessions.load(session_id).state
        except SessionNotFound:
            return None

    def _resume(self, text: str, *, audit: bool) -> CounterSession:
        try:
            return CounterSession.from_json(
                text, self._guard(), audit=self.stores.audit if audit else None
            )
        except ValueError as error:  # screened with another pack version
            raise ProblemError(409, "pack-changed", "Pack changed", str(error)) from None

    def _authorise_step(self, principal: Principal, session: CounterSession, step: Step) -> None:
        supervisor_step = step in schemas.SUPERVISOR_STEPS
        needed = Role.SUPERVISOR if supervisor_step else Role.TELLER
        if principal.role is not needed:
            self._log_forbidden_step(principal, session, step)
            raise forbidden(
                f"role {principal.role.value} may not take the step {step.value} "
                f"(needs {needed.value})"
            )
        if not supervisor_step and principal.name != session.teller_id:
            self._log_forbidden_step(principal, session, step)
            require_self(principal, session.teller_id, field="session_id", action=step.value)

    def _log_forbidden_step(
        self, principal: Principal, session: CounterSession, step: Step
    ) -> None:
        """A step refused for the caller's role or identity goes to the audit log as a
        ``step_refused`` of that session, naming who tried."""
        security_log.warning(
            "forbidden: %s (%s) tried %s on session %s",
            principal.name,
            principal.role.value,
            step.value,
            session.session_id,
        )
        try:
            self.stores.audit.log_session_step(
                SessionStep(
                    case_id=session.session_id,
                    kind="step_refused",
                    at=dt.datetime.now(dt.UTC),
                    teller_id=session.teller_id,
                    supervisor_id=principal.name if principal.role is not Role.TELLER else None,
                    event_id=session.event.event_id,
                    reason=(
                        f"forbidden: {principal.role.value} {principal.name} (key "
                        f"{principal.key_id}) may not take {step.value} on this session"
                    ),
                    event=session.event,
                    refused_step=step.value,
                )
            )
        except Exception:
            self.metrics.store_error("audit")
            logger.exception("could not log a forbidden step on %s", session.session_id)

    # -- reports -----------------------------------------------------------------------------
    def report(
        self,
        principal: Principal,
        *,
        by: str = "",
        start: str | None = None,
        end: str | None = None,
        tz: str = "Asia/Shanghai",
        kinds: Sequence[str] = (),
        channels: Sequence[str] = (),
    ) -> PeriodReport:
        """A period report over the service's audit log (auditors only)."""
        require(principal, Role.AUDITOR, action="read reports")
        filters = _report_filters(start, end, tz)
        try:
            return store_report(
                self.stores.audit.store, by=by, kinds=kinds, channels=channels, tz=tz, **filters
            )
        except ReportError as error:
            raise ProblemError(400, "bad-report", "Bad report request", str(error)) from None

    def dashboard(self, principal: Principal, **options: Any) -> str:
        """The same as ``guardrail audit report --format html`` (auditors only)."""
        options.pop("by", None)
        total = self.report(principal, **options)
        return render_dashboard(
            DashboardData(
                total,
                self.report(principal, by="day", **options),
                self.report(principal, by="branch", **options),
            )
        )

    # -- packs -------------------------------------------------------------------------------
    def pack_info(self, principal: Principal) -> schemas.PackInfo:
        require(principal, *READERS, Role.ADMIN, action="read the pack")
        guard = self._guard()
        ref = guard.pack.ref
        return schemas.PackInfo(
            name=ref.name,
            version=ref.version,
            content_hash=ref.content_hash,
            rules=[
                schemas.RuleInfo(
                    id=rule.id,
                    title_zh=rule.spec.title_zh,
                    title_en=rule.spec.title_en,
                    action=rule.spec.action,
                )
                for rule in guard.pack.rules
            ],
        )


def _refused(
    refusal: IllegalStep, step: Step, principal: Principal, session: CounterSession
) -> ProblemError:
    if step in schemas.SUPERVISOR_STEPS and principal.name == session.teller_id:
        return ProblemError(
            403,
            "four-eyes",
            "Four eyes",
            f"{refusal.reason}: {principal.name} is this session's teller",
        )
    return ProblemError(409, "step-refused", "Step refused", str(refusal))


def _session_exists(session_id: str) -> ProblemError:
    return ProblemError(
        409, "session-exists", "Session exists", f"a counter session {session_id!r} is already open"
    )


def _apply(session: CounterSession, request: schemas.StepRequest, principal: Principal) -> None:
    match request:
        case schemas.AskQuestions():
            session.ask_questions(request.question_ids)
        case schemas.RecordAnswers():
            session.record_answers(request.answers)
        case schemas.RecordObservations():
            session.record_observations(request.observations)
        case schemas.DeliverNotice():
            session.deliver_notice()
        case schemas.AcknowledgeNotice():
            session.acknowledge_notice()
        case schemas.SignRiskAcknowledgement():
            session.sign_risk_acknowledgement()
        case schemas.TellerRaise():
            session.teller_raise(request.to, request.reason)
        case schemas.Escalate():
            session.escalate(request.reason)
        case schemas.SupervisorApprove():
            session.supervisor_approve(principal.name, request.reason)
        case schemas.SupervisorReject():
            session.supervisor_reject(principal.name, request.reason)
        case schemas.SupervisorOverride():
            session.supervisor_override(principal.name, request.to, request.reason)
        case schemas.RecordOutcome():
            session.record_outcome(
                request.outcome, confirmed_fraud=request.confirmed_fraud, note=request.note
            )
        case schemas.Close():
            session.close()


def session_view(session: CounterSession) -> schemas.SessionView:
    return schemas.SessionView(
        session_id=session.session_id,
        teller_id=session.teller_id,
        state=session.state,
        action=session.action,
        closed=session.closed,
        decision=public_decision(session.decision),
        questions_to_ask=list(session.questions_to_ask()) if not session.closed else [],
        questions_asked=list(session.questions_asked),
        unanswered=list(session.unanswered),
        notice=session.notice,
        execute_refusal=session.can_execute(),
        supervisor_ids=list(session.supervisor_ids),
        steps=[
            schemas.StepView(
                seq=entry.seq,
                step=entry.step,
                at=entry.at.isoformat(),
                actor_role=entry.actor_role,
                actor_id=entry.actor_id,
                state_after=entry.state_after,
                action_after=entry.action_after,
            )
            for entry in session.steps
        ],
    )


def _report_filters(start: str | None, end: str | None, tz: str) -> dict[str, Any]:
    """``from``/``to`` as whole days (YYYY-MM-DD, ``to`` included) in ``tz``."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ProblemError(
            400, "bad-report", "Bad report request", f"tz: unknown time zone {tz[:64]!r}"
        ) from None
    bounds: dict[str, Any] = {"start": None, "end": None}
    for name, text, shift in (("start", start, 0), ("end", end, 1)):
        if text is None:
            continue
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise ProblemError(
                400,
                "bad-report",
                "Bad report request",
                f"{'from' if shift == 0 else 'to'}: not a date (YYYY-MM-DD): {text[:40]!r}",
            ) from None
        bounds[name] = dt.datetime.combine(day, dt.time(), tzinfo=zone) + dt.timedelta(days=shift)
    return bounds
