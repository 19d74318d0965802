"""An audit log that seals and commits in large batches, for bulk loading (simulation,
backfills). Single writer only: the seqs it returns are predicted from its own head."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from guardrail.audit.log import AuditLog, Payload


class BatchingAuditLog(AuditLog):
    """``append`` buffers; every ``batch`` payloads (and on :meth:`flush`) one durable commit.
    A crash loses at most the unflushed buffer, never part of a committed batch."""

    batch: int = 2000

    def _buffer(self) -> list[Payload]:
        pending: list[Payload] | None = getattr(self, "_pending", None)
        if pending is None:
            pending = []
            self._pending: list[Payload] = pending
            head = self.store.head()
            self._next_seq = (0 if head is None else head.seq) + 1
        return pending

    def append(
        self, payloads: Sequence[Payload], *, recorded_at: dt.datetime | None = None
    ) -> list[int]:
        pending = self._buffer()
        first = self._next_seq
        pending.extend(payloads)
        self._next_seq += len(payloads)
        if len(pending) >= self.batch:
            self.flush()
        return list(range(first, first + len(payloads)))

    def flush(self) -> None:
        pending = self._buffer()
        if pending:
            batch = list(pending)
            pending.clear()
            super().append(batch)

    def close(self) -> None:
        self.flush()
        super().close()
