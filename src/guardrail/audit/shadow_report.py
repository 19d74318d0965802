"""``guardrail audit report --shadow``: how a candidate pack screened in shadow compares with
the live one: agreement, actions up and down, obligations gained and lost, the rules behind
each difference, and the differing events."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from guardrail.audit.records import AuditRecord, ShadowRecord
from guardrail.model.decision import PackRef

MAX_LISTED = 50


@dataclass
class ShadowReport:
    screened: int = 0
    agreed: int = 0
    up: int = 0
    down: int = 0
    obligations_changed: int = 0
    shadow_failures: int = 0
    packs: Counter[str] = field(default_factory=Counter)  # "live -> shadow" pairs
    transitions: Counter[str] = field(default_factory=Counter)  # "review -> proceed"
    rules_added: Counter[str] = field(default_factory=Counter)  # hit in shadow only
    rules_removed: Counter[str] = field(default_factory=Counter)  # hit live only
    differences: list[ShadowRecord] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.screened if self.screened else None

    def add(self, record: ShadowRecord) -> None:
        self.screened += 1
        self.packs[f"{_pack(record.live_pack)} -> {_pack(record.shadow_pack)}"] += 1
        self.shadow_failures += record.shadow_failed
        if record.agrees:
            self.agreed += 1
            return
        if record.shadow_action > record.live_action:
            self.up += 1
        elif record.shadow_action < record.live_action:
            self.down += 1
        if set(record.live_obligations) != set(record.shadow_obligations):
            self.obligations_changed += 1
        self.transitions[f"{record.live_action.value} -> {record.shadow_action.value}"] += 1
        for rule in set(record.shadow_rules) - set(record.live_rules):
            self.rules_added[rule] += 1
        for rule in set(record.live_rules) - set(record.shadow_rules):
            self.rules_removed[rule] += 1
        self.differences.append(record)

    def to_dict(self) -> dict[str, object]:
        return {
            "screened": self.screened,
            "agreed": self.agreed,
            "agreement": self.agreement,
            "action_up": self.up,
            "action_down": self.down,
            "obligations_changed": self.obligations_changed,
            "shadow_failures": self.shadow_failures,
            "packs": dict(self.packs),
            "transitions": dict(self.transitions),
            "rules_hit_only_in_shadow": dict(self.rules_added),
            "rules_hit_only_live": dict(self.rules_removed),
            "differences": [
                {
                    "event_id": r.event_id,
                    "occurred": r.occurred.isoformat(),
                    "kind": r.kind.value,
                    "live_action": r.live_action.value,
                    "shadow_action": r.shadow_action.value,
                    "live_obligations": [o.value for o in r.live_obligations],
                    "shadow_obligations": [o.value for o in r.shadow_obligations],
                    "live_rules": list(r.live_rules),
                    "shadow_rules": list(r.shadow_rules),
                }
                for r in self.differences
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"

    def to_text(self) -> str:
        if not self.screened:
            return "no shadow records in this log\n"
        share = f"{100 * (self.agreement or 0):.2f}%"
        lines = [
            f"shadow screenings: {self.screened}, agreed {self.agreed} ({share}); "
            f"action up {self.up}, down {self.down}; obligations changed "
            f"{self.obligations_changed}; shadow failures {self.shadow_failures}",
        ]
        lines += [f"  packs: {pair} ({n})" for pair, n in self.packs.most_common()]
        for title, counter in (
            ("action changes", self.transitions),
            ("rules hitting only in the shadow pack", self.rules_added),
            ("rules hitting only in the live pack", self.rules_removed),
        ):
            if counter:
                lines.append(f"{title}:")
                lines += [f"  {key:<40} {n:>7}" for key, n in counter.most_common()]
        if self.differences:
            lines.append(f"differing events (first {min(MAX_LISTED, len(self.differences))}):")
            for r in self.differences[:MAX_LISTED]:
                lines.append(
                    f"  {r.event_id} {r.occurred.isoformat()} {r.kind.value}: "
                    f"{r.live_action.value} -> {r.shadow_action.value}"
                    f"  live [{', '.join(r.live_rules)}] shadow [{', '.join(r.shadow_rules)}]"
                )
        return "\n".join(lines) + "\n"


def _pack(ref: PackRef) -> str:
    return f"{ref.name} {ref.version} [{ref.content_hash[:12]}]"


def build_shadow_report(records: Iterable[AuditRecord]) -> ShadowReport:
    report = ShadowReport()
    for record in records:
        if isinstance(record.payload, ShadowRecord):
            report.add(record.payload)
    return report
