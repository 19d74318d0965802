"""Tamper-evident audit trail: every decision and counter-session step, personal data protected,
hash-chained and signed; verification, reports and a pluggable store."""

from guardrail.audit.chain import ProblemKind, VerifyProblem, VerifyReport
from guardrail.audit.cli import add_audit_subcommands, report_main, verify_main
from guardrail.audit.dashboard import DashboardData, render_dashboard
from guardrail.audit.intervals import wilson
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
from guardrail.audit.period_report import (
    PeriodReport,
    ReportError,
    RulePrecision,
    postgres_report,
    sqlite_report,
    store_report,
)
from guardrail.audit.records import (
    PREVENTED_OUTCOMES,
    AuditRecord,
    CaseEntryKind,
    CaseEntryRecord,
    CaseType,
    DecisionRecord,
    Outcome,
    SessionStepRecord,
    StepKind,
    Verdict,
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
    "CaseEntryKind",
    "CaseEntryRecord",
    "CaseType",
    "Checkpoint",
    "DashboardData",
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
    "PeriodReport",
    "ProblemKind",
    "Protection",
    "ReportError",
    "RulePrecision",
    "RuleStats",
    "SQLiteStore",
    "SessionStepRecord",
    "StepKind",
    "StoredRecord",
    "Tally",
    "Verdict",
    "VerifyProblem",
    "VerifyReport",
    "add_audit_subcommands",
    "build_report",
    "counted_kind",
    "postgres_report",
    "read_records",
    "render_dashboard",
    "report_main",
    "sqlite_report",
    "store_report",
    "verify_log",
    "verify_main",
    "wilson",
]
