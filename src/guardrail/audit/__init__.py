"""Tamper-evident audit trail: every decision and counter-session step, personal data protected,
hash-chained and signed; verification and reports. Store implementers find the store protocol
in ``guardrail.audit.store``."""

from guardrail.audit.dashboard import render_dashboard
from guardrail.audit.keys import KEY_ENV_VAR, AuditKeyError, AuditKeys, InsecureAuditKeyWarning
from guardrail.audit.log import AuditLog, read_records, verify_log
from guardrail.audit.masking import DEFAULT_POLICY, FieldClass, Masker, MaskingPolicy, Protection
from guardrail.audit.period_report import PeriodReport, ReportError, sqlite_report, store_report
from guardrail.audit.records import AuditRecord, CaseEntryRecord, DecisionRecord, SessionStepRecord
from guardrail.audit.report import AuditReport, GroupBy, build_report, counted_kind
from guardrail.audit.sqlite_store import SQLiteStore
from guardrail.audit.store import AuditStore, AuditStoreError
from guardrail.audit.verify import ProblemKind, VerifyProblem, VerifyReport
from guardrail.model.session import Outcome, SessionStep, StepKind

__all__ = [
    "DEFAULT_POLICY",
    "KEY_ENV_VAR",
    "AuditKeyError",
    "AuditKeys",
    "AuditLog",
    "AuditRecord",
    "AuditReport",
    "AuditStore",
    "AuditStoreError",
    "CaseEntryRecord",
    "DecisionRecord",
    "FieldClass",
    "GroupBy",
    "InsecureAuditKeyWarning",
    "Masker",
    "MaskingPolicy",
    "Outcome",
    "PeriodReport",
    "ProblemKind",
    "Protection",
    "ReportError",
    "SQLiteStore",
    "SessionStep",
    "SessionStepRecord",
    "StepKind",
    "VerifyProblem",
    "VerifyReport",
    "build_report",
    "counted_kind",
    "read_records",
    "render_dashboard",
    "sqlite_report",
    "store_report",
    "verify_log",
]
