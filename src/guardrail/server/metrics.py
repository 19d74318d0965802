"""Prometheus metrics of one worker process, rendered in the text exposition format.

Each worker counts its own requests; the ``worker`` label (its pid) lets Prometheus sum them.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections import Counter

from guardrail.model.decision import Action
from guardrail.policy.breaker import BreakerMetrics

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Decisions by action, screening latency, fail-closed decisions, store and auth errors,
    circuit-breaker trips and capped decisions per rule."""

    def __init__(self) -> None:
        self.breakers = BreakerMetrics()  # handed to the guard's CircuitBreakers
        self._lock = threading.Lock()
        self._decisions: Counter[str] = Counter()
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0
        self._fail_closed = 0
        self._store_errors: Counter[str] = Counter()
        self._auth_failures = 0
        self._worker = str(os.getpid())

    def decision(self, action: Action, seconds: float, *, failed: bool) -> None:
        with self._lock:
            self._decisions[action.value] += 1
            self._buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._latency_sum += seconds
            self._latency_count += 1
            if failed:
                self._fail_closed += 1

    def store_error(self, store: str) -> None:
        with self._lock:
            self._store_errors[store] += 1

    def auth_failure(self) -> None:
        with self._lock:
            self._auth_failures += 1

    def render(self) -> str:
        w = f'worker="{self._worker}"'
        with self._lock:
            lines = [
                "# HELP guardrail_decisions_total Screening decisions by action.",
                "# TYPE guardrail_decisions_total counter",
            ]
            for action in Action:
                lines.append(
                    f'guardrail_decisions_total{{{w},action="{action.value}"}} '
                    f"{self._decisions[action.value]}"
                )
            lines += [
                "# HELP guardrail_screen_seconds Time to screen one event and log it durably.",
                "# TYPE guardrail_screen_seconds histogram",
            ]
            cumulative = 0
            for bound, count in zip(LATENCY_BUCKETS, self._buckets, strict=False):
                cumulative += count
                lines.append(f'guardrail_screen_seconds_bucket{{{w},le="{bound}"}} {cumulative}')
            lines.append(f'guardrail_screen_seconds_bucket{{{w},le="+Inf"}} {self._latency_count}')
            lines.append(f"guardrail_screen_seconds_sum{{{w}}} {self._latency_sum:.6f}")
            lines.append(f"guardrail_screen_seconds_count{{{w}}} {self._latency_count}")
            lines += [
                "# HELP guardrail_fail_closed_total Decisions raised to review by an internal "
                "failure.",
                "# TYPE guardrail_fail_closed_total counter",
                f"guardrail_fail_closed_total{{{w}}} {self._fail_closed}",
                "# HELP guardrail_store_errors_total Failed store operations by store.",
                "# TYPE guardrail_store_errors_total counter",
            ]
            for store in ("history", "sessions", "audit", "keys"):
                lines.append(
                    f'guardrail_store_errors_total{{{w},store="{store}"}} '
                    f"{self._store_errors[store]}"
                )
            lines += [
                "# HELP guardrail_auth_failures_total Requests refused for a missing or bad key.",
                "# TYPE guardrail_auth_failures_total counter",
                f"guardrail_auth_failures_total{{{w}}} {self._auth_failures}",
            ]
        helps = {
            "circuit_breaker_trips_total": "Circuit breakers tripped, by rule.",
            "circuit_breaker_capped_decisions_total": "Decisions capped by a tripped breaker.",
        }
        for name, by_rule in self.breakers.snapshot().items():
            lines += [f"# HELP guardrail_{name} {helps[name]}", f"# TYPE guardrail_{name} counter"]
            lines += [
                f'guardrail_{name}{{{w},rule="{rule_id}"}} {count}'
                for rule_id, count in sorted(by_rule.items())
            ]
        return "\n".join(lines) + "\n"
