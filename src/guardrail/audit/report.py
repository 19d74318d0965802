"""Reports over the audit log: what was decided, what happened next, what it stopped.

Two units are counted, and each is said plainly:

* a **decision** counts when its event's time falls in ``[start, end)``; it is grouped by the
  event's branch, teller, transaction kind, or by each rule that hit it;
* a **case** (all decisions and steps sharing a ``case_id``) counts when its *first* decision
  falls in the range; it takes branch, teller, kind and amount from that first decision, its
  highest action over all its decisions, its outcome from the last ``outcome`` recorded and its
  verdict from the last ``confirmed_fraud`` recorded. Steps of cases with no decision in the
  log are counted as ``unmatched_steps`` and otherwise ignored.

Session steps are counted by kind, once each: ``overrides`` are supervisor overrides only,
``teller_overrides`` teller raises, ``escalations`` calls to the supervisor only; approvals,
rejections and refused step attempts have their own counts. Records written before those kinds
existed (the counter session then filed an approval or rejection under ``supervisor_override``
and a teller raise under ``escalated``, the real step name leading the reason) are counted by
that name, so old logs do not overcount either.

A rule's precision is hit-level: hits whose case ended with ``confirmed_fraud`` true, divided
by hits whose case has a recorded ``confirmed_fraud``; ``None`` when no verdict was recorded.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from guardrail.audit.records import AuditRecord, DecisionRecord, SessionStepRecord
from guardrail.model import Action, from_fen
from guardrail.model.session import PREVENTED_OUTCOMES, Outcome, StepKind

NO_RULE = "(no hit)"
OPEN = "open"  # a case with no outcome recorded yet


class GroupBy(StrEnum):
    ALL = "all"
    BRANCH = "branch"
    RULE = "rule"
    TELLER = "teller"
    KIND = "kind"


@dataclass
class Tally:
    """Counts and amounts (integer fen) per currency."""

    by_currency: dict[str, list[int]] = field(default_factory=dict)

    def add(self, currency: str, fen: int) -> None:
        slot = self.by_currency.setdefault(currency, [0, 0])
        slot[0] += 1
        slot[1] += fen

    @property
    def count(self) -> int:
        return sum(slot[0] for slot in self.by_currency.values())

    def amount_fen(self, currency: str = "CNY") -> int:
        return self.by_currency.get(currency, [0, 0])[1]

    def amount(self, currency: str = "CNY") -> Decimal:
        return from_fen(self.amount_fen(currency))

    def to_dict(self) -> dict[str, object]:
        return {
            "count": self.count,
            "amounts": {cur: str(from_fen(s[1])) for cur, s in sorted(self.by_currency.items())},
        }


def _tallies(keys: Iterable[str]) -> dict[str, Tally]:
    return {key: Tally() for key in keys}


ACTION_KEYS = tuple(a.value for a in Action)
OUTCOME_KEYS = (*(o.value for o in Outcome), OPEN)


@dataclass
class GroupReport:
    """Figures for one group (a branch, teller, kind, rule, or everything)."""

    group: str
    decisions: Tally = field(default_factory=Tally)
    by_action: dict[str, Tally] = field(default_factory=lambda: _tallies(ACTION_KEYS))
    failures: int = 0  # decisions screened with an internal failure (fail-closed)
    cases: Tally = field(default_factory=Tally)
    by_outcome: dict[str, Tally] = field(default_factory=lambda: _tallies(OUTCOME_KEYS))
    prevented: Tally = field(default_factory=Tally)  # outcome withdrawn/intercepted/police/stop
    confirmed_fraud: Tally = field(default_factory=Tally)
    prevented_confirmed_fraud: Tally = field(default_factory=Tally)
    legitimate_questioned: Tally = field(default_factory=Tally)  # >= inquire, verdict false
    overrides: int = 0  # supervisor overrides (set the action, with a reason)
    teller_overrides: int = 0  # teller raises
    escalations: int = 0
    approvals: int = 0  # supervisor approved as it stands
    rejections: int = 0  # supervisor rejected
    refusals: int = 0  # refused step attempts (nothing changed)

    def counts(self) -> Iterable[tuple[str, int]]:
        """(measure, count) for the plain counts, in a stable order."""
        yield "failures", self.failures
        yield "overrides", self.overrides
        yield "teller_overrides", self.teller_overrides
        yield "escalations", self.escalations
        yield "approvals", self.approvals
        yield "rejections", self.rejections
        yield "refusals", self.refusals

    def tallies(self) -> Iterable[tuple[str, str, Tally]]:
        """(measure, key, tally) for every figure, in a stable order."""
        yield "decisions", "", self.decisions
        for key, tally in self.by_action.items():
            yield "decisions_by_action", key, tally
        yield "cases", "", self.cases
        for key, tally in self.by_outcome.items():
            yield "cases_by_outcome", key, tally
        yield "prevented", "", self.prevented
        yield "confirmed_fraud", "", self.confirmed_fraud
        yield "prevented_confirmed_fraud", "", self.prevented_confirmed_fraud
        yield "legitimate_questioned", "", self.legitimate_questioned

    def to_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "decisions": self.decisions.to_dict(),
            "decisions_by_action": {k: t.to_dict() for k, t in self.by_action.items()},
            "failures": self.failures,
            "cases": self.cases.to_dict(),
            "cases_by_outcome": {k: t.to_dict() for k, t in self.by_outcome.items()},
            "prevented": self.prevented.to_dict(),
            "confirmed_fraud": self.confirmed_fraud.to_dict(),
            "prevented_confirmed_fraud": self.prevented_confirmed_fraud.to_dict(),
            "legitimate_questioned": self.legitimate_questioned.to_dict(),
            "overrides": self.overrides,
            "teller_overrides": self.teller_overrides,
            "escalations": self.escalations,
            "approvals": self.approvals,
            "rejections": self.rejections,
            "refusals": self.refusals,
        }


@dataclass
class RuleStats:
    """How often a rule hit and, where verdicts exist, how often it was right."""

    rule_id: str
    hits: Tally = field(default_factory=Tally)
    cases: int = 0
    hits_with_verdict: int = 0
    hits_confirmed_fraud: int = 0

    @property
    def precision(self) -> float | None:
        if self.hits_with_verdict == 0:
            return None
        return self.hits_confirmed_fraud / self.hits_with_verdict

    def to_dict(self) -> dict[str, object]:
        return {
            "rule_id": self.rule_id,
            "hits": self.hits.to_dict(),
            "cases": self.cases,
            "hits_with_verdict": self.hits_with_verdict,
            "hits_confirmed_fraud": self.hits_confirmed_fraud,
            "precision": self.precision,
        }


@dataclass
class AuditReport:
    """The result of :func:`build_report`; export with :meth:`to_json` or :meth:`to_csv`."""

    by: GroupBy
    start: dt.datetime | None
    end: dt.datetime | None
    total: GroupReport
    groups: dict[str, GroupReport]
    rules: dict[str, RuleStats]
    records_read: int = 0
    unmatched_steps: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "by": self.by.value,
            "from": None if self.start is None else self.start.isoformat(),
            "to": None if self.end is None else self.end.isoformat(),
            "records_read": self.records_read,
            "unmatched_steps": self.unmatched_steps,
            "total": self.total.to_dict(),
            "groups": [self.groups[k].to_dict() for k in sorted(self.groups)],
            "rules": [self.rules[k].to_dict() for k in sorted(self.rules)],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    def to_csv(self) -> str:
        """One long table: section, group, measure, key, currency, count, amount, ratio."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["section", "group", "measure", "key", "currency", "count", "amount", "ratio"]
        )
        sections = [("total", self.total)] + [
            ("group", self.groups[k]) for k in sorted(self.groups)
        ]
        for section, group in sections:
            for measure, key, tally in group.tallies():
                _tally_rows(writer, section, group.group, measure, key, tally)
            for measure, value in group.counts():
                writer.writerow([section, group.group, measure, "", "", value, "", ""])
        for rule_id in sorted(self.rules):
            stats = self.rules[rule_id]
            _tally_rows(writer, "rule", rule_id, "hits", "", stats.hits)
            for measure, value in (
                ("cases", stats.cases),
                ("hits_with_verdict", stats.hits_with_verdict),
                ("hits_confirmed_fraud", stats.hits_confirmed_fraud),
            ):
                writer.writerow(["rule", rule_id, measure, "", "", value, "", ""])
            precision = "" if stats.precision is None else f"{stats.precision:.4f}"
            writer.writerow(["rule", rule_id, "precision", "", "", "", "", precision])
        return out.getvalue()

    def to_text(self) -> str:
        """A short human summary (the totals and rule precision)."""
        t = self.total
        lines = [
            f"records read: {self.records_read}",
            f"decisions: {t.decisions.count}  failures: {t.failures}",
        ]
        for key, tally in t.by_action.items():
            if tally.count:
                lines.append(f"  {key:<12} {tally.count:>8}  {_amounts(tally)}")
        lines.append(
            f"cases: {t.cases.count}  escalations: {t.escalations}  approvals: {t.approvals}  "
            f"rejections: {t.rejections}  overrides: {t.overrides}  "
            f"teller overrides: {t.teller_overrides}  refused steps: {t.refusals}"
        )
        for key, tally in t.by_outcome.items():
            if tally.count:
                lines.append(f"  {key:<28} {tally.count:>8}  {_amounts(tally)}")
        lines.append(f"prevented: {t.prevented.count}  {_amounts(t.prevented)}")
        lines.append(
            f"confirmed fraud prevented: {t.prevented_confirmed_fraud.count}  "
            f"{_amounts(t.prevented_confirmed_fraud)}"
        )
        lines.append(f"legitimate customers questioned: {t.legitimate_questioned.count}")
        if self.by is not GroupBy.ALL:
            lines.append(f"by {self.by.value}:")
            for key in sorted(self.groups):
                g = self.groups[key]
                lines.append(
                    f"  {key:<24} decisions {g.decisions.count:>7}  cases {g.cases.count:>7}  "
                    f"prevented {g.prevented.count:>6} {_amounts(g.prevented)}"
                )
        if self.rules:
            lines.append("rules (hits, precision):")
            for rule_id in sorted(self.rules):
                s = self.rules[rule_id]
                precision = "n/a" if s.precision is None else f"{s.precision:.1%}"
                lines.append(f"  {rule_id:<32} {s.hits.count:>7}  {precision}")
        return "\n".join(lines) + "\n"


