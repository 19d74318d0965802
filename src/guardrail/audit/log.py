"""The audit log facade: protect, chain, sign, store; verify; read back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

from guardrail.audit.capture import decision_record, redact_for_event, shadow_record
from guardrail.audit.chain import FORMAT_VERSION, Sealer, Unsealed, meta_mac, utc_timestamp
from guardrail.audit.keys import AuditKeys
from guardrail.audit.masking import DEFAULT_POLICY, FieldClass, Masker, MaskingPolicy
from guardrail.audit.records import (
    AnyPayload,
    AuditRecord,
    CaseEntryRecord,
    ControlKind,
    ControlRecord,
    DecisionRecord,
    RecordKind,
    SessionStepRecord,
    ShadowRecord,
    decode_payload,
    encode_payload,
)
from guardrail.audit.sqlite_store import SQLiteStore
from guardrail.audit.store import (
    AppendConflict,
    AuditStore,
    Head,
    HeadLockingStore,
    LogMeta,
    StoredRecord,
)
from guardrail.audit.verify import VerifyReport, verify_reader
from guardrail.model import Decision, Event
from guardrail.model.decision import PackRef
from guardrail.model.session import SessionStep
from guardrail.policy.stores import BreakerState

Payload = AnyPayload
_PAYLOAD_TYPES = (DecisionRecord, SessionStepRecord, ShadowRecord, ControlRecord, CaseEntryRecord)
_ENTITY_CLASSES = {
    "customer": FieldClass.CUSTOMER_ID,
    "account": FieldClass.ACCOUNT,
    "payee": FieldClass.ACCOUNT,
}
DEFAULT_CHECKPOINT_EVERY = 1000
_MAX_CONFLICT_RETRIES = 100
MAX_REASON = 4000  # SessionStepRecord.reason


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _clip(text: str, limit: int = MAX_REASON) -> str:
    """Shorten redacted text to what a record holds (cut after redaction, never inside a
    personal value before it was recognised)."""
    if len(text) <= limit:
        return text
    marker = " [...]"
    return text[: limit - len(marker)] + marker


def to_audit_record(row: StoredRecord) -> AuditRecord:
    """Parse a stored row (its payload) into an :class:`AuditRecord`."""
    return AuditRecord(
        seq=row.seq,
        recorded_at=row.recorded_at,
        kind=RecordKind(row.kind),
        case_id=row.case_id,
        prev_hash=row.prev_hash,
        record_hash=row.record_hash,
        payload=decode_payload(row.payload),
    )


class AuditLog:
    """Append-only, hash-chained, signed log of decisions and counter-session steps.

    Thread-safe. Every ``log_*``/``append`` call returns only after its records are durably
    committed (acknowledged); the returned seqs are their positions in the chain.
    """

    def __init__(
        self,
        store: AuditStore,
        keys: AuditKeys,
        *,
        policy: MaskingPolicy = DEFAULT_POLICY,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.store = store
        self.keys = keys
        self.masker = Masker(keys.masking, policy)
        self._clock = clock
        self._lock = threading.Lock()
        now = utc_timestamp(clock())
        proposed = LogMeta(
            log_id=uuid.uuid4().hex,
            format_version=FORMAT_VERSION,
            created_at=now,
            signing_key_id=keys.signing_key_id,
            masking_key_id=keys.masking_key_id,
            checkpoint_every=checkpoint_every,
            mac="",
        )
        proposed = dataclasses.replace(proposed, mac=meta_mac(keys.signing, proposed))
        stored = store.meta()
        if stored is None:
            sealer = Sealer(keys.signing, proposed)
            stored = store.initialize(proposed, sealer.empty_head(now))
        if stored.signing_key_id != keys.signing_key_id:
            raise ValueError(
                f"this log was signed with key id {stored.signing_key_id}; the key given has id "
                f"{keys.signing_key_id}: appending would break verification"
            )
        if stored.masking_key_id != keys.masking_key_id:
            raise ValueError(
                f"this log's personal data was hashed with key id {stored.masking_key_id}; the "
                f"key given has id {keys.masking_key_id}: hashes would no longer correlate"
            )
        self.meta = stored
        self._sealer = Sealer(keys.signing, stored)
        self._head: Head | None = None

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        keys: AuditKeys | None = None,
        policy: MaskingPolicy = DEFAULT_POLICY,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> AuditLog:
        """Open (or create) a SQLite log. ``keys`` default to ``AuditKeys.from_env()``
        (strict: ``GUARDRAIL_AUDIT_KEY`` must be set)."""
        keys = AuditKeys.from_env() if keys is None else keys
        store = SQLiteStore(path)
        try:
            return cls(store, keys, policy=policy, checkpoint_every=checkpoint_every, clock=clock)
        except BaseException:
            store.close()
            raise

    # -- writing ---------------------------------------------------------------------------
    def decision_record(
        self,
        event: Event,
        decision: Decision,
        *,
        case_id: str | None = None,
        supervisor_id: str | None = None,
    ) -> DecisionRecord:
        """Build (without writing) the protected record of a decision, for batching."""
        return decision_record(
            event, decision, self.masker, case_id=case_id, supervisor_id=supervisor_id
        )

    def session_step_record(self, step: SessionStep) -> SessionStepRecord:
        """Build (without writing) the record of a session step. Free text is redacted; give
        the step the case's ``event`` so its customer's names and numbers are recognised."""
        answers, event = step.answers, step.event
        if answers is not None and answers.purpose_detail:
            detail = redact_for_event(answers.purpose_detail, event, self.masker)
            answers = answers.model_copy(update={"purpose_detail": detail})
        return SessionStepRecord.model_validate(
            {
                "case_id": step.case_id,
                "step": step.kind,
                "at": step.at,
                "teller_id": step.teller_id,
                "supervisor_id": step.supervisor_id,
                "event_id": step.event_id,
                "outcome": step.outcome,
                "confirmed_fraud": step.confirmed_fraud,
                "override_from": step.override_from,
                "override_to": step.override_to,
                "reason": _clip(redact_for_event(step.reason, event, self.masker)),
                "question_ids": tuple(step.question_ids),
                "answers": answers,
                "amount": step.amount,
                "refused_step": step.refused_step,
            }
        )

    def log_decision(
        self,
        event: Event,
        decision: Decision,
        *,
        case_id: str | None = None,
        supervisor_id: str | None = None,
        recorded_at: dt.datetime | None = None,
    ) -> int:
        """Record one screening decision; returns its acknowledged seq."""
        record = self.decision_record(event, decision, case_id=case_id, supervisor_id=supervisor_id)
        return self.append([record], recorded_at=recorded_at)[0]

    def log_session_step(self, step: SessionStep, *, recorded_at: dt.datetime | None = None) -> int:
        """Record one counter-session step; returns its acknowledged seq."""
        return self.append([self.session_step_record(step)], recorded_at=recorded_at)[0]

    def record_step(
        self,
        step: SessionStep | None,
        *,
        event: Event,
        case_id: str,
        decision: Decision | None = None,
        supervisor_id: str | None = None,
    ) -> tuple[int, ...]:
        """Write a screening ``decision`` of the case (if any) and ``step`` (if any) in one
        batch, so the log holds all of a counter-session step or none of it (the
        ``guardrail.model.StepJournal`` a ``CounterSession`` writes to)."""
        batch: list[Payload] = []
        if decision is not None:
            batch.append(
                self.decision_record(event, decision, case_id=case_id, supervisor_id=supervisor_id)
            )
        if step is not None:
            batch.append(self.session_step_record(step))
        return tuple(self.append(batch))

    def log_shadow(self, event: Event, live: Decision, shadow: Decision) -> int:
        """Record a candidate pack's decision beside the live one (a ``ShadowSink``)."""
        return self.append([shadow_record(event, live, shadow)])[0]

    def log_control(
        self,
        control: ControlKind | str,
        *,
        actor: str,
        at: dt.datetime,
        rule_id: str | None = None,
        entity: str | None = None,
        entity_value: str | None = None,
        until: dt.datetime | None = None,
        reason: str = "",
        pack: PackRef | None = None,
        detail: str = "",
    ) -> int:
        """Record a snooze, breaker or approval change. ``entity_value`` (a customer id or
        account number) is stored only as its keyed hash."""
        entity_ref = None
        if entity is not None and entity_value is not None:
            field_class = _ENTITY_CLASSES.get(entity, FieldClass.ACCOUNT)
            entity_ref = self.masker.keyed_hash(field_class, entity_value)
        record = ControlRecord(
            case_id=f"control-{uuid.uuid4().hex[:16]}",
            control=ControlKind(control),
            at=at,
            actor=actor,
            rule_id=rule_id,
            entity=entity,
            entity_ref=entity_ref,
            until=until,
            reason=_clip(self.masker.redact_text(reason)),
            pack=pack,
            detail=_clip(detail),
        )
        return self.append([record])[0]

    def log_breaker_trip(self, state: BreakerState) -> int:
        """Record a tripped circuit breaker (pass as ``CircuitBreakers(on_trip=...)``)."""
        return self.log_control(
            ControlKind.BREAKER_TRIPPED,
            actor="circuit-breaker",
            at=state.tripped_at,
            rule_id=state.rule_id,
            detail=(
                f"hit rate {100 * state.hit_rate:.1f}% ({state.hits} of {state.screened}); "
                f"action capped at {state.cap_at.value} until reset"
            ),
        )

    def append(
        self, payloads: Sequence[Payload], *, recorded_at: dt.datetime | None = None
    ) -> list[int]:
        """Append a batch in one durable transaction: all acknowledged, or none written."""
        if not payloads:
            return []
        for payload in payloads:
            if not isinstance(payload, _PAYLOAD_TYPES):
                raise TypeError(
                    "payload: expected a DecisionRecord, SessionStepRecord, ShadowRecord, "
                    f"ControlRecord or CaseEntryRecord, got {type(payload).__name__}"
                )
        encoded = [(p.type, p.case_id, encode_payload(p).decode("utf-8")) for p in payloads]
        with self._lock:
            if isinstance(self.store, HeadLockingStore):
                return self._append_holding_head(self.store, encoded, recorded_at)
            for _ in range(_MAX_CONFLICT_RETRIES):
                head = self._head if self._head is not None else self._read_head()
                now = utc_timestamp(self._clock())
                stamp = now if recorded_at is None else utc_timestamp(recorded_at)
                batch = [Unsealed(kind, case, text, stamp) for kind, case, text in encoded]
                sealed = self._sealer.seal(batch, head, now)
                try:
                    seqs = self.store.append(
                        sealed.records,
                        head=sealed.head,
                        checkpoints=sealed.checkpoints,
                        expected_seq=head.seq,
                    )
                except AppendConflict:
                    self._head = None  # another writer moved the head: re-read and re-seal
                    continue
                self._head = sealed.head
                return seqs
        raise AppendConflict("gave up after repeated concurrent appends")

    def _append_holding_head(
        self,
        store: HeadLockingStore,
        encoded: Sequence[tuple[str, str, str]],
        recorded_at: dt.datetime | None,
    ) -> list[int]:
        """Seal on the head as stored while holding it: concurrent writers wait, never retry."""
        with store.hold_head() as held:
            now = utc_timestamp(self._clock())
            stamp = now if recorded_at is None else utc_timestamp(recorded_at)
            batch = [Unsealed(kind, case, text, stamp) for kind, case, text in encoded]
            sealed = self._sealer.seal(batch, held.head, now)
            seqs = held.append(sealed.records, head=sealed.head, checkpoints=sealed.checkpoints)
        self._head = sealed.head
        return seqs

    def _read_head(self) -> Head:
        head = self.store.head()
        if head is None:
            raise ValueError("the log has no head: run verify, it may have been tampered with")
        return head

    # -- reading ---------------------------------------------------------------------------
    def verify(self, *, anchors: Sequence[tuple[int, str]] = ()) -> VerifyReport:
        """Check the whole chain, signatures, checkpoints and head (see ``chain``)."""
        with self.store.snapshot() as reader:
            return verify_reader(reader, self.keys.signing, anchors=anchors)

    def records(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[AuditRecord]:
        """Parsed records in seq order."""
        for row in self.store.iterate(from_seq, to_seq):
            yield to_audit_record(row)

    def head(self) -> Head | None:
        """The signed head: copy it off the machine to detect a rollback later."""
        return self.store.head()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def verify_log(
    path: str | Path,
    signing_key: bytes | None,
    *,
    anchors: Sequence[tuple[int, str]] = (),
) -> VerifyReport:
    """Verify the SQLite log at ``path`` without opening it for writing. ``signing_key=None``
    checks only the hash chain. Raises ``AuditStoreError`` if the file is missing or not a log.
    """
    store = SQLiteStore(path, create=False)
    try:
        with store.snapshot() as reader:
            return verify_reader(reader, signing_key, anchors=anchors)
    finally:
        store.close()


def read_records(
    path: str | Path, from_seq: int = 1, to_seq: int | None = None
) -> Iterator[AuditRecord]:
    """Parsed records of the SQLite log at ``path`` (read only, no key needed)."""
    store = SQLiteStore(path, create=False)
    try:
        with store.snapshot() as reader:
            for row in reader.iterate(from_seq, to_seq):
                yield to_audit_record(row)
    finally:
        store.close()
