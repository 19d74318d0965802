"""Who is calling and what they may do: bearer keys, roles, and a brake on guessing.

Failed authentications are counted per client address over a sliding minute; past the limit
that address gets 429 until the minute has passed, and every failure is logged (never the key
itself, only its public id when it has one)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from guardrail.server.keys import KeyStore, Principal, Role, split_key
from guardrail.server.metrics import Metrics
from guardrail.server.problems import ProblemError, forbidden, unauthorized

security_log = logging.getLogger("guardrail.server.security")

WINDOW_S = 60.0


class FailureLimiter:
    """At most ``limit`` failed authentications per client address per minute."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and now - times[0] > WINDOW_S:
            times.popleft()
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it is not blocked."""
        with self._lock:
            now = self._clock()
            times = self._recent(client, now)
            if len(times) < self.limit:
                if not times:
                    self._failures.pop(client, None)
                return None
            return max(1, int(WINDOW_S - (now - times[0])) + 1)

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client, self._clock()).append(self._clock())


class Authenticator:
    def __init__(self, keys: KeyStore, limiter: FailureLimiter, metrics: Metrics) -> None:
        self.keys = keys
        self.limiter = limiter
        self.metrics = metrics

    def authenticate(self, header: str | None, client: str, where: str) -> Principal:
        """The principal of the ``Authorization`` header, or a 401/429 problem."""
        wait = self.limiter.retry_after(client)
        if wait is not None:
            security_log.warning("auth refused: %s rate-limited on %s", client, where)
            raise ProblemError(
                429,
                "too-many-failed-authentications",
                "Too many failed authentications",
                f"too many failed authentications from this address; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            self._fail(client, where, "no bearer key")
            raise unauthorized("send an API key as 'Authorization: Bearer <key>'")
        principal = self.keys.authenticate(token)
        if principal is None:
            parts = split_key(token)
            self._fail(client, where, f"bad or revoked key {parts[0] if parts else '(malformed)'}")
            raise unauthorized("the API key is not valid or was revoked")
        return principal

    def _fail(self, client: str, where: str, why: str) -> None:
        self.limiter.failed(client)
        self.metrics.auth_failure()
        security_log.warning("auth failed: %s from %s on %s", why, client, where)


def require(principal: Principal, *roles: Role, action: str) -> None:
    """403 unless the principal has one of ``roles``; the refusal is logged."""
    if principal.role not in roles:
        security_log.warning(
            "forbidden: %s (%s, key %s) tried to %s",
            principal.name,
            principal.role.value,
            principal.key_id,
            action,
        )
        allowed = " or ".join(role.value for role in roles)
        raise forbidden(f"role {principal.role.value} may not {action} (needs {allowed})")


def require_self(principal: Principal, teller_id: str, *, field: str, action: str) -> None:
    """A teller acts only as himself: ``teller_id`` must be the key's name."""
    if teller_id != principal.name:
        security_log.warning(
            "forbidden: %s (key %s) tried to %s as %s",
            principal.name,
            principal.key_id,
            action,
            teller_id,
        )
        raise ProblemError(
            403,
            "forbidden",
            "Forbidden",
            f"{field}: the key belongs to {principal.name}; it may not {action} as {teller_id}",
            errors=[(field, f"must be {principal.name}, the key's holder")],
        )
