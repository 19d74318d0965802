"""One step kind per counter step: validation, byte-stable encoding, reports that count each
kind once, and logs written before the kinds existed still verifying and counting right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_factory import SECRET, T0, make_decision, make_event

from guardrail.audit import (
    AuditKeys,
    AuditLog,
    SessionStepRecord,
    SQLiteStore,
    StepKind,
    build_report,
    counted_kind,
    read_records,
    verify_log,
)
from guardrail.audit import log as log_module
from guardrail.audit.records import encode_payload
from guardrail.audit.store import Checkpoint, Head, LogMeta, StoredRecord
from guardrail.model import Action
from guardrail.model.session import SessionStep

OLD_LOG = Path(__file__).resolve().parent / "data" / "log_before_step_kinds.json"
# The keys every session step encoded to before ``refused_step`` existed.
KEYS_BEFORE = {
    "amount",
    "answers",
    "at",
    "case_id",
    "confirmed_fraud",
    "event_id",
    "outcome",
    "override_from",
    "override_to",
    "question_ids",
    "reason",
    "step",
    "supervisor_id",
    "teller_id",
    "type",
}


def step(kind: str, case_id: str = "E1", **fields: object) -> SessionStepRecord:
    return SessionStepRecord.model_validate(
        {"case_id": case_id, "step": kind, "at": T0, "teller_id": "T01", **fields}
    )


def test_every_new_kind_exists() -> None:
    for name in (
        "observations_recorded",
        "notice_acknowledged",
        "risk_acknowledged",
        "teller_override",
        "supervisor_approved",
        "supervisor_rejected",
        "step_refused",
    ):
        assert StepKind(name).value == name
    assert StepKind("acknowledged") is StepKind.ACKNOWLEDGED  # old records still parse


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("supervisor_approved", {}, "supervisor_id: required"),
        ("supervisor_rejected", {"override_to": "intercept"}, "supervisor_id: required"),
        ("teller_override", {}, "override_to: required"),
        ("observations_recorded", {"override_to": "hold"}, "only allowed on"),
        (
            "supervisor_approved",
            {"supervisor_id": "S1", "override_from": "review", "override_to": "proceed"},
            "from == to",
        ),
        ("step_refused", {}, "refused_step: required"),
        ("escalated", {"refused_step": "close"}, "only allowed on step_refused"),
        ("notice_acknowledged", {"outcome": "executed"}, "outcome: only allowed"),
    ],
)
def test_step_fields_are_checked_per_kind(
    kind: str, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        step(kind, **fields)


def test_action_changes_carry_from_and_to() -> None:
    raised = step("teller_override", override_from="notice", override_to="intercept")
    assert (raised.override_from, raised.override_to) == ("notice", "intercept")
    approved = step(
        "supervisor_approved", supervisor_id="S1", override_from="review", override_to="review"
    )
    assert approved.override_to == "review"
    rejected = step("supervisor_rejected", supervisor_id="S1", override_to="intercept")
    assert rejected.override_to == "intercept"


def test_other_steps_encode_as_before_and_a_refusal_names_its_step() -> None:
    plain = json.loads(encode_payload(step("escalated", reason="x")))
    assert set(plain) == KEYS_BEFORE
    refused = step("step_refused", refused_step="record_outcome", reason="waiting")
    data = json.loads(encode_payload(refused))
    assert set(data) == KEYS_BEFORE | {"refused_step"}
    assert data["refused_step"] == "record_outcome"


def test_report_counts_each_kind_once(tmp_path: Path) -> None:
    with AuditLog.open(tmp_path / "a.db", keys=AuditKeys.from_secret(SECRET)) as log:
        event = make_event(1)
        log.log_decision(event, make_decision(event, Action.REVIEW, ("R1",)))
        sup = {"supervisor_id": "S1"}
        steps: list[tuple[str, dict[str, str]]] = [
            ("observations_recorded", {}),
            ("notice_acknowledged", {}),
            ("teller_override", {"override_from": "review", "override_to": "hold"}),
            ("escalated", {}),
            ("step_refused", {"refused_step": "record_outcome"}),
            ("supervisor_approved", {**sup, "override_from": "hold", "override_to": "hold"}),
            ("supervisor_rejected", {**sup, "override_to": "intercept"}),
            ("supervisor_override", {**sup, "override_to": "review"}),
            ("step_refused", {"refused_step": "close"}),
            ("risk_acknowledged", {}),
        ]
        for kind, fields in steps:
            log.append([step(kind, event.event_id, **fields)])
        report = build_report(log.records())
    t = report.total
    assert (t.overrides, t.teller_overrides, t.escalations) == (1, 1, 1)
    assert (t.approvals, t.rejections, t.refusals) == (1, 1, 2)
    data = report.to_dict()["total"]
    assert isinstance(data, dict)
    assert {k: data[k] for k in ("approvals", "rejections", "refusals")} == {
        "approvals": 1,
        "rejections": 1,
        "refusals": 2,
    }
    measures = {row.split(",")[2] for row in report.to_csv().splitlines()[1:]}
    assert {"overrides", "teller_overrides", "approvals", "rejections", "refusals"} <= measures
    assert "refused steps: 2" in report.to_text()


def restore_old_log(path: Path) -> None:
    """Rebuild, row for row, a log written by the counter session before the audit log had a
    kind per step (``data/log_before_step_kinds.json``: three sessions, one approved after a
    teller raise, one rejected, one overridden)."""
    data = json.loads(OLD_LOG.read_text(encoding="utf-8"))
    store = SQLiteStore(path)
    try:
        store.initialize(LogMeta(**data["meta"]), Head(0, "", "", ""))
        store.append(
            [StoredRecord(**row) for row in data["records"]],
            head=Head(**data["head"]),
            checkpoints=[Checkpoint(**c) for c in data["checkpoints"]],
            expected_seq=0,
        )
    finally:
        store.close()


def test_a_log_written_before_the_new_kinds_still_verifies_and_counts_right(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    restore_old_log(path)
    keys = AuditKeys.from_secret(SECRET)
    report = verify_log(path, keys.signing)
    assert report.ok and report.records == 27 and report.signatures_checked
    steps = [r.payload for r in read_records(path) if isinstance(r.payload, SessionStepRecord)]
    assert StepKind.ACKNOWLEDGED in {s.step for s in steps}  # the legacy kind parses
    counted = [counted_kind(s) for s in steps]
    assert counted.count(StepKind.SUPERVISOR_OVERRIDE) == 1
    assert counted.count(StepKind.SUPERVISOR_APPROVED) == 1
    assert counted.count(StepKind.SUPERVISOR_REJECTED) == 1
    assert counted.count(StepKind.TELLER_OVERRIDE) == 1
    assert counted.count(StepKind.OBSERVATIONS_RECORDED) == 1
    assert counted.count(StepKind.NOTICE_ACKNOWLEDGED) == 2
    assert counted.count(StepKind.RISK_ACKNOWLEDGED) == 2
    total = build_report(read_records(path)).total
    # before: overrides 3 (approve and reject filed as overrides), escalations 4 (a raise too)
    assert (total.overrides, total.escalations, total.teller_overrides) == (1, 3, 1)
    assert (total.approvals, total.rejections, total.refusals) == (1, 1, 0)
    # and the old log takes new records: the chain goes on across the change
    with AuditLog.open(path, keys=keys) as log:
        log.log_session_step(
            SessionStep(
                case_id="old-b", kind="step_refused", at=T0, teller_id="T0001", refused_step="close"
            )
        )
        assert log.verify().ok


def test_verification_does_not_read_the_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kind this version does not know (written by a later one) verifies all the same: the
    chain covers the stored bytes, not the list of kinds."""
    real = log_module.encode_payload

    def from_the_future(payload: object) -> bytes:
        data = real(payload)  # type: ignore[arg-type]
        return data.replace(b'"step":"escalated"', b'"step":"some_later_kind"')

    path = tmp_path / "future.db"
    keys = AuditKeys.from_secret(SECRET)
    with AuditLog.open(path, keys=keys) as log:
        log.log_session_step(
            SessionStep(case_id="E1", kind="questions_asked", at=T0, teller_id="T01")
        )
        monkeypatch.setattr(log_module, "encode_payload", from_the_future)
        log.log_session_step(SessionStep(case_id="E1", kind="escalated", at=T0, teller_id="T01"))
        monkeypatch.undo()
        log.log_session_step(SessionStep(case_id="E1", kind="closed", at=T0, teller_id="T01"))
        assert log.verify().ok
    assert verify_log(path, keys.signing).ok
    assert verify_log(path, None).ok


def test_a_long_reason_is_cut_after_redaction(tmp_path: Path) -> None:
    event = make_event(1)
    phone = event.customer.phone
    assert phone is not None
    with AuditLog.open(tmp_path / "r.db", keys=AuditKeys.from_secret(SECRET)) as log:
        record = log.session_step_record(
            SessionStep(
                case_id=event.event_id,
                kind="step_refused",
                at=T0,
                teller_id="T01",
                refused_step="record_answers",
                reason=("x" * 3990) + f" 电话{phone}",
                event=event,
            )
        )
    assert len(record.reason) == 4000 and record.reason.endswith(" [...]")
    assert phone[:6] not in record.reason  # redacted first, then cut: no partial value left
