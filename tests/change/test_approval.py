"""Issue 13: maker-checker approval; production Guards refuse unapproved or changed packs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from guardrail.audit.keys import AuditKeys
from guardrail.audit.log import AuditLog
from guardrail.audit.records import ControlRecord
from guardrail.cli import main
from guardrail.guard import Guard
from guardrail.lang import load_pack
from guardrail.lang.approval import ApprovalError
from support import STARTER

SECRET = "approval-test-secret-0123456789abcdef"


@pytest.fixture
def pack_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GUARDRAIL_AUDIT_KEY", SECRET)
    monkeypatch.delenv("GUARDRAIL_APPROVERS", raising=False)
    target = tmp_path / "starter"
    shutil.copytree(STARTER, target)
    return target


def _key() -> bytes:
    return AuditKeys.from_secret(SECRET.encode()).approval


def test_production_guard_needs_an_approval_for_the_exact_content(
    pack_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ApprovalError, match="has no approval"):
        Guard.from_path(pack_dir, production=True, approval_key=_key())
    Guard.from_path(pack_dir)  # development mode: no approval needed
    audit = tmp_path / "audit.sqlite"
    assert (
        main(
            [
                "pack",
                "approve",
                str(pack_dir),
                "--maker",
                "maker-1",
                "--by",
                "checker-2",
                "--audit",
                str(audit),
            ]
        )
        == 0
    )
    assert "approved content" in capsys.readouterr().out
    manifest = json.loads((pack_dir / "approval.json").read_text())
    assert manifest["approver"] == "checker-2"
    assert manifest["content_hash"] == load_pack(pack_dir).content_hash
    Guard.from_path(pack_dir, production=True, approval_key=_key())
    assert main(["pack", "verify", str(pack_dir)]) == 0
    with AuditLog.open(audit, keys=AuditKeys.from_env()) as log:
        controls = [r.payload for r in log.records() if isinstance(r.payload, ControlRecord)]
    assert [(c.control.value, c.actor) for c in controls] == [("pack_approved", "checker-2")]

    # watchlist data is content: changing it voids the approval
    listed = pack_dir / "data" / "involved_accounts.csv"
    listed.write_text(listed.read_text() + "6222999988887777,added after approval\n")
    with pytest.raises(ApprovalError, match="changed after approval"):
        Guard.from_path(pack_dir, production=True, approval_key=_key())
    assert main(["pack", "verify", str(pack_dir)]) == 1


def test_forged_or_foreign_approvals_are_refused(pack_dir: Path) -> None:
    assert main(["pack", "approve", str(pack_dir), "--maker", "maker-1", "--by", "checker-2"]) == 0
    with pytest.raises(ApprovalError, match="key id"):
        Guard.from_path(
            pack_dir, production=True, approval_key=AuditKeys.from_secret(b"x" * 32).approval
        )
    manifest_path = pack_dir / "approval.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["approver"] = "somebody-else"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ApprovalError, match="signature does not verify"):
        Guard.from_path(pack_dir, production=True, approval_key=_key())
    with pytest.raises(ApprovalError, match="needs the approval key"):
        Guard.from_path(pack_dir, production=True)


def test_only_listed_approvers_may_approve(
    pack_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GUARDRAIL_APPROVERS", "checker-1, checker-2")
    assert main(["pack", "approve", str(pack_dir), "--maker", "maker-1", "--by", "maker-9"]) == 2
    assert "not an authorised approver" in capsys.readouterr().err
    assert not (pack_dir / "approval.json").exists()
    assert main(["pack", "approve", str(pack_dir), "--maker", "maker-1", "--by", "checker-1"]) == 0


def test_the_maker_cannot_approve_their_own_change(
    pack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pack", "approve", str(pack_dir), "--maker", "Ana", "--by", " ana "]) == 2
    assert "cannot also approve it" in capsys.readouterr().err
    assert not (pack_dir / "approval.json").exists()
    assert main(["pack", "approve", str(pack_dir), "--maker", "ana", "--by", "checker-2"]) == 0
    manifest = json.loads((pack_dir / "approval.json").read_text())
    assert (manifest["maker"], manifest["approver"]) == ("ana", "checker-2")
    assert "made by ana" in capsys.readouterr().out
    Guard.from_path(pack_dir, production=True, approval_key=_key())


def test_a_manifest_without_a_maker_must_be_redone(pack_dir: Path) -> None:
    assert main(["pack", "approve", str(pack_dir), "--maker", "ana", "--by", "checker-2"]) == 0
    manifest_path = pack_dir / "approval.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format"] = 1
    del manifest["maker"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ApprovalError, match="does not name the maker"):
        Guard.from_path(pack_dir, production=True, approval_key=_key())
