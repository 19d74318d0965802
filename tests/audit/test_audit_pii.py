"""The log must not leak personal data: a scan of its bytes finds no raw ID number, phone
number, account number or name; equal values still correlate through keyed hashes."""

from __future__ import annotations

import datetime as dt
import tempfile
import warnings
from pathlib import Path

import pytest
from audit_factory import SECRET, make_decision, make_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.audit import (
    AuditKeyError,
    AuditKeys,
    AuditLog,
    FieldClass,
    InsecureAuditKeyWarning,
    Masker,
    MaskingPolicy,
    Protection,
)
from guardrail.audit.records import DecisionRecord
from guardrail.model import Action, Answers
from guardrail.model.session import SessionStep

RAW_ID = "110101195001011234"
RAW_PHONE = "13800138000"
RAW_ACCOUNT = "6222020200112233445"
RAW_PAYEE_ACCOUNT = "6217000010012345678"
RAW_PAYEE_PHONE = "13912345678"
NAME = "张伟"


def _files(path: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(str(path) + suffix)
        if candidate.exists():
            data += candidate.read_bytes()
    return data


def _log_everything(log: AuditLog, i: int, id_number: str, phone: str, account: str) -> None:
    event = make_event(
        i,
        id_number=id_number,
        phone=phone,
        account=account,
        name=NAME,
        notes=f"customer {NAME} gave phone {phone}, id {id_number}, card {account}; "
        f"caller used 0571-8888 7777 and {RAW_PAYEE_ACCOUNT}",
    )
    log.log_decision(event, make_decision(event, Action.INTERCEPT, ("R1", "R2")))
    at = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC)
    log.log_session_step(
        SessionStep(
            case_id=event.event_id,
            kind="answers_recorded",
            at=at,
            teller_id="T01",
            answers=Answers(purpose_detail=f"transfer to safe account {RAW_PAYEE_ACCOUNT}"),
            reason=f"{NAME} says the police ({phone}) told him to",
            event=event,
        )
    )
    log.log_session_step(
        SessionStep(
            case_id=event.event_id,
            kind="outcome_recorded",
            at=at,
            teller_id="T01",
            outcome="police_notified",
            confirmed_fraud=True,
            reason=f"called 110 about {id_number}",
        )
    )


def _assert_clean(data: bytes, *raw: str) -> None:
    for value in raw:
        assert value.encode() not in data, f"{value!r} leaked into the log"


def test_no_raw_personal_data_in_db_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog.open(path, keys=AuditKeys.from_secret(SECRET))
    for i in range(20):
        _log_everything(log, i, RAW_ID, RAW_PHONE, RAW_ACCOUNT)
    assert Path(str(path) + "-wal").exists()  # scan while records still sit in the WAL
    values = (RAW_ID, RAW_PHONE, RAW_ACCOUNT, RAW_PAYEE_ACCOUNT, RAW_PAYEE_PHONE, NAME, "李娜")
    _assert_clean(_files(path), *values, "88887777")
    log.close()
    _assert_clean(_files(path), *values)
    assert len(path.read_bytes()) > 10_000


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    id_number=st.from_regex(r"\A[1-6][0-9]{16}[0-9X]\Z"),
    phone=st.from_regex(r"\A1[3-9][0-9]{9}\Z"),
    account=st.from_regex(r"\A62[0-9]{14,17}\Z"),
)
def test_no_raw_personal_data_property(id_number: str, phone: str, account: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        log = AuditLog.open(path, keys=AuditKeys.from_secret(SECRET))
        _log_everything(log, 1, id_number, phone, account)
        _assert_clean(_files(path), id_number, phone, account)
        log.close()


def test_equal_values_correlate(tmp_path: Path) -> None:
    with AuditLog.open(tmp_path / "a.db", keys=AuditKeys.from_secret(SECRET)) as log:
        a = make_event(1, phone="+86 138-0013-8000")
        b = make_event(2, phone=RAW_PHONE, counterparty_phone=RAW_PHONE)
        c = make_event(3, phone="13800138001")
        for event in (a, b, c):
            log.log_decision(event, make_decision(event, Action.NOTICE))
        records = [r.payload for r in log.records()]
    assert all(isinstance(r, DecisionRecord) for r in records)
    phones = [r.event.customer.phone for r in records if isinstance(r, DecisionRecord)]
    assert phones[0] == phones[1] != phones[2]
    assert phones[0] is not None and phones[0].startswith("h:")
    second = records[1]
    assert isinstance(second, DecisionRecord) and second.event.counterparty is not None
    assert second.event.counterparty.phone == phones[1]
    ids = {r.event.customer.id_number for r in records if isinstance(r, DecisionRecord)}
    assert len(ids) == 1


def test_masking_forms_and_policy() -> None:
    masker = Masker(SECRET, MaskingPolicy(account=Protection.MASK, phone=Protection.MASK_AND_HASH))
    assert masker.protect(FieldClass.ACCOUNT, RAW_ACCOUNT) == "6222***********3445"
    assert masker.mask(FieldClass.PHONE, RAW_PHONE) == "138****8000"
    assert masker.mask(FieldClass.ID_NUMBER, RAW_ID) == "1101**********1234"
    assert masker.mask(FieldClass.NAME, NAME) == "张*"
    protected = masker.protect(FieldClass.PHONE, RAW_PHONE)
    assert protected is not None and protected.startswith("138****8000|h:")
    dropper = Masker(SECRET, MaskingPolicy(name=Protection.DROP, free_text=Protection.DROP))
    assert dropper.protect(FieldClass.NAME, NAME) is None
    assert dropper.redact_text("anything") == ""
    other_key = Masker(b"another-secret-key-0123456789")
    assert other_key.keyed_hash(FieldClass.PHONE, RAW_PHONE) != masker.keyed_hash(
        FieldClass.PHONE, RAW_PHONE
    )
    redacted = masker.redact_text("amount 50000 ref 12345678 tel 138 0013 8000")
    assert "50000" in redacted and "12345678" not in redacted and "8000" not in redacted


def test_key_from_environment() -> None:
    with pytest.raises(AuditKeyError, match="GUARDRAIL_AUDIT_KEY is not set"):
        AuditKeys.from_env({})
    with pytest.raises(AuditKeyError, match="too short"):
        AuditKeys.from_env({"GUARDRAIL_AUDIT_KEY": "short"})
    hexed = AuditKeys.from_env({"GUARDRAIL_AUDIT_KEY": "hex:" + "ab" * 32})
    assert hexed.signing_key_id == AuditKeys.from_secret(bytes.fromhex("ab" * 32)).signing_key_id
    with pytest.warns(InsecureAuditKeyWarning, match="INSECURE DEVELOPMENT KEY"):
        dev = AuditKeys.from_env({}, strict=False)
    assert dev.insecure
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not AuditKeys.from_secret(SECRET).insecure
