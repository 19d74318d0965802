"""What a history store offers: reads by customer and account, and optionally across customers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from guardrail.context.history.records import HistoryRecord


@runtime_checkable
class CrossCustomerHistory(Protocol):
    """History read across customers: by branch and by payee account (windows keyed so)."""

    def for_branch(self, branch_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        """Every customer's records at the branch with timestamp >= ``since``, oldest first."""
        ...

    def for_counterparty(
        self, counterparty_account: str, since: datetime | None
    ) -> Sequence[HistoryRecord]:
        """Every customer's records with that counterparty account, oldest first."""
        ...


@runtime_checkable
class HistoryStore(Protocol):
    """Executed history keyed by customer and by account, read as of any instant."""

    def record(self, rec: HistoryRecord) -> None:
        """Store ``rec``; recording the same event_id again changes nothing."""
        ...

    def for_customer(self, customer_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        """The customer's records with timestamp >= ``since`` (all if None), oldest first."""
        ...

    def for_account(self, account_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        """The account's records with timestamp >= ``since`` (all if None), oldest first."""
        ...

    def earliest_with_counterparty(
        self, customer_id: str, counterparty_account: str
    ) -> Sequence[tuple[datetime, str]]:
        """(timestamp, event_id) of the customer's two earliest records with that counterparty.

        Kept beyond retention and eviction, so "never seen before" means never; two entries
        are enough to answer "seen before this event, other than in this event itself".
        """
        ...

    def evict_before(self, cutoff: datetime) -> int:
        """Drop records older than ``cutoff``; returns how many were dropped."""
        ...

    def close(self) -> None:
        """Release resources; a persistent store flushes to disk."""
        ...

    def __len__(self) -> int: ...
