"""The case ledger: open, note, attach, assign, verdict, close; all written into the audit
chain as ``case_entry`` records, so a case is verified like every decision.

A case is every ledger entry sharing a ``case_id``. A case opened from a screening takes the
screening's case id, so its decisions, counter steps and ledger entries read as one story;
complaints and hand-opened cases get a new id (``CMP-20250303-1a2b3c4d``). Personal values
(parties, text) are protected with the log's masker before anything is written.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from guardrail.audit.log import AuditLog
from guardrail.audit.masking import FieldClass
from guardrail.audit.records import (
    CaseEntryKind,
    CaseEntryRecord,
    CaseType,
    DecisionRecord,
    PartyRole,
    ProtectedParty,
    RecordKind,
    Resolution,
    Verdict,
    decode_payload,
)
from guardrail.audit.store import AuditReader, StoredRecord
from guardrail.audit.verify import VerifyReport
from guardrail.cases.errors import CaseError
from guardrail.cases.evidence import EvidenceProblem, EvidenceStore, default_evidence_root
from guardrail.cases.state import CaseState, fold
from guardrail.model import Action, Decision, Event, Money

_PREFIX = {
    CaseType.COMPLAINT: "CMP",
    CaseType.FRICTION_COMPLAINT: "FRC",
    CaseType.MANUAL: "CASE",
    CaseType.DECISION: "DEC",
}
# Entries still allowed once a case is closed: what is learnt later.
_AFTER_CLOSE = frozenset({CaseEntryKind.NOTE, CaseEntryKind.VERDICT, CaseEntryKind.AMOUNTS})
MAX_EVIDENCE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Party:
    """A party to a case as the officer knows it; protected before it is written."""

    role: PartyRole | str
    name: str | None = None
    id_number: str | None = None
    phone: str | None = None
    account: str | None = None
    customer_id: str | None = None

    def values(self) -> list[tuple[FieldClass, str | None]]:
        return [
            (FieldClass.NAME, self.name),
            (FieldClass.ID_NUMBER, self.id_number),
            (FieldClass.PHONE, self.phone),
            (FieldClass.ACCOUNT, self.account),
            (FieldClass.CUSTOMER_ID, self.customer_id),
        ]


@dataclass(frozen=True)
class CasePolicy:
    """When a screening opens a case by itself: at or above ``open_at``."""

    open_at: Action = Action.HOLD

    def opens_case(self, action: Action) -> bool:
        return action >= self.open_at


@dataclass(frozen=True)
class LedgerVerifyReport:
    """The chain's verification plus every evidence file against the hash the chain holds."""

    chain: VerifyReport
    evidence_checked: int
    evidence_problems: tuple[EvidenceProblem, ...]

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.evidence_problems

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "chain": self.chain.to_dict(),
            "evidence_checked": self.evidence_checked,
            "evidence_problems": [p.to_dict() for p in self.evidence_problems],
        }


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CaseLedger:
    """Case operations over one :class:`~guardrail.audit.log.AuditLog` and its evidence."""

    def __init__(
        self,
        log: AuditLog,
        evidence: EvidenceStore,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.log = log
        self.evidence = evidence
        self._clock = clock

    @classmethod
    def for_sqlite(cls, log: AuditLog, evidence_root: str | Path | None = None) -> CaseLedger:
        """A ledger over a SQLite log; evidence beside it (``LOG.evidence/``) by default."""
        path = getattr(log.store, "path", None)
        if evidence_root is None:
            if path is None:
                raise CaseError("evidence_root: required for a log that is not a file")
            evidence_root = default_evidence_root(path)
        return cls(log, EvidenceStore(evidence_root))

    # -- writing ------------------------------------------------------------------------------
    def open(
        self,
        case_type: CaseType | str,
        *,
        by: str,
        text: str = "",
        at: dt.datetime | None = None,
        case_id: str | None = None,
        source_case_id: str | None = None,
        branch_id: str | None = None,
        typology: str | None = None,
        parties: Sequence[Party] = (),
        amount_at_risk: Money | None = None,
        assignee: str | None = None,
        occurred_on: dt.date | None = None,
    ) -> str:
        """Open a case; returns its id (a new one unless ``case_id`` is given)."""
        kind = _enum(CaseType, case_type, "case_type")
        when = self._at(at)
        if case_id is None:
            case_id = f"{_PREFIX[kind]}-{when:%Y%m%d}-{uuid.uuid4().hex[:8]}"
        elif self.find(case_id) is not None:
            raise CaseError(f"case {case_id}: already open in the ledger")
        known = self.log.masker.known_values([v for p in parties for v in p.values()])
        entry = self.build_entry(
            case_id,
            CaseEntryKind.OPENED,
            when,
            by,
            case_type=kind,
            text=self._redact(text, known),
            source_case_id=source_case_id,
            branch_id=branch_id,
            typology=typology,
            parties=tuple(self._protect(p) for p in parties),
            amount_at_risk=amount_at_risk,
            assignee=assignee,
            occurred_on=occurred_on,
        )
        self.log.append([entry])
        return case_id

    def opening_entry(
        self,
        record: DecisionRecord,
        *,
        at: dt.datetime,
        by: str = "system",
        text: str = "",
        typology: str | None = None,
    ) -> CaseEntryRecord:
        """The ``opened`` entry of a case for a logged screening (for batching: not written).
        The case takes the screening's case id; parties come already protected."""
        event = record.event
        parties: list[ProtectedParty] = [
            ProtectedParty(
                role=PartyRole.CUSTOMER,
                name=event.customer.name,
                id_number=event.customer.id_number,
                phone=event.customer.phone,
                account=None if event.account is None else event.account.id,
                customer_id=event.customer.id,
            )
        ]
        if event.counterparty is not None and event.counterparty.account is not None:
            parties.append(
                ProtectedParty(
                    role=PartyRole.COUNTERPARTY,
                    name=event.counterparty.name,
                    phone=event.counterparty.phone,
                    account=event.counterparty.account,
                )
            )
        rules = ", ".join(sorted({hit.rule_id for hit in record.hits}))
        summary = text or f"{record.action.value} on {event.kind.value}" + (
            f" ({rules})" if rules else ""
        )
        return self.build_entry(
            record.case_id,
            CaseEntryKind.OPENED,
            at,
            by,
            case_type=CaseType.DECISION,
            text=self._redact(summary),
            source_case_id=record.case_id,
            branch_id=event.branch_id,
            typology=typology,
            parties=tuple(parties),
            amount_at_risk=event.amount,
        )

    def open_from_decision(
        self,
        event: Event,
        decision: Decision,
        *,
        by: str = "system",
        at: dt.datetime | None = None,
        case_id: str | None = None,
        typology: str | None = None,
    ) -> str:
        """Open the case of a screening (already logged or not): its id is the screening's."""
        record = self.log.decision_record(event, decision, case_id=case_id)
        if self.find(record.case_id) is not None:
            raise CaseError(f"case {record.case_id}: already open in the ledger")
        entry = self.opening_entry(record, at=self._at(at), by=by, typology=typology)
        self.log.append([entry])
        return record.case_id

    def intake(
        self, policy: CasePolicy, *, by: str = "system", at: dt.datetime | None = None
    ) -> list[str]:
        """Open a case for every logged screening at or above ``policy.open_at`` that has none
        yet (idempotent); returns the case ids opened."""
        with_case = {state.case_id for state in self.cases("all")}
        opened: list[str] = []
        for row in self.log.store.iterate():
            if row.kind != RecordKind.DECISION or row.case_id in with_case:
                continue
            record = decode_payload(row.payload)
            if isinstance(record, DecisionRecord) and policy.opens_case(record.action):
                self.log.append([self.opening_entry(record, at=self._at(at), by=by)])
                with_case.add(record.case_id)
                opened.append(record.case_id)
        return opened

    def note(self, case_id: str, text: str, *, by: str, at: dt.datetime | None = None) -> int:
        """Add a progress note; returns its seq."""
        if not text.strip():
            raise CaseError("text: a note needs some text")
        self._writable(case_id, CaseEntryKind.NOTE)
        return self._write(case_id, CaseEntryKind.NOTE, at, by, text=self._redact(text))

    def attach(
        self,
        case_id: str,
        data: bytes | Path,
        *,
        by: str,
        name: str | None = None,
        media_type: str | None = None,
        text: str = "",
        at: dt.datetime | None = None,
    ) -> str:
        """Store an evidence file by content hash and chain its hash; returns the hash."""
        self._writable(case_id, CaseEntryKind.EVIDENCE_ATTACHED)
        if isinstance(data, Path):
            try:
                if data.stat().st_size > MAX_EVIDENCE_BYTES:
                    raise CaseError(f"{data}: larger than {MAX_EVIDENCE_BYTES} bytes")
                content = data.read_bytes()
            except OSError as exc:
                raise CaseError(f"{data}: cannot read: {exc.strerror}") from None
            name = name or data.name
            media_type = media_type or mimetypes.guess_type(data.name)[0]
        else:
            content = bytes(data)
        if len(content) > MAX_EVIDENCE_BYTES:
            raise CaseError(f"evidence: larger than {MAX_EVIDENCE_BYTES} bytes")
        digest = self.evidence.put(content)
        self._write(
            case_id,
            CaseEntryKind.EVIDENCE_ATTACHED,
            at,
            by,
            text=self._redact(text),
            evidence_sha256=digest,
            evidence_name=None if name is None else self._redact(name)[:200],
            evidence_bytes=len(content),
            evidence_media_type=media_type,
        )
        return digest

    def assign(self, case_id: str, assignee: str, *, by: str, at: dt.datetime | None = None) -> int:
        self._writable(case_id, CaseEntryKind.ASSIGNED)
        return self._write(case_id, CaseEntryKind.ASSIGNED, at, by, assignee=assignee)

    def verdict(
        self,
        case_id: str,
        verdict: Verdict | str,
        *,
        by: str,
        text: str = "",
        at: dt.datetime | None = None,
    ) -> int:
        """Record what was established (possibly long after the counter); audited like all."""
        value = _enum(Verdict, verdict, "verdict")
        self._writable(case_id, CaseEntryKind.VERDICT)
        return self._write(
            case_id,
            CaseEntryKind.VERDICT,
            at,
            by,
            verdict=value,
            text=self._redact(text),
        )

    def amounts(
        self,
        case_id: str,
        *,
        by: str,
        prevented: Money | None = None,
        returned: Money | None = None,
        reported_to_police: bool | None = None,
        text: str = "",
        at: dt.datetime | None = None,
    ) -> int:
        """Record money prevented from leaving or returned to the victim, as it is learnt."""
        if prevented is None and returned is None and reported_to_police is None:
            raise CaseError("amounts: give a prevented or returned amount, or the police report")
        self._writable(case_id, CaseEntryKind.AMOUNTS)
        return self._write(
            case_id,
            CaseEntryKind.AMOUNTS,
            at,
            by,
            amount_prevented=prevented,
            amount_returned=returned,
            reported_to_police=reported_to_police,
            text=self._redact(text),
        )

    def close(
        self,
        case_id: str,
        resolution: Resolution | str,
        *,
        by: str,
        text: str = "",
        prevented: Money | None = None,
        returned: Money | None = None,
        reported_to_police: bool | None = None,
        at: dt.datetime | None = None,
    ) -> int:
        """Close the case with its resolution (and the amounts, if known)."""
        value = _enum(Resolution, resolution, "resolution")
        self._writable(case_id, CaseEntryKind.CLOSED)
        return self._write(
            case_id,
            CaseEntryKind.CLOSED,
            at,
            by,
            resolution=value,
            text=self._redact(text),
            amount_prevented=prevented,
            amount_returned=returned,
            reported_to_police=reported_to_police,
        )

    # -- reading ------------------------------------------------------------------------------
    def find(self, case_id: str) -> CaseState | None:
        """The case as it stands, or None if the ledger has no such case."""
        return find_case(self.log.store, case_id)

    def get(self, case_id: str) -> CaseState:
        state = self.find(case_id)
        if state is None:
            raise CaseError(f"case {case_id}: no such case in the ledger")
        return state

    def cases(self, status: str = "all") -> list[CaseState]:
        """Every case (``status`` ``open``, ``closed`` or ``all``), in order of opening."""
        return list_cases(self.log.store, status)

    def verify(self) -> LedgerVerifyReport:
        """Verify the chain and every evidence file the chain names."""
        chain = self.log.verify()
        problems: list[EvidenceProblem] = []
        checked = 0
        for seq, entry in _entries(_case_rows(self.log.store)):
            if entry.entry is CaseEntryKind.EVIDENCE_ATTACHED and entry.evidence_sha256:
                checked += 1
                problem = self.evidence.check(entry.case_id, seq, entry.evidence_sha256)
                if problem is not None:
                    problems.append(problem)
        return LedgerVerifyReport(chain, checked, tuple(problems))

    # -- machinery ----------------------------------------------------------------------------
    def _writable(self, case_id: str, kind: CaseEntryKind) -> CaseState:
        state = self.get(case_id)
        if not state.is_open and kind not in _AFTER_CLOSE:
            raise CaseError(
                f"case {case_id}: closed on {state.closed_at:%Y-%m-%d}; "
                f"only notes, verdicts and amounts may follow, not {kind.value}"
            )
        return state

    def _redact(self, text: str, known: dict[str, str] | None = None) -> str:
        # Parties are stored protected, so later entries cannot recognise their names: only
        # the opening entry (which has the raw values) redacts them; digit runs always are.
        return self.log.masker.redact_text(text, known) if text else text

    def _protect(self, party: Party) -> ProtectedParty:
        m = self.log.masker
        return ProtectedParty(
            role=_enum(PartyRole, party.role, "party role"),
            name=m.protect(FieldClass.NAME, party.name),
            id_number=m.protect(FieldClass.ID_NUMBER, party.id_number),
            phone=m.protect(FieldClass.PHONE, party.phone),
            account=m.protect(FieldClass.ACCOUNT, party.account),
            customer_id=m.protect(FieldClass.CUSTOMER_ID, party.customer_id),
        )

    def _at(self, at: dt.datetime | None) -> dt.datetime:
        moment = self._clock() if at is None else at
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise CaseError("at: must carry a time zone offset")
        return moment

    def build_entry(
        self, case_id: str, kind: CaseEntryKind, at: dt.datetime, by: str, **fields: object
    ) -> CaseEntryRecord:
        """A validated entry, not written and not checked against the case's state (for
        batch writers that append many entries at once)."""
        try:
            return CaseEntryRecord.model_validate(
                {"case_id": case_id, "entry": kind, "at": at, "by": by, **fields}
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "entry"
            raise CaseError(f"{kind.value} entry: {where}: {first['msg']}") from None

    def _write(
        self,
        case_id: str,
        kind: CaseEntryKind,
        at: dt.datetime | None,
        by: str,
        **fields: object,
    ) -> int:
        entry = self.build_entry(case_id, kind, self._at(at), by, **fields)
        return self.log.append([entry])[0]


_E = TypeVar("_E", CaseType, Verdict, Resolution, PartyRole)


def _enum(cls: type[_E], value: _E | str, what: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(m.value for m in cls)
        raise CaseError(f"{what}: {value!r} is not one of {choices}") from None


def _case_rows(store: AuditReader) -> Iterator[StoredRecord]:
    return (r for r in store.iterate() if r.kind == RecordKind.CASE_ENTRY)


def _entries(rows: Iterable[StoredRecord]) -> Iterator[tuple[int, CaseEntryRecord]]:
    for row in rows:
        payload = decode_payload(row.payload)
        if isinstance(payload, CaseEntryRecord):
            yield row.seq, payload


def find_case(store: AuditReader, case_id: str) -> CaseState | None:
    """The case ``case_id`` as the store's ledger entries say, or None (no key needed)."""
    by_case = getattr(store, "case_records", None)
    rows: Iterable[StoredRecord] = by_case(case_id) if by_case is not None else store.iterate()
    return fold(
        _entries(r for r in rows if r.case_id == case_id and r.kind == RecordKind.CASE_ENTRY)
    )


def list_cases(store: AuditReader, status: str = "all") -> list[CaseState]:
    """Every case in the store (``open``, ``closed`` or ``all``), in order of opening."""
    if status not in ("open", "closed", "all"):
        raise CaseError(f"status: expected open, closed or all, got {status!r}")
    grouped: dict[str, list[tuple[int, CaseEntryRecord]]] = {}
    for seq, entry in _entries(_case_rows(store)):
        grouped.setdefault(entry.case_id, []).append((seq, entry))
    result = [s for s in (fold(e) for e in grouped.values()) if s is not None]
    result.sort(key=lambda s: (s.opened_at, s.case_id))
    return result if status == "all" else [s for s in result if s.status == status]
