"""Shadow runs: a candidate pack screened beside the live one, never returned as the action.

The Guard screens the candidate with exactly the code that screens the live pack (and that
``guardrail test`` and ``replay`` use), with the same history and watchlist snapshot, and
passes both decisions to a ``ShadowSink`` (the audit log records them as a shadow record).
The comparison is made before snoozes and breakers, which are operational and not part of a
pack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from guardrail.model.decision import Action, Decision, Obligation
from guardrail.model.event import Event


class ShadowSink(Protocol):
    def __call__(self, event: Event, live: Decision, shadow: Decision) -> None:
        """Record one shadow screening (must not raise into screening; errors are logged)."""


@dataclass(frozen=True)
class ShadowComparison:
    live_action: Action
    shadow_action: Action
    added_obligations: tuple[Obligation, ...]
    removed_obligations: tuple[Obligation, ...]
    added_rules: tuple[str, ...]
    removed_rules: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        """Same action and same obligations (the rules that hit may still differ)."""
        return (
            self.live_action == self.shadow_action
            and not self.added_obligations
            and not self.removed_obligations
        )

    @property
    def direction(self) -> str:
        if self.shadow_action > self.live_action:
            return "up"
        if self.shadow_action < self.live_action:
            return "down"
        return "same"


def compare(live: Decision, shadow: Decision) -> ShadowComparison:
    live_rules, shadow_rules = set(live.rule_ids), set(shadow.rule_ids)
    live_obl, shadow_obl = set(live.obligations), set(shadow.obligations)
    return ShadowComparison(
        live_action=live.action,
        shadow_action=shadow.action,
        added_obligations=tuple(o for o in Obligation if o in shadow_obl - live_obl),
        removed_obligations=tuple(o for o in Obligation if o in live_obl - shadow_obl),
        added_rules=tuple(sorted(shadow_rules - live_rules)),
        removed_rules=tuple(sorted(live_rules - shadow_rules)),
    )
