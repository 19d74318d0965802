"""The case ledger over HTTP, without HTTP: the same operations as ``guardrail cases``, for
supervisors and auditors, each entry written into the service's audit chain by the key's
holder. Parties and free text are protected by the ledger before anything is written; what
comes back is the case as the ledger holds it (protected values only)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from guardrail.audit.log import AuditLog
from guardrail.audit.records import CaseType
from guardrail.audit.store import AuditStoreError
from guardrail.cases import CaseError, CaseLedger, CaseState, EvidenceError, EvidenceStore, Party
from guardrail.cases.evidence import default_evidence_root
from guardrail.errors import StoreError
from guardrail.model.money import Money
from guardrail.server import schemas
from guardrail.server.auth import require
from guardrail.server.config import ServeConfig
from guardrail.server.keys import Principal, Role
from guardrail.server.metrics import Metrics
from guardrail.server.problems import ProblemError, invalid, not_found, unavailable
from guardrail.stores import StoreKind, parse_store_url

logger = logging.getLogger("guardrail.server")

CASE_OFFICERS = (Role.SUPERVISOR, Role.AUDITOR)
_T = TypeVar("_T")


def evidence_root(config: ServeConfig) -> Path:
    """Where evidence files live: the configured folder; else beside a SQLite audit log (where
    ``guardrail cases verify LOG`` looks); else ``evidence/`` beside the config file."""
    if config.stores.evidence is not None:
        return Path(config.stores.evidence)
    parsed = parse_store_url(config.stores.audit)
    if parsed.kind is StoreKind.SQLITE and parsed.path is not None:
        return default_evidence_root(parsed.path)
    source = Path(config.source)
    return (source.resolve().parent if source.is_file() else Path.cwd()) / "evidence"


class CaseDesk:
    """Case operations for authenticated principals; errors become problems."""

    def __init__(self, ledger: CaseLedger, metrics: Metrics) -> None:
        self.ledger = ledger
        self.metrics = metrics

    # -- reading -----------------------------------------------------------------------------
    def list(self, principal: Principal, status: str) -> schemas.CaseList:
        require(principal, *CASE_OFFICERS, action="read cases")
        states = self._stored(lambda: self.ledger.cases(status))
        return schemas.CaseList(cases=[_summary(state) for state in states])

    def show(self, principal: Principal, case_id: str) -> dict[str, Any]:
        require(principal, *CASE_OFFICERS, action="read cases")
        return self._state(case_id).to_dict()

    def evidence(self, principal: Principal, case_id: str, sha256: str) -> tuple[bytes, str]:
        """The bytes of one evidence file of the case (checked against the chain's hash)."""
        require(principal, *CASE_OFFICERS, action="read case evidence")
        state = self._state(case_id)
        ref = next((e for e in state.evidence if e.sha256 == sha256), None)
        if ref is None:
            raise not_found(f"case {case_id} has no evidence {sha256[:64]!r}")
        try:
            data = self.ledger.evidence.get(sha256)
        except EvidenceError as error:
            logger.error("evidence of case %s unreadable: %s", case_id, error)
            raise ProblemError(
                409,
                "evidence-tampered",
                "Evidence missing or modified",
                f"evidence {sha256[:16]}... of case {case_id} is missing or no longer matches "
                "the hash in the chain",
            ) from None
        return data, ref.media_type or "application/octet-stream"

    # -- writing -----------------------------------------------------------------------------
    def open(self, principal: Principal, body: schemas.CaseOpenRequest) -> schemas.CaseWritten:
        require(principal, *CASE_OFFICERS, action="open cases")
        if body.case_id is not None and self._find(body.case_id) is not None:
            raise _refused(f"case {body.case_id}: already in the ledger")
        case_id = self._write(
            lambda: self.ledger.open(
                CaseType(body.case_type),
                by=principal.name,
                text=body.text,
                at=body.at,
                case_id=body.case_id,
                source_case_id=body.source_case_id,
                branch_id=body.branch_id,
                typology=body.typology,
                parties=[Party(**p.model_dump()) for p in body.parties],
                amount_at_risk=_money(body.amount_at_risk),
                assignee=body.assignee,
                occurred_on=body.occurred_on,
            )
        )
        return self._written(case_id)

    def note(
        self, principal: Principal, case_id: str, body: schemas.CaseNoteRequest
    ) -> schemas.CaseWritten:
        require(principal, *CASE_OFFICERS, action="write case notes")
        self._state(case_id)
        seq = self._write(lambda: self.ledger.note(case_id, body.text, by=principal.name))
        return self._written(case_id, seq)

    def attach(
        self,
        principal: Principal,
        case_id: str,
        data: bytes,
        *,
        name: str | None,
        media_type: str | None,
        text: str,
    ) -> schemas.CaseWritten:
        require(principal, *CASE_OFFICERS, action="attach case evidence")
        self._state(case_id)
        if not data:
            raise invalid([("(body)", "the evidence file is empty")])
        digest = self._write(
            lambda: self.ledger.attach(
                case_id, data, by=principal.name, name=name, media_type=media_type, text=text
            )
        )
        state = self._state(case_id)
        seq = max(e.seq for e in state.evidence if e.sha256 == digest)
        return schemas.CaseWritten(case_id=case_id, seq=seq, sha256=digest, case=state.to_dict())

    def assign(
        self, principal: Principal, case_id: str, body: schemas.CaseAssignRequest
    ) -> schemas.CaseWritten:
        require(principal, *CASE_OFFICERS, action="assign cases")
        self._state(case_id)
        seq = self._write(lambda: self.ledger.assign(case_id, body.assignee, by=principal.name))
        return self._written(case_id, seq)

    def verdict(
        self, principal: Principal, case_id: str, body: schemas.CaseVerdictRequest
    ) -> schemas.CaseWritten:
        require(principal, *CASE_OFFICERS, action="record verdicts")
        self._state(case_id)
        seq = self._write(
            lambda: self.ledger.verdict(case_id, body.verdict, by=principal.name, text=body.text)
        )
        return self._written(case_id, seq)

    def amounts(
        self, principal: Principal, case_id: str, body: schemas.CaseAmountsRequest
    ) -> schemas.CaseWritten:
        require(principal, *CASE_OFFICERS, action="record case amounts")
        self._state(case_id)
        if body.prevented is None and body.returned is None and body.reported_to_police is None:
            raise invalid([("prevented", "give prevented, returned or reported_to_police")])
        seq = self._write(
            lambda: self.ledger.amounts(
                case_id,
                by=principal.name,
                prevented=_money(body.prevented),
                returned=_money(body.returned),
                reported_to_police=body.reported_to_police,
                text=body.text,
            )
        )
        return self._written(case_id, seq)

    def close(
        self, principal: Principal, case_id: str, body: schemas.CaseCloseRequest
    ) -> schemas.CaseWritten:
        require(principal, *CASE_OFFICERS, action="close cases")
        self._state(case_id)
        seq = self._write(
            lambda: self.ledger.close(
                case_id,
                body.resolution,
                by=principal.name,
                text=body.text,
                prevented=_money(body.prevented),
                returned=_money(body.returned),
                reported_to_police=body.reported_to_police,
            )
        )
        return self._written(case_id, seq)

    # -- machinery ---------------------------------------------------------------------------
    def _find(self, case_id: str) -> CaseState | None:
        return self._stored(lambda: self.ledger.find(case_id))

    def _state(self, case_id: str) -> CaseState:
        state = self._find(case_id)
        if state is None:
            raise not_found(f"no case {case_id[:64]!r} in the ledger")
        return state

    def _written(self, case_id: str, seq: int | None = None) -> schemas.CaseWritten:
        state = self._state(case_id)
        return schemas.CaseWritten(
            case_id=case_id,
            seq=state.entries[-1][0] if seq is None else seq,
            case=state.to_dict(),
        )

    def _write(self, operation: Callable[[], _T]) -> _T:
        """Run a ledger write; the ledger's refusal is a 409, a store failure a 503 whose
        details (paths, driver messages) stay in the server log."""
        try:
            return operation()
        except CaseError as error:
            raise _refused(str(error)) from None
        except (EvidenceError, AuditStoreError, StoreError, OSError) as error:
            raise self._unavailable("case ledger write", error) from None

    def _stored(self, operation: Callable[[], _T]) -> _T:
        try:
            return operation()
        except CaseError as error:
            raise invalid([("status", str(error))]) from None
        except (AuditStoreError, StoreError, OSError) as error:
            raise self._unavailable("case ledger read", error) from None

    def _unavailable(self, what: str, error: Exception) -> ProblemError:
        self.metrics.store_error("audit")
        reference = uuid.uuid4().hex[:12]
        logger.error("%s failed (%s): %s", what, reference, error)
        return unavailable(f"the case ledger could not be reached; retry ({reference})")


def _money(amount: schemas.AmountIn | None) -> Money | None:
    return None if amount is None else amount.to_money()


def _refused(detail: str) -> ProblemError:
    return ProblemError(409, "case-refused", "Case refused", detail)


def _summary(state: CaseState) -> dict[str, Any]:
    """A case without its entries (``show`` gives those)."""
    summary = state.to_dict()
    summary.pop("entries", None)
    summary["entries_count"] = len(state.entries)
    return summary


def case_desk(config: ServeConfig, audit: AuditLog, metrics: Metrics) -> CaseDesk:
    """The desk over the service's audit log and its evidence folder."""
    return CaseDesk(CaseLedger(audit, EvidenceStore(evidence_root(config))), metrics)
