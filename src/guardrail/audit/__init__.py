"""Tamper-evident audit trail: every decision and counter-session step, personal data protected,
hash-chained and signed; verification, reports and a pluggable store."""

from guardrail.audit.cli import add_audit_subcommands, report_main, verify_main
from guardrail.audit.keys import (
    KEY_ENV_VAR,
    AuditKeyError,
    AuditKeys,
    InsecureAuditKeyWarning,
)
from guardrail.audit.log import AuditLog, read_records, verify_log
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
from guardrail.audit.report import (
    AuditReport,
    GroupBy,
    GroupReport,
    RuleStats,
    Tally,
    build_report,
    counted_kind,
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
from guardrail.audit.verify import ProblemKind, VerifyProblem, VerifyReport

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
    "AuditReport",
    "AuditStore",
    "AuditStoreError",
    "Checkpoint",
    "DecisionRecord",
    "FieldClass",
    "GroupBy",
    "GroupReport",
    "Head",
    "InsecureAuditKeyWarning",
    "LogMeta",
    "Masker",
    "MaskingPolicy",
    "Outcome",
    "ProblemKind",
    "Protection",
    "RuleStats",
    "SQLiteStore",
    "SessionStepRecord",
    "StepKind",
    "StoredRecord",
    "Tally",
    "VerifyProblem",
    "VerifyReport",
    "add_audit_subcommands",
    "build_report",
    "counted_kind",
    "read_records",
    "report_main",
    "verify_log",
    "verify_main",
]
