"""``guardrail diff OLD NEW``: what changed between two packs, in words, and (with a stream)
which events would be decided differently.

The stream is replayed through both packs with the replay code (the same screening code as
live, shadow and test), each with its own history, and the decisions are compared event by
event: action up or down, obligations gained or lost, the rules behind each change, by
typology, and the change in recall and friction.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from guardrail.guard import Guard
from guardrail.lang.pack import CompiledRule, Pack
from guardrail.model.decision import Decision
from guardrail.sim.replay import Replayer, ReplayReport, read_records

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
MAX_LISTED = 50


@dataclass
class RuleChange:
    rule_id: str
    status: str  # added, removed, changed
    changes: list[str] = field(default_factory=list)

    def render(self) -> str:
        if self.status != "changed":
            return f"rule {self.rule_id} {self.status}"
        return f"rule {self.rule_id} changed: " + "; ".join(self.changes)


@dataclass
class PackDiff:
    old: str
    new: str
    rules: list[RuleChange]
    declarations: list[str]

    @property
    def empty(self) -> bool:
        return not self.rules and not self.declarations


def _describe(rule: CompiledRule) -> dict[str, Any]:
    spec = rule.spec
    return {
        "condition": " ".join(spec.condition.split()),
        "action": spec.action.value,
        "obligations": sorted(o.value for o in spec.obligations),
        "effective_from": spec.effective_from,
        "effective_to": spec.effective_to,
        "region": rule.region,
        "applies_to": sorted(k.value for k in spec.applies_to),
        "ask": list(spec.ask),
        "circuit_breaker": spec.circuit_breaker.model_dump(mode="json")
        if spec.circuit_breaker
        else None,
        "notice": (spec.notice_zh, spec.notice_en),
        "titles": (spec.title_zh, spec.title_en),
    }


def _condition_change(old: str, new: str) -> str:
    old_numbers, new_numbers = _NUMBER.findall(old), _NUMBER.findall(new)
    if _NUMBER.sub("#", old) == _NUMBER.sub("#", new):
        pairs = [f"{a} -> {b}" for a, b in zip(old_numbers, new_numbers, strict=True) if a != b]
        return "threshold " + ", ".join(pairs) + f" (condition now: {new})"
    return f"condition from `{old}` to `{new}`"


def _rule_changes(old: CompiledRule, new: CompiledRule) -> list[str]:
    before, after = _describe(old), _describe(new)
    changes: list[str] = []
    for key in before:
        a, b = before[key], after[key]
        if a == b:
            continue
        if key == "condition":
            changes.append(_condition_change(a, b))
        elif key == "action":
            direction = "up" if new.spec.action > old.spec.action else "down"
            changes.append(f"action {a} -> {b} ({direction})")
        elif key == "obligations":
            gained, lost = sorted(set(b) - set(a)), sorted(set(a) - set(b))
            parts = [f"+{o}" for o in gained] + [f"-{o}" for o in lost]
            changes.append("obligations " + ", ".join(parts))
        elif key in ("notice", "titles"):
            changes.append(f"{key} reworded")
        else:
            changes.append(f"{key.replace('_', ' ')} {a} -> {b}")
    return changes


def diff_packs(old: Pack, new: Pack) -> PackDiff:
    """Rules added, removed and changed (by rule version key), and changed declarations."""
    rules: list[RuleChange] = []
    old_rules, new_rules = old.rules_by_id, new.rules_by_id
    for key in sorted(set(old_rules) | set(new_rules)):
        if key not in old_rules:
            rules.append(RuleChange(key, "added"))
        elif key not in new_rules:
            rules.append(RuleChange(key, "removed"))
        else:
            changes = _rule_changes(old_rules[key], new_rules[key])
            if changes:
                rules.append(RuleChange(key, "changed", changes))
    declarations: list[str] = []
    for what, a, b in (
        ("window", old.windows, new.windows),
        ("lexicon", old.lexicons, new.lexicons),
    ):
        for name in sorted(set(a) | set(b)):
            if name not in a:
                declarations.append(f"{what} {name} added")
            elif name not in b:
                declarations.append(f"{what} {name} removed")
            elif a[name] != b[name]:
                declarations.append(f"{what} {name} changed")
    for name in sorted(set(old.watchlist_digests) | set(new.watchlist_digests)):
        before, after = old.watchlist_digests.get(name), new.watchlist_digests.get(name)
        if before != after:
            declarations.append(
                f"watchlist {name} data {before or '(none)'} -> {after or '(none)'}"
            )
    old_q = old.questionnaire.spec if old.questionnaire else None
    new_q = new.questionnaire.spec if new.questionnaire else None
    if old_q != new_q:
        declarations.append("questionnaire changed")
    return PackDiff(_name(old), _name(new), rules, declarations)


def _name(pack: Pack) -> str:
    return f"{pack.meta.name} {pack.meta.version} [{pack.content_hash[:12]}]"


@dataclass
class EventChange:
    event_id: str
    label: str
    typology: str | None
    old_action: str
    new_action: str
    direction: str  # up, down, same (obligations only)
    gained_obligations: list[str]
    lost_obligations: list[str]
    rules_added: list[str]
    rules_removed: list[str]


@dataclass
class StreamImpact:
    screened: int
    changes: list[EventChange]
    up_by_rule: Counter[str]
    down_by_rule: Counter[str]
    up_by_typology: Counter[str]
    down_by_typology: Counter[str]
    old: ReplayReport
    new: ReplayReport

    @property
    def up(self) -> int:
        return sum(c.direction == "up" for c in self.changes)

    @property
    def down(self) -> int:
        return sum(c.direction == "down" for c in self.changes)


def stream_impact(old: Pack, new: Pack, lines: Iterable[str], *, source: str) -> StreamImpact:
    """Replay ``lines`` through both packs and compare the decisions event by event."""
    before, after = Replayer(Guard(old)), Replayer(Guard(new))
    changes: list[EventChange] = []
    up_rule: Counter[str] = Counter()
    down_rule: Counter[str] = Counter()
    up_typology: Counter[str] = Counter()
    down_typology: Counter[str] = Counter()
    for record in read_records(lines, source=source, on_bad_line="stop", bad=[]):
        before.feed(record)
        after.feed(record)
        a, b = before.last_decision, after.last_decision
        if a is None or b is None:
            continue
        change = _compare(record.event.event_id, record.label, record.typology, a, b)
        if change is None:
            continue
        changes.append(change)
        group = record.typology or record.label
        if change.direction == "up":
            up_typology[group] += 1
            up_rule.update(change.rules_added or change.rules_removed or ["(obligations)"])
        elif change.direction == "down":
            down_typology[group] += 1
            down_rule.update(change.rules_removed or change.rules_added or ["(obligations)"])
    return StreamImpact(
        screened=before.screened,
        changes=changes,
        up_by_rule=up_rule,
        down_by_rule=down_rule,
        up_by_typology=up_typology,
        down_by_typology=down_typology,
        old=before.report(0.0),
        new=after.report(0.0),
    )


def _compare(
    event_id: str, label: str, typology: str | None, a: Decision, b: Decision
) -> EventChange | None:
    gained = sorted(o.value for o in set(b.obligations) - set(a.obligations))
    lost = sorted(o.value for o in set(a.obligations) - set(b.obligations))
    if a.action == b.action and not gained and not lost:
        return None
    direction = "up" if b.action > a.action else "down" if b.action < a.action else "same"
    return EventChange(
        event_id=event_id,
        label=label,
        typology=typology,
        old_action=a.action.value,
        new_action=b.action.value,
        direction=direction,
        gained_obligations=gained,
        lost_obligations=lost,
        rules_added=sorted(set(b.rule_ids) - set(a.rule_ids)),
        rules_removed=sorted(set(a.rule_ids) - set(b.rule_ids)),
    )


def render(diff: PackDiff, impact: StreamImpact | None) -> str:
    lines = [f"{diff.old} -> {diff.new}"]
    if diff.empty:
        lines.append("no rule or declaration changed")
    lines += [change.render() for change in diff.rules]
    lines += diff.declarations
    if impact is not None:
        old, new = impact.old, impact.new
        lines.append(
            f"on {impact.screened} screened events: {len(impact.changes)} decided differently "
            f"({impact.up} up, {impact.down} down)"
        )
        lines.append(
            f"  recall (intercept) {_pct(old.recall_intercept)} -> {_pct(new.recall_intercept)}"
            f", recall (review) {_pct(old.recall_review)} -> {_pct(new.recall_review)}"
            f", friction {_pct(old.friction_rate)} -> {_pct(new.friction_rate)}"
        )
        for title, counter in (
            ("up, by rule", impact.up_by_rule),
            ("down, by rule", impact.down_by_rule),
            ("up, by typology", impact.up_by_typology),
            ("down, by typology", impact.down_by_typology),
        ):
            if counter:
                lines.append(
                    f"  {title}: " + ", ".join(f"{k} {n}" for k, n in counter.most_common())
                )
        for change in impact.changes[:MAX_LISTED]:
            obligations = [f"+{o}" for o in change.gained_obligations] + [
                f"-{o}" for o in change.lost_obligations
            ]
            lines.append(
                f"  {change.event_id} ({change.typology or change.label}): {change.old_action} -> "
                f"{change.new_action}"
                + (f" obligations {' '.join(obligations)}" if obligations else "")
                + (f" +[{', '.join(change.rules_added)}]" if change.rules_added else "")
                + (f" -[{', '.join(change.rules_removed)}]" if change.rules_removed else "")
            )
        if len(impact.changes) > MAX_LISTED:
            lines.append(f"  ... and {len(impact.changes) - MAX_LISTED} more (--json lists all)")
    return "\n".join(lines)


def to_json(diff: PackDiff, impact: StreamImpact | None) -> str:
    data: dict[str, Any] = {
        "old": diff.old,
        "new": diff.new,
        "rules": [
            {"rule_id": c.rule_id, "status": c.status, "changes": c.changes} for c in diff.rules
        ],
        "declarations": diff.declarations,
    }
    if impact is not None:
        data["stream"] = {
            "screened": impact.screened,
            "changed": len(impact.changes),
            "up": impact.up,
            "down": impact.down,
            "recall_intercept": [impact.old.recall_intercept, impact.new.recall_intercept],
            "recall_review": [impact.old.recall_review, impact.new.recall_review],
            "friction_rate": [impact.old.friction_rate, impact.new.friction_rate],
            "up_by_rule": dict(impact.up_by_rule),
            "down_by_rule": dict(impact.down_by_rule),
            "up_by_typology": dict(impact.up_by_typology),
            "down_by_typology": dict(impact.down_by_typology),
            "events": [c.__dict__ for c in impact.changes],
        }
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"
