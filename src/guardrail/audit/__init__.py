"""Tamper-evident audit trail: every decision and counter-session step, personal data protected,
hash-chained and signed; verification, reports and a pluggable store."""

from guardrail.audit.chain import ProblemKind, VerifyProblem, VerifyReport
from guardrail.audit.keys import (
    KEY_ENV_VAR,
    AuditKeyError,
    AuditKeys,
    InsecureAuditKeyWarning,
)
from guardrail.audit.log import AuditLog
from guardrail.audit.masking import (
    DEFAULT_POLICY,
    FieldClass,
    Masker,
    MaskingPolicy,
    Protection,
)
from guardrail.audit.records import (
    PREVENTED_OUTCOMES,
    AuditRecord,
    DecisionRecord,
    Outcome,
    SessionStepRecord,
    StepKind,
)
from guardrail.audit.sqlite_store import SQLiteStore
from guardrail.audit.store import (
    AppendConflict,
    AuditReader,
    AuditStore,
    AuditStoreError,
    Checkpoint,
    Head,
    LogMeta,
    StoredRecord,
)

__all__ = [
    "DEFAULT_POLICY",
    "KEY_ENV_VAR",
    "PREVENTED_OUTCOMES",
    "AppendConflict",
    "AuditKeyError",
    "AuditKeys",
    "AuditLog",
    "AuditReader",
    "AuditRecord",
    "AuditStore",
    "AuditStoreError",
    "Checkpoint",
    "DecisionRecord",
    "FieldClass",
    "Head",
    "InsecureAuditKeyWarning",
    "LogMeta",
    "Masker",
    "MaskingPolicy",
    "Outcome",
    "ProblemKind",
    "Protection",
    "SQLiteStore",
    "SessionStepRecord",
    "StepKind",
    "StoredRecord",
    "VerifyProblem",
    "VerifyReport",
]