def _amounts(tally: Tally) -> str:
    return ", ".join(f"{cur} {from_fen(s[1])}" for cur, s in sorted(tally.by_currency.items()))


def _tally_rows(
    writer: _CsvWriter, section: str, group: str, measure: str, key: str, tally: Tally
) -> None:
    if not tally.by_currency:
        writer.writerow([section, group, measure, key, "", 0, "0.00", ""])
    for currency, (count, fen) in sorted(tally.by_currency.items()):
        writer.writerow([section, group, measure, key, currency, count, str(from_fen(fen)), ""])


class _CsvWriter(Protocol):  # the csv module's writer type is private; this is its shape
    def writerow(self, row: Iterable[Any], /) -> Any: ...


@dataclass
class _Case:
    first: DecisionRecord | None = None
    decisions: list[DecisionRecord] = field(default_factory=list)
    outcome: Outcome | None = None
    confirmed_fraud: bool | None = None
    kinds: Counter[StepKind] = field(default_factory=Counter)
    steps: int = 0


def _in_range(moment: dt.datetime, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    return (start is None or moment >= start) and (end is None or moment < end)


def _group_keys(record: DecisionRecord, by: GroupBy) -> list[str]:
    if by is GroupBy.BRANCH:
        return [record.event.branch_id]
    if by is GroupBy.TELLER:
        return [record.teller_id]
    if by is GroupBy.KIND:
        return [record.event.kind.value]
    if by is GroupBy.RULE:
        rules = sorted({hit.rule_id for hit in record.hits})
        return rules or [NO_RULE]
    return ["all"]


def build_report(
    records: Iterable[AuditRecord],
    *,
    by: GroupBy | str = GroupBy.ALL,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> AuditReport:
    """Aggregate ``records`` (e.g. ``AuditLog.records()``) for events in ``[start, end)``."""
    by = GroupBy(by)
    for name, bound in (("start", start), ("end", end)):
        if bound is not None and (bound.tzinfo is None or bound.utcoffset() is None):
            raise ValueError(f"{name}: must carry a time zone offset")
    cases: dict[str, _Case] = {}
    read = 0
    for record in records:
        read += 1
        payload = record.payload
        if not isinstance(payload, DecisionRecord | SessionStepRecord):
            continue  # shadow, control (shadow_report) and case-ledger (period_report) records
        case = cases.setdefault(payload.case_id, _Case())
        if isinstance(payload, DecisionRecord):
            if case.first is None:
                case.first = payload
            case.decisions.append(payload)
        else:
            _apply_step(case, payload)
    report = AuditReport(by, start, end, GroupReport("all"), {}, {}, records_read=read)
    for case in cases.values():
        if case.first is None:
            report.unmatched_steps += case.steps
            continue
        _count_case(report, case, by, start, end)
    return report


def _apply_step(case: _Case, step: SessionStepRecord) -> None:
    case.steps += 1
    if step.outcome is not None:
        case.outcome = step.outcome
    if step.confirmed_fraud is not None:
        case.confirmed_fraud = step.confirmed_fraud
    case.kinds[counted_kind(step)] += 1


# Before the counter session had its own kinds for these steps it wrote them under the nearest
# kind, the session's step name leading the reason (``supervisor_approve: ...``).
_LEGACY: dict[StepKind, dict[str, StepKind]] = {
    StepKind.SUPERVISOR_OVERRIDE: {
        "supervisor_approve": StepKind.SUPERVISOR_APPROVED,
        "supervisor_reject": StepKind.SUPERVISOR_REJECTED,
    },
    StepKind.ESCALATED: {"teller_raise": StepKind.TELLER_OVERRIDE},
    StepKind.ANSWERS_RECORDED: {"record_observations": StepKind.OBSERVATIONS_RECORDED},
    StepKind.ACKNOWLEDGED: {
        "acknowledge_notice": StepKind.NOTICE_ACKNOWLEDGED,
        "sign_risk_acknowledgement": StepKind.RISK_ACKNOWLEDGED,
    },
}


def counted_kind(step: SessionStepRecord) -> StepKind:
    """The kind a step is counted as: its own, or for a record written under the nearest kind
    before its own existed, the kind named at the head of its reason."""
    for name, kind in _LEGACY.get(step.step, {}).items():
        if step.reason == name or step.reason.startswith(name + ": "):
            return kind
    return step.step


def _group(report: AuditReport, key: str) -> GroupReport:
    group = report.groups.get(key)
    if group is None:
        group = report.groups[key] = GroupReport(key)
    return group


def _count_case(
    report: AuditReport,
    case: _Case,
    by: GroupBy,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> None:
    first = case.first
    assert first is not None
    verdict = case.confirmed_fraud
    # decisions: each counted in its own time
    for decision in case.decisions:
        if not _in_range(decision.event.timestamp, start, end):
            continue
        currency, fen = decision.event.amount.currency.value, decision.event.amount_fen
        keys = _group_keys(decision, by)
        targets = [report.total] + (
            [_group(report, k) for k in keys] if by is not GroupBy.ALL else []
        )
        for g in targets:
            g.decisions.add(currency, fen)
            g.by_action[decision.action.value].add(currency, fen)
            g.failures += 1 if decision.failures else 0
        for rule_id in sorted({hit.rule_id for hit in decision.hits}):
            stats = report.rules.get(rule_id)
            if stats is None:
                stats = report.rules[rule_id] = RuleStats(rule_id)
            stats.hits.add(currency, fen)
            if verdict is not None:
                stats.hits_with_verdict += 1
                stats.hits_confirmed_fraud += 1 if verdict else 0
    # the case: counted once, in the time of its first decision
    if not _in_range(first.event.timestamp, start, end):
        return
    currency, fen = first.event.amount.currency.value, first.event.amount_fen
    if by is GroupBy.RULE:
        keys = sorted({hit.rule_id for d in case.decisions for hit in d.hits}) or [NO_RULE]
    else:
        keys = _group_keys(first, by)
    for rule_id in {hit.rule_id for d in case.decisions for hit in d.hits}:
        if rule_id in report.rules:
            report.rules[rule_id].cases += 1
    highest = max(d.action for d in case.decisions)
    targets = [report.total] + ([_group(report, k) for k in keys] if by is not GroupBy.ALL else [])
    for g in targets:
        g.cases.add(currency, fen)
        outcome_key = OPEN if case.outcome is None else case.outcome.value
        g.by_outcome[outcome_key].add(currency, fen)
        prevented = case.outcome in PREVENTED_OUTCOMES
        if prevented:
            g.prevented.add(currency, fen)
        if verdict is True:
            g.confirmed_fraud.add(currency, fen)
            if prevented:
                g.prevented_confirmed_fraud.add(currency, fen)
        if verdict is False and highest >= Action.INQUIRE:
            g.legitimate_questioned.add(currency, fen)
        g.overrides += case.kinds[StepKind.SUPERVISOR_OVERRIDE]
        g.teller_overrides += case.kinds[StepKind.TELLER_OVERRIDE]
        g.escalations += case.kinds[StepKind.ESCALATED]
        g.approvals += case.kinds[StepKind.SUPERVISOR_APPROVED]
        g.rejections += case.kinds[StepKind.SUPERVISOR_REJECTED]
        g.refusals += case.kinds[StepKind.STEP_REFUSED]
