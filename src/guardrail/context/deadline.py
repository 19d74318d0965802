"""A time budget for history reads: a store that does not answer in time fails the read.

Screening waits for history; a store that hangs (a lock held by a stuck writer, a network
filesystem, a database under load) would hang the teller's screen. Wrapped in
``DeadlineHistoryStore``, each read runs on a small worker pool and the caller waits at most
the budget, then gets ``HistoryTimeout`` (a ``StoreError``), which screening turns into a
fail-closed decision. Only stores whose reads can block are wrapped: the in-memory store
answers from process memory and is used directly, without a thread hop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from guardrail.context.history import (
    CrossCustomerHistory,
    HistoryRecord,
    HistoryStore,
    InMemoryHistoryStore,
)
from guardrail.context.windows import HistoryValue, WindowedHistory, is_windowed
from guardrail.errors import StoreError
from guardrail.lang.declarations import WindowSpec
from guardrail.model.event import Event

T = TypeVar("T")


class HistoryTimeout(StoreError):
    """The history store did not answer a read within the budget."""


def reads_can_fail(store: HistoryStore) -> bool:
    """Whether reads of ``store`` can block or fail: every store but the in-memory one (or one
    that says ``reads_never_block = True``)."""
    if isinstance(store, InMemoryHistoryStore):
        return False
    return not getattr(store, "reads_never_block", False)


@runtime_checkable
class SelfBoundedHistory(Protocol):
    """A store that keeps a time budget on its reads itself, in the reading thread (a database
    client that can abort its own request), so it needs no worker thread per read."""

    def bound_reads(self, budget_s: float) -> None:
        """From now on, a read that takes longer than ``budget_s`` raises ``HistoryTimeout``."""
        ...


def with_budget(store: HistoryStore, budget_s: float | None) -> HistoryStore:
    """``store`` with its reads bounded by ``budget_s`` seconds if they can block at all: a
    :class:`SelfBoundedHistory` is told the budget and used directly, others are wrapped."""
    if budget_s is None or not reads_can_fail(store) or isinstance(store, DeadlineHistoryStore):
        return store
    if isinstance(store, SelfBoundedHistory):
        store.bound_reads(budget_s)
        return store
    # The wrapper offers what the store offers (reads across customers, all windows in one
    # request), so wrapping never changes how features are computed.
    cross = isinstance(store, CrossCustomerHistory)
    windowed = is_windowed(store)
    if cross and windowed:
        return _CrossWindowedDeadline(store, budget_s)
    if windowed:
        return _WindowedDeadline(store, budget_s)
    if cross:
        return _CrossDeadline(store, budget_s)
    return DeadlineHistoryStore(store, budget_s)


class DeadlineHistoryStore:
    """``store`` with every read bounded by ``budget_s`` seconds; writes pass straight through.

    A read that times out keeps running on its worker (a blocked call cannot be interrupted),
    so the pool is small and bounded: when all workers are stuck, later reads time out too and
    every screening fails closed until the store answers again.
    """

    def __init__(self, store: HistoryStore, budget_s: float, *, workers: int = 4) -> None:
        if budget_s <= 0:
            raise ValueError("the history budget must be positive")
        self.store = store
        self.budget_s = budget_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="history-read")

    def _read(self, what: str, call: Callable[[], T]) -> T:
        future: Future[T] = self._pool.submit(call)
        try:
            return future.result(timeout=self.budget_s)
        except FutureTimeout:
            future.cancel()  # not started yet (all workers stuck): never run it
            raise HistoryTimeout(
                f"history store did not answer {what} within {self.budget_s * 1000:.0f} ms"
            ) from None

    def for_customer(self, customer_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        return self._read("a customer read", lambda: self.store.for_customer(customer_id, since))

    def for_account(self, account_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        return self._read("an account read", lambda: self.store.for_account(account_id, since))

    def earliest_with_counterparty(
        self, customer_id: str, counterparty_account: str
    ) -> Sequence[tuple[datetime, str]]:
        return self._read(
            "a payee read",
            lambda: self.store.earliest_with_counterparty(customer_id, counterparty_account),
        )

    def record(self, rec: HistoryRecord) -> None:
        self.store.record(rec)

    def evict_before(self, cutoff: datetime) -> int:
        return self.store.evict_before(cutoff)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()

    def __len__(self) -> int:
        return len(self.store)


class _CrossDeadline(DeadlineHistoryStore):
    """A budget for a store that reads across customers."""

    def for_branch(self, branch_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        store = self.store
        assert isinstance(store, CrossCustomerHistory)
        return self._read("a branch read", lambda: store.for_branch(branch_id, since))

    def for_counterparty(
        self, counterparty_account: str, since: datetime | None
    ) -> Sequence[HistoryRecord]:
        store = self.store
        assert isinstance(store, CrossCustomerHistory)
        return self._read(
            "a payee account read", lambda: store.for_counterparty(counterparty_account, since)
        )


class _WindowedDeadline(DeadlineHistoryStore):
    """A budget for a store that answers all of a screening's windows in one request."""

    def window_values(
        self,
        event: Event,
        specs: Mapping[str, WindowSpec],
        current: HistoryRecord,
        *,
        derived: bool,
    ) -> dict[str, HistoryValue]:
        store = self.store
        assert isinstance(store, WindowedHistory)
        return self._read(
            "the windows", lambda: store.window_values(event, specs, current, derived=derived)
        )


class _CrossWindowedDeadline(_WindowedDeadline, _CrossDeadline):
    """Both of the above."""
