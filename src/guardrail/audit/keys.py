"""Secret keys for the audit log: one for keyed hashes of personal data, one for signatures.

Both derive from one master secret in the environment (``GUARDRAIL_AUDIT_KEY``) unless given
explicitly. The development default is loudly named and warns when used; a log records which
key signed it (a fingerprint, never the key), so verifying with the wrong key is a clear error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

from guardrail.errors import GuardrailError

KEY_ENV_VAR = "GUARDRAIL_AUDIT_KEY"
MIN_KEY_BYTES = 16

INSECURE_DEVELOPMENT_KEY = b"guardrail-INSECURE-DEVELOPMENT-audit-key-NEVER-USE-IN-PRODUCTION"


class AuditKeyError(GuardrailError, ValueError):
    """The audit key is missing, too short or malformed."""


class InsecureAuditKeyWarning(UserWarning):
    """The audit log is protected by the public development key: not for production."""


def _derive(master: bytes, purpose: str) -> bytes:
    return hmac.new(master, f"guardrail.audit.{purpose}/1".encode(), hashlib.sha256).digest()


def key_fingerprint(key: bytes) -> str:
    """A short public id of a key (an HMAC of a constant): reveals nothing about the key."""
    return hmac.new(key, b"guardrail.audit.key-id/1", hashlib.sha256).hexdigest()[:16]


def decode_key(text: str) -> bytes:
    """Decode a key given as ``hex:...``, ``base64:...`` or plain text (its UTF-8 bytes)."""
    text = text.strip()
    try:
        if text.startswith("hex:"):
            raw = bytes.fromhex(text[4:])
        elif text.startswith("base64:"):
            raw = base64.b64decode(text[7:], validate=True)
        else:
            raw = text.encode("utf-8")
    except (ValueError, binascii.Error) as exc:
        raise AuditKeyError(f"{KEY_ENV_VAR} is not valid: {exc}") from None
    if len(raw) < MIN_KEY_BYTES:
        raise AuditKeyError(
            f"{KEY_ENV_VAR} is too short: {len(raw)} bytes, need at least {MIN_KEY_BYTES} "
            "(use 32 random bytes, e.g. hex:$(openssl rand -hex 32))"
        )
    return raw


@dataclass(frozen=True)
class AuditKeys:
    """The masking key (keyed hashes of personal data) and the signing key (record MACs,
    checkpoints, head). ``insecure`` is true only for the public development key."""

    masking: bytes = field(repr=False)
    signing: bytes = field(repr=False)
    insecure: bool = False

    def __post_init__(self) -> None:
        for name in ("masking", "signing"):
            if len(getattr(self, name)) < MIN_KEY_BYTES:
                raise AuditKeyError(f"the {name} key must be at least {MIN_KEY_BYTES} bytes")

    @classmethod
    def from_secret(cls, secret: bytes) -> AuditKeys:
        """Derive both keys from one master secret."""
        if len(secret) < MIN_KEY_BYTES:
            raise AuditKeyError(f"the audit secret must be at least {MIN_KEY_BYTES} bytes")
        insecure = hmac.compare_digest(secret, INSECURE_DEVELOPMENT_KEY)
        return cls(_derive(secret, "masking"), _derive(secret, "signing"), insecure)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        strict: bool = True,
        var: str = KEY_ENV_VAR,
    ) -> AuditKeys:
        """Read the master secret from ``var``. Missing: an error when ``strict``, else the
        development key with an :class:`InsecureAuditKeyWarning`."""
        source = os.environ if env is None else env
        text = source.get(var)
        if not text:
            if strict:
                raise AuditKeyError(
                    f"{var} is not set: the audit log needs a secret key to hash personal data "
                    "and sign records (32 random bytes, e.g. hex:<64 hex digits>); for "
                    "development only, use AuditKeys.insecure_development_keys()"
                )
            return cls.insecure_development_keys()
        return cls.from_secret(decode_key(text))

    @classmethod
    def insecure_development_keys(cls) -> AuditKeys:
        """The public, well-known development key. Anyone can forge such a log."""
        warnings.warn(
            "guardrail audit log uses the INSECURE DEVELOPMENT KEY: personal data hashes can be "
            f"reversed and records forged by anyone; set {KEY_ENV_VAR} in production",
            InsecureAuditKeyWarning,
            stacklevel=2,
        )
        return cls.from_secret(INSECURE_DEVELOPMENT_KEY)

    @property
    def approval(self) -> bytes:
        """The key that signs and checks pack approvals (derived from the signing key)."""
        return _derive(self.signing, "approval")

    @property
    def signing_key_id(self) -> str:
        """A fingerprint of the signing key (reveals nothing about it)."""
        return key_fingerprint(self.signing)

    @property
    def masking_key_id(self) -> str:
        """A fingerprint of the masking key: two logs correlate only if these are equal."""
        return key_fingerprint(self.masking)
