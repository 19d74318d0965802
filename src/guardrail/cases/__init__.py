"""The case ledger: cases opened from screenings, complaints (including complaints about
guardrail's own friction) or by hand; notes, evidence by content hash, assignment, verdicts
learnt later, amounts prevented or returned, and the close. Every entry is a chained, signed
record in the audit log."""

from guardrail.audit.records import CaseEntryKind, CaseType, PartyRole, Resolution, Verdict
from guardrail.cases.errors import CaseError, EvidenceError
from guardrail.cases.evidence import EvidenceProblem, EvidenceStore, default_evidence_root
from guardrail.cases.ledger import CaseLedger, CasePolicy, LedgerVerifyReport, Party
from guardrail.cases.state import CaseState, EvidenceRef

__all__ = [
    "CaseEntryKind",
    "CaseError",
    "CaseLedger",
    "CasePolicy",
    "CaseState",
    "CaseType",
    "EvidenceError",
    "EvidenceProblem",
    "EvidenceRef",
    "EvidenceStore",
    "LedgerVerifyReport",
    "Party",
    "PartyRole",
    "Resolution",
    "Verdict",
    "default_evidence_root",
]
