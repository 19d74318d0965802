"""The storage interface of the audit log. SQLite is the default; a bank's central database
(PostgreSQL, say) plugs in by implementing :class:`AuditStore`.

A store is deliberately dumb: it keeps rows and never computes hashes. Chaining and signing
happen in the log, and an append is a compare-and-swap on the head: the store writes the batch
only if its head is still at ``expected_seq`` and raises :class:`AppendConflict` otherwise, so
several processes can share one log. In PostgreSQL this is one transaction that locks the head
row (``SELECT ... FOR UPDATE``), inserts the rows and updates the head; the primary key on
``seq`` is the second line of defence. :meth:`AuditStore.snapshot` is a consistent read
(``REPEATABLE READ`` in PostgreSQL, one read transaction in SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from guardrail.errors import StoreError


class AuditStoreError(StoreError):
    """The log cannot be opened or read: missing file, not an audit log, corrupt."""


class AppendConflict(AuditStoreError):
    """Someone else appended first; re-read the head, re-seal and try again."""


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One row as stored. ``payload`` is the canonical JSON text that was hashed."""

    seq: int
    recorded_at: str
    kind: str
    case_id: str
    prev_hash: str
    record_hash: str
    mac: str
    payload: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: at ``seq`` the chain's hash was ``record_hash``."""

    seq: int
    record_hash: str
    created_at: str
    mac: str


@dataclass(frozen=True, slots=True)
class Head:
    """The signed position of the last acknowledged record (seq 0 for an empty log)."""

    seq: int
    record_hash: str
    updated_at: str
    mac: str


@dataclass(frozen=True, slots=True)
class LogMeta:
    """Identity of one log: its id seeds the chain; key ids say which keys it was written with."""

    log_id: str
    format_version: int
    created_at: str
    signing_key_id: str
    masking_key_id: str
    checkpoint_every: int
    mac: str


class AuditReader(Protocol):
    """Read access; within one snapshot all answers are mutually consistent."""

    def meta(self) -> LogMeta | None:
        """The log's identity, ``None`` if the store was never initialised."""
        ...

    def head(self) -> Head | None:
        """The signed head, ``None`` if missing."""
        ...

    def last(self) -> StoredRecord | None:
        """The record with the highest seq."""
        ...

    def iterate(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[StoredRecord]:
        """Records in ascending seq order, ``from_seq`` to ``to_seq`` inclusive."""
        ...

    def checkpoints(self) -> Sequence[Checkpoint]:
        """All checkpoints in ascending seq order."""
        ...


class CaseReader(AuditReader, Protocol):
    """A snapshot reader that also finds one case's records through an index."""

    def case(self, case_id: str) -> Iterator[StoredRecord]:
        """All records of ``case_id``, in seq order."""
        ...


class SnapshotReads:
    """The store-level reads of a store with snapshots (SQLite, PostgreSQL): each call opens
    one snapshot through ``_snapshot`` (which the store gives), reads, and closes it."""

    def _snapshot(self) -> AbstractContextManager[CaseReader]:
        raise NotImplementedError

    def snapshot(self) -> AbstractContextManager[AuditReader]:
        """A consistent read view for verification and reports."""
        return self._snapshot()

    def case_records(self, case_id: str) -> list[StoredRecord]:
        with self._snapshot() as reader:
            return list(reader.case(case_id))

    def meta(self) -> LogMeta | None:
        with self._snapshot() as reader:
            return reader.meta()

    def head(self) -> Head | None:
        with self._snapshot() as reader:
            return reader.head()

    def last(self) -> StoredRecord | None:
        with self._snapshot() as reader:
            return reader.last()

    def iterate(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[StoredRecord]:
        with self._snapshot() as reader:
            yield from reader.iterate(from_seq, to_seq)

    def checkpoints(self) -> list[Checkpoint]:
        with self._snapshot() as reader:
            return list(reader.checkpoints())


class AuditStore(AuditReader, Protocol):
    """Durable, append-only storage of chained records."""

    def initialize(self, meta: LogMeta, head: Head) -> LogMeta:
        """Create the log if empty and return the meta actually stored (the existing one if
        the log was already initialised)."""
        ...

    def append(
        self,
        records: Sequence[StoredRecord],
        *,
        head: Head,
        checkpoints: Sequence[Checkpoint],
        expected_seq: int,
    ) -> list[int]:
        """Atomically and durably add ``records`` and ``checkpoints`` and set ``head``, only if
        the stored head is at ``expected_seq``. Returns the acknowledged seqs: when this
        returns, they survive a crash. Raises :class:`AppendConflict` on a lost race."""
        ...

    def snapshot(self) -> AbstractContextManager[AuditReader]:
        """A consistent read view for verification and reports."""
        ...

    def close(self) -> None:
        """Release connections; further calls fail."""
        ...


class HeldHead(Protocol):
    """The log's head, held for one append (see :class:`HeadLockingStore`)."""

    @property
    def head(self) -> Head:
        """The head as stored now; nobody else can move it while held."""
        ...

    def append(
        self, records: Sequence[StoredRecord], *, head: Head, checkpoints: Sequence[Checkpoint]
    ) -> list[int]:
        """Add the records and checkpoints and set ``head``; durable when the hold ends."""
        ...


@runtime_checkable
class HeadLockingStore(AuditStore, Protocol):
    """A store that can hold the head while the log seals a batch: writers queue on the lock
    instead of racing and retrying (PostgreSQL: the head row's lock, held in one transaction).
    """

    def hold_head(self) -> AbstractContextManager[HeldHead]:
        """Wait for the head, hold it for one append, commit when the block ends."""
        ...
