"""A time budget for PostgreSQL reads, kept in the reading thread.

The generic budget (:mod:`guardrail.context.deadline`) runs each read on a worker thread and
waits for it: a thread hop per screening, which costs more than the query itself. A PostgreSQL
read bounds itself instead: the pool checkout waits at most the budget, and one watchdog thread
per store, waking a few times per budget, shuts down the socket of a read that has outlived it
(the server may be stopped, partitioned away or blocked on a lock: cancelling would need it to
answer). The read then fails at once, the broken connection leaves the pool, and the caller
gets :class:`~guardrail.context.deadline.HistoryTimeout`.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg

from guardrail.context.deadline import HistoryTimeout

_MIN_TICK_S = 0.01
_MAX_TICK_S = 0.1


def _shut_down(conn: psycopg.Connection[Any]) -> None:
    """Break ``conn``'s socket so that a read blocked on it returns now."""
    with suppress(OSError, psycopg.Error):
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


class ReadWatchdog:
    """Aborts reads that outlive ``budget_s``; registering a read is a dict insert.
    ``where`` (the store and its masked URL) starts the timeout's message."""

    def __init__(self, budget_s: float, where: str = "history store") -> None:
        if budget_s <= 0:
            raise ValueError("the history budget must be positive")
        self.budget_s = budget_s
        self._where = where
        self._tick_s = min(_MAX_TICK_S, max(_MIN_TICK_S, budget_s / 10))
        self._lock = threading.Lock()
        self._reads: dict[int, tuple[float, psycopg.Connection[Any]]] = {}
        self._expired: set[int] = set()
        self._tokens = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, conn: psycopg.Connection[Any], what: str) -> Iterator[None]:
        """Run the block's read on ``conn`` within the budget; ``HistoryTimeout`` if it
        does not finish in time (whatever error the aborted read raised)."""
        token = next(self._tokens)
        deadline = time.monotonic() + self.budget_s
        with self._lock:
            self._reads[token] = (deadline, conn)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="history-watchdog", daemon=True
                )
                self._thread.start()
        try:
            yield
        except BaseException:
            if self._expired_now(token):
                raise HistoryTimeout(self._message(what)) from None
            raise
        if self._expired_now(token):  # aborted just as it finished: do not trust the answer
            raise HistoryTimeout(self._message(what))

    def _message(self, what: str) -> str:
        return f"{self._where} did not answer {what} within {self.budget_s * 1000:.0f} ms"

    def _expired_now(self, token: int) -> bool:
        with self._lock:
            self._reads.pop(token, None)
            if token in self._expired:
                self._expired.discard(token)
                return True
            return False

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            now = time.monotonic()
            with self._lock:
                late = [(t, c) for t, (d, c) in self._reads.items() if d <= now]
                for token, _ in late:
                    del self._reads[token]
                    self._expired.add(token)
            for _, conn in late:
                _shut_down(conn)

    def close(self) -> None:
        """Stop the watchdog thread."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=1)
