"""Errors of the case ledger."""

from __future__ import annotations

from guardrail.errors import GuardrailError, StoreError


class CaseError(GuardrailError):
    """A case operation that cannot be done: unknown case, closed case, bad input."""


class EvidenceError(StoreError):
    """An evidence file could not be stored or read."""
