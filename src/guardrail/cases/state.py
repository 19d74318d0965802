"""A case as it stands: the fold of its ledger entries, in chain order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from guardrail.audit.records import (
    CaseEntryKind,
    CaseEntryRecord,
    CaseType,
    ProtectedParty,
    Resolution,
    Verdict,
)
from guardrail.model import Money


@dataclass(frozen=True)
class EvidenceRef:
    seq: int
    sha256: str
    name: str | None
    size: int
    media_type: str | None
    at: dt.datetime
    by: str


@dataclass
class CaseState:
    """Everything the ledger says about one case."""

    case_id: str
    case_type: CaseType
    opened_at: dt.datetime
    opened_by: str
    summary: str = ""
    source_case_id: str | None = None
    branch_id: str | None = None
    typology: str | None = None
    parties: tuple[ProtectedParty, ...] = ()
    amount_at_risk: Money | None = None
    assignee: str | None = None
    verdict: Verdict | None = None
    verdict_by: str | None = None
    verdict_at: dt.datetime | None = None
    resolution: Resolution | None = None
    closed_at: dt.datetime | None = None
    closed_by: str | None = None
    amount_prevented: Money | None = None
    amount_returned: Money | None = None
    reported_to_police: bool = False
    evidence: list[EvidenceRef] = field(default_factory=list)
    entries: list[tuple[int, CaseEntryRecord]] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def status(self) -> str:
        return "open" if self.is_open else "closed"

    def age_days(self, now: dt.datetime) -> float:
        end = self.closed_at or now
        return (end - self.opened_at).total_seconds() / 86400

    def to_dict(self) -> dict[str, object]:
        def money(value: Money | None) -> dict[str, str] | None:
            return None if value is None else value.model_dump(mode="json")

        return {
            "case_id": self.case_id,
            "case_type": self.case_type.value,
            "status": self.status,
            "opened_at": self.opened_at.isoformat(),
            "opened_by": self.opened_by,
            "summary": self.summary,
            "source_case_id": self.source_case_id,
            "branch_id": self.branch_id,
            "typology": self.typology,
            "parties": [p.model_dump(mode="json", exclude_none=True) for p in self.parties],
            "amount_at_risk": money(self.amount_at_risk),
            "assignee": self.assignee,
            "verdict": None if self.verdict is None else self.verdict.value,
            "verdict_by": self.verdict_by,
            "resolution": None if self.resolution is None else self.resolution.value,
            "closed_at": None if self.closed_at is None else self.closed_at.isoformat(),
            "closed_by": self.closed_by,
            "amount_prevented": money(self.amount_prevented),
            "amount_returned": money(self.amount_returned),
            "reported_to_police": self.reported_to_police,
            "evidence": [
                {"seq": e.seq, "sha256": e.sha256, "name": e.name, "bytes": e.size}
                for e in self.evidence
            ],
            "entries": [
                {"seq": seq, **entry.model_dump(mode="json")} for seq, entry in self.entries
            ],
        }


def fold(entries: Iterable[tuple[int, CaseEntryRecord]]) -> CaseState | None:
    """The state of a case from its (seq, entry) pairs in seq order; None before it opened."""
    state: CaseState | None = None
    for seq, entry in entries:
        if entry.entry is CaseEntryKind.OPENED:
            if state is not None:
                continue  # a second opening (a lost race) changes nothing
            assert entry.case_type is not None
            state = CaseState(
                case_id=entry.case_id,
                case_type=entry.case_type,
                opened_at=entry.at,
                opened_by=entry.by,
                summary=entry.text,
                source_case_id=entry.source_case_id,
                branch_id=entry.branch_id,
                typology=entry.typology,
                parties=entry.parties,
                amount_at_risk=entry.amount_at_risk,
                assignee=entry.assignee,
            )
        if state is None:
            continue
        state.entries.append((seq, entry))
        kind = entry.entry
        if kind is CaseEntryKind.ASSIGNED:
            state.assignee = entry.assignee
        elif kind is CaseEntryKind.VERDICT:
            state.verdict = None if entry.verdict is Verdict.UNKNOWN else entry.verdict
            state.verdict_by, state.verdict_at = entry.by, entry.at
        elif kind is CaseEntryKind.EVIDENCE_ATTACHED:
            assert entry.evidence_sha256 is not None and entry.evidence_bytes is not None
            state.evidence.append(
                EvidenceRef(
                    seq,
                    entry.evidence_sha256,
                    entry.evidence_name,
                    entry.evidence_bytes,
                    entry.evidence_media_type,
                    entry.at,
                    entry.by,
                )
            )
        elif kind in (CaseEntryKind.AMOUNTS, CaseEntryKind.CLOSED):
            if entry.amount_prevented is not None:
                state.amount_prevented = entry.amount_prevented
            if entry.amount_returned is not None:
                state.amount_returned = entry.amount_returned
            if entry.reported_to_police is not None:
                state.reported_to_police = entry.reported_to_police
            if kind is CaseEntryKind.CLOSED:
                state.resolution = entry.resolution
                state.closed_at, state.closed_by = entry.at, entry.by
    return state
