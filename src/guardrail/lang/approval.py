"""Maker-checker approval of a pack: a signed manifest naming its exact content.

``guardrail pack approve PACK --maker ID --by ID`` writes ``approval.json`` in the pack
folder: the pack's content hash (every rule, declaration and watchlist file of every layer),
the maker's and the approver's ids (two different people: four eyes), the time, and an
HMAC-SHA256 over those fields. A Guard in production mode
refuses a pack whose manifest is missing, is for other content, or does not verify.

HMAC, not a public-key signature: the key is derived from the audit log's master secret
(``GUARDRAIL_AUDIT_KEY``), which every production host already holds, and no new dependency
or key distribution is needed. The cost: anyone holding that secret can approve a pack, so
the secret must stay with the people and hosts allowed to approve and verify.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

from guardrail.errors import GuardrailError
from guardrail.lang.pack import APPROVAL_FILE, Pack

MANIFEST_FORMAT = 2  # 2: the maker is named and signed; format 1 manifests must be redone


class ApprovalError(GuardrailError):
    """A pack has no valid approval for its exact content; the message says what is wrong."""


@dataclass(frozen=True)
class Approval:
    format: int
    pack: str
    version: str
    content_hash: str
    maker: str
    approver: str
    approved_at: str  # ISO 8601, UTC
    key_id: str
    signature: str

    def signed_fields(self) -> bytes:
        fields = asdict(self)
        fields.pop("signature")
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def key_id(key: bytes) -> str:
    return hmac.new(key, b"guardrail.approval.key-id/1", hashlib.sha256).hexdigest()[:16]


def same_person(first: str, second: str) -> bool:
    """Whether two ids name one person (case, width and surrounding space ignored)."""
    return unicodedata.normalize("NFKC", first).strip().casefold() == (
        unicodedata.normalize("NFKC", second).strip().casefold()
    )


def approve(pack: Pack, approver: str, key: bytes, *, maker: str, now: dt.datetime) -> Approval:
    """Sign ``pack``'s content as made by ``maker`` and approved by ``approver`` (two people)
    and write its manifest atomically."""
    approver = approver.strip()
    maker = maker.strip()
    if not approver:
        raise ApprovalError("an approval needs the approver's id (--by)")
    if not maker:
        raise ApprovalError("an approval needs the id of the person who made the change (--maker)")
    if same_person(maker, approver):
        raise ApprovalError(
            f"{approver!r} made this change and cannot also approve it: maker-checker needs a "
            "second person"
        )
    unsigned = Approval(
        format=MANIFEST_FORMAT,
        pack=pack.meta.name,
        version=pack.meta.version,
        content_hash=pack.content_hash,
        maker=maker,
        approver=approver,
        approved_at=now.astimezone(dt.UTC).isoformat(),
        key_id=key_id(key),
        signature="",
    )
    signature = hmac.new(key, unsigned.signed_fields(), hashlib.sha256).hexdigest()
    approval = Approval(**{**asdict(unsigned), "signature": signature})
    target = pack.root / APPROVAL_FILE
    temporary = target.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(asdict(approval), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, target)
    return approval


def read_approval(root: Path) -> Approval:
    path = root / APPROVAL_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ApprovalError(
            f"{path}: the pack has no approval; a checker must run "
            f"'guardrail pack approve {root} --by ID' before it can run in production"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ApprovalError(f"{path}: unreadable approval manifest: {error}") from None
    if not isinstance(data, dict):
        raise ApprovalError(f"{path}: not an approval manifest (expected a JSON object)")
    if data.get("format") == 1:
        raise ApprovalError(
            f"{path}: a format 1 manifest does not name the maker; approve the pack again "
            f"with 'guardrail pack approve {root} --maker ID --by ID'"
        )
    try:
        return Approval(**data)
    except TypeError:
        raise ApprovalError(f"{path}: not an approval manifest (unexpected fields)") from None


def verify_approval(pack: Pack, key: bytes | None) -> Approval:
    """The pack's approval, checked against its exact content; raises ``ApprovalError``."""
    if key is None:
        raise ApprovalError(
            "production mode needs the approval key (set GUARDRAIL_AUDIT_KEY) to check the "
            "pack's approval"
        )
    approval = read_approval(pack.root)
    where = pack.root / APPROVAL_FILE
    if approval.format != MANIFEST_FORMAT:
        raise ApprovalError(f"{where}: unknown manifest format {approval.format!r}")
    if approval.key_id != key_id(key):
        raise ApprovalError(
            f"{where}: approved with key id {approval.key_id}, but this host's key has id "
            f"{key_id(key)}"
        )
    expected = hmac.new(key, approval.signed_fields(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, approval.signature):
        raise ApprovalError(f"{where}: the signature does not verify: the manifest was altered")
    if approval.content_hash != pack.content_hash:
        raise ApprovalError(
            f"{where}: approved content {approval.content_hash[:12]} by {approval.approver} "
            f"is not this pack's content {pack.content_hash[:12]}: a rule, list or declaration "
            "changed after approval; it needs a new approval"
        )
    return approval
