"""Period reports that an auditor can sign, aggregated in SQL over the report index.

Units, said plainly:

* a **screening** is one request at the counter (every decision sharing a case id): it counts
  once, in the period of its first decision, with that decision's branch, teller, kind,
  channel and amount, and its highest action. Its outcome is the last one recorded
  (``executed`` when the transaction simply went through), its verdict the last one known
  (from the counter or, later, from the case ledger; ``unknown`` withdraws it). A screening
  with no outcome recorded is counted as ``no_outcome``: it is *not* a case.
* a **case** is an entry in the case ledger (opened from a screening at or above the
  configured action, from a complaint, or by hand): it counts in the period it was opened.
  ``cases_open`` are the cases among those still open "as of" the latest time the log knows
  (its last event or ledger entry, unless ``as_of`` is given); case ageing is measured then.

Periods (``day``, ``week`` starting Monday, ``month``, ``quarter``) are calendar periods in the
report's time zone. Grouping by ``rule`` puts a screening in the group of every rule that hit
it, so rule groups overlap. Precision of a rule is confirmed fraud / screenings with a verdict
among the screenings it hit, with its sample size and a 95% Wilson interval.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypedDict, Unpack
from zoneinfo import ZoneInfo

from guardrail.audit.intervals import wilson
from guardrail.audit.report_index import (
    CELLS,
    INDEX_OFFSET_S,
    POSTGRES,
    SQLITE,
    Dialect,
    ReportIndex,
)
from guardrail.audit.store import AuditStoreError
from guardrail.model import Action, from_fen

PERIODS = ("day", "week", "month", "quarter")
DIMENSIONS = (*PERIODS, "branch", "rule", "kind", "channel", "teller", "typology")
NONE = "(none)"
PREVENTED = (
    "withdrawn_after_dissuasion",
    "intercepted",
    "police_notified",
    "protective_stop_payment",
)
COMPLAINT_TYPES = ("complaint", "friction_complaint")
AGE_BUCKETS = ((0, 7, "0-7d"), (8, 30, "8-30d"), (31, 90, "31-90d"), (91, None, ">90d"))


class ReportError(AuditStoreError):
    """A report that cannot be made: bad grouping, bad filter, unreadable log."""


def parse_by(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"month,branch"`` → ``("month", "branch")``; names each unknown dimension."""
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    parts = [p for p in parts if p and p != "all"]
    for part in parts:
        if part not in DIMENSIONS:
            raise ReportError(f"--by: unknown grouping {part!r}; one of {', '.join(DIMENSIONS)}")
    if len(set(parts)) != len(parts):
        raise ReportError(f"--by: a grouping is repeated in {','.join(parts)!r}")
    if len([p for p in parts if p in PERIODS]) > 1:
        raise ReportError("--by: at most one period (day, week, month or quarter)")
    return tuple(parts)


class ReportArgs(TypedDict, total=False):
    """The keyword arguments every report function takes (see ``ReportOptions``)."""

    by: str | Sequence[str]
    start: dt.datetime | None
    end: dt.datetime | None
    tz: str
    kinds: Sequence[str]
    channels: Sequence[str]
    as_of: dt.datetime | None
    rebuild_upto: int | None


@dataclass(frozen=True)
class ReportOptions:
    """What a report covers and how it groups: ``by`` dimensions, the period ``start``/``end``
    (aware datetimes), the calendar's time zone ``tz``, ``kinds``/``channels`` filters, the
    ``as_of`` moment cases are aged at, and ``rebuild_upto`` (rebuild the index from records
    1..N, for a report over just-verified records, instead of refreshing it)."""

    by: tuple[str, ...] = ()
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    tz: str = "Asia/Shanghai"
    kinds: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    as_of: dt.datetime | None = None
    rebuild_upto: int | None = None

    @classmethod
    def of(cls, args: ReportArgs) -> ReportOptions:
        """The options a report function's keyword arguments ask for, validated."""
        return cls(
            by=parse_by(args.get("by", ())),
            start=args.get("start"),
            end=args.get("end"),
            tz=args.get("tz", "Asia/Shanghai"),
            kinds=tuple(args.get("kinds", ())),
            channels=tuple(args.get("channels", ())),
            as_of=args.get("as_of"),
            rebuild_upto=args.get("rebuild_upto"),
        )


@dataclass
class Amounts:
    """A count and exact amounts (integer fen) per currency."""

    count: int = 0
    fen: dict[str, int] = field(default_factory=dict)

    def add(self, count: int, currency: str | None, fen: int | None) -> None:
        self.count += count
        if currency is not None and fen is not None:
            self.fen[currency] = self.fen.get(currency, 0) + fen

    def amount(self, currency: str = "CNY") -> str:
        return str(from_fen(self.fen.get(currency, 0)))

    def to_dict(self) -> dict[str, object]:
        return {
            "count": self.count,
            "amounts": {cur: str(from_fen(v)) for cur, v in sorted(self.fen.items())},
            "amounts_fen": dict(sorted(self.fen.items())),
        }


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


@dataclass
class Row:
    """The figures of one group (or of the whole report)."""

    key: tuple[str, ...]
    screened: Amounts = field(default_factory=Amounts)
    by_action: dict[str, int] = field(default_factory=lambda: {a.value: 0 for a in Action})
    executed: Amounts = field(default_factory=Amounts)
    intercepted: Amounts = field(default_factory=Amounts)  # a preventing outcome recorded
    police_notified: Amounts = field(default_factory=Amounts)
    no_outcome: int = 0
    failures: int = 0
    fraud_confirmed: int = 0
    not_fraud: int = 0
    questioned_legitimate: int = 0  # action >= inquire, verdict not fraud
    held_legitimate: int = 0  # action >= hold, verdict not fraud
    cases_opened: int = 0
    cases_closed: int = 0
    cases_open: int = 0
    complaints_received: int = 0
    complaints_closed: int = 0
    friction_complaints: int = 0
    cases_reported_to_police: int = 0
    amount_at_risk: Amounts = field(default_factory=Amounts)
    prevented_ledger: Amounts = field(default_factory=Amounts)
    returned: Amounts = field(default_factory=Amounts)
    seconds_to_close_total: int = 0  # exact, so totals do not depend on summation order
    open_by_age: dict[str, int] = field(default_factory=lambda: {b[2]: 0 for b in AGE_BUCKETS})

    @property
    def complaint_close_rate(self) -> float | None:
        return _ratio(self.complaints_closed, self.complaints_received)

    @property
    def case_close_rate(self) -> float | None:
        return _ratio(self.cases_closed, self.cases_opened)

    @property
    def mean_days_to_close(self) -> float | None:
        return (
            None
            if self.cases_closed == 0
            else self.seconds_to_close_total / 86400 / self.cases_closed
        )

    def to_dict(self, dims: Sequence[str]) -> dict[str, object]:
        return {
            "group": dict(zip(dims, self.key, strict=True)),
            "screened": self.screened.to_dict(),
            "by_action": dict(self.by_action),
            "executed": self.executed.to_dict(),
            "intercepted": self.intercepted.to_dict(),
            "police_notified": self.police_notified.to_dict(),
            "no_outcome": self.no_outcome,
            "failures": self.failures,
            "fraud_confirmed": self.fraud_confirmed,
            "not_fraud": self.not_fraud,
            "friction": {
                "questioned_legitimate": self.questioned_legitimate,
                "held_legitimate": self.held_legitimate,
                "friction_complaints": self.friction_complaints,
            },
            "cases": {
                "opened": self.cases_opened,
                "closed": self.cases_closed,
                "open": self.cases_open,
                "close_rate": self.case_close_rate,
                "reported_to_police": self.cases_reported_to_police,
                "mean_days_to_close": self.mean_days_to_close,
                "open_by_age": dict(self.open_by_age),
                "amount_at_risk": self.amount_at_risk.to_dict(),
                "prevented": self.prevented_ledger.to_dict(),
                "returned": self.returned.to_dict(),
            },
            "complaints": {
                "received": self.complaints_received,
                "closed": self.complaints_closed,
                "close_rate": self.complaint_close_rate,
            },
        }


@dataclass
class RulePrecision:
    """A rule's hits and, where verdicts exist, how often it was right (with n and a 95%
    Wilson interval)."""

    rule_id: str
    hits: Amounts = field(default_factory=Amounts)
    with_verdict: int = 0
    confirmed: int = 0

    @property
    def precision(self) -> float | None:
        return _ratio(self.confirmed, self.with_verdict)

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.confirmed, self.with_verdict)

    def to_dict(self) -> dict[str, object]:
        interval = self.interval
        return {
            "rule_id": self.rule_id,
            "hits": self.hits.to_dict(),
            "n": self.with_verdict,
            "confirmed": self.confirmed,
            "precision": self.precision,
            "interval95": None if interval is None else list(interval),
        }


@dataclass
class PeriodReport:
    """The result of :func:`make_report`."""

    by: tuple[str, ...]
    start: dt.datetime | None
    end: dt.datetime | None
    tz: str
    kinds: tuple[str, ...]
    channels: tuple[str, ...]
    as_of: dt.datetime
    total: Row
    rows: dict[tuple[str, ...], Row]
    rules: dict[str, RulePrecision]
    typologies: dict[str, Row]
    records_indexed: int
    seconds: float = 0.0
    source: str = ""

    def sorted_rows(self) -> list[Row]:
        return [self.rows[k] for k in sorted(self.rows)]

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "by": list(self.by),
            "from": None if self.start is None else self.start.isoformat(),
            "to": None if self.end is None else self.end.isoformat(),
            "tz": self.tz,
            "kinds": list(self.kinds),
            "channels": list(self.channels),
            "as_of": self.as_of.isoformat(),
            "records_indexed": self.records_indexed,
            "total": self.total.to_dict(()),
            "groups": [r.to_dict(self.by) for r in self.sorted_rows()],
            "rules": [self.rules[k].to_dict() for k in sorted(self.rules)],
            "typologies": [
                self.typologies[k].to_dict(("typology",)) for k in sorted(self.typologies)
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    def to_csv(self) -> str:
        """One flat table: a line per group (the total first), then a line per rule."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        header = [
            *self.by,
            "screened",
            "screened_cny",
            *[f"action_{a.value}" for a in Action],
            "executed",
            "intercepted",
            "intercepted_cny",
            "police_notified",
            "police_notified_cny",
            "no_outcome",
            "fraud_confirmed",
            "not_fraud",
            "questioned_legitimate",
            "held_legitimate",
            "cases_opened",
            "cases_closed",
            "cases_open",
            "complaints_received",
            "complaints_closed",
            "complaint_close_rate",
            "friction_complaints",
            "returned_cny",
        ]
        w.writerow(["section", *header])
        for section, row in [("total", self.total)] + [("group", r) for r in self.sorted_rows()]:
            key = list(row.key) if section == "group" else ["all"] * len(self.by)
            rate = row.complaint_close_rate
            w.writerow(
                [
                    section,
                    *key,
                    row.screened.count,
                    row.screened.amount(),
                    *[row.by_action[a.value] for a in Action],
                    row.executed.count,
                    row.intercepted.count,
                    row.intercepted.amount(),
                    row.police_notified.count,
                    row.police_notified.amount(),
                    row.no_outcome,
                    row.fraud_confirmed,
                    row.not_fraud,
                    row.questioned_legitimate,
                    row.held_legitimate,
                    row.cases_opened,
                    row.cases_closed,
                    row.cases_open,
                    row.complaints_received,
                    row.complaints_closed,
                    "" if rate is None else f"{rate:.4f}",
                    row.friction_complaints,
                    row.returned.amount(),
                ]
            )
        w.writerow([])
        w.writerow(["rule", "hits", "n_with_verdict", "confirmed", "precision", "low95", "high95"])
        for rule_id in sorted(self.rules):
            r = self.rules[rule_id]
            iv = r.interval
            w.writerow(
                [
                    rule_id,
                    r.hits.count,
                    r.with_verdict,
                    r.confirmed,
                    "" if r.precision is None else f"{r.precision:.4f}",
                    "" if iv is None else f"{iv[0]:.4f}",
                    "" if iv is None else f"{iv[1]:.4f}",
                ]
            )
        return out.getvalue()

    def to_text(self) -> str:
        t = self.total
        span = f"{_day(self.start)} .. {_day(self.end, end=True)} ({self.tz})"
        lines = [
            f"audit report {span}; records indexed: {self.records_indexed:,}",
            f"screened {t.screened.count:,} (CNY {t.screened.amount()}); "
            f"executed {t.executed.count:,}; no outcome recorded {t.no_outcome:,}; "
            f"failures {t.failures:,}",
            "  by action: " + ", ".join(f"{k} {v:,}" for k, v in t.by_action.items() if v),
            f"intercepted {t.intercepted.count:,} (CNY {t.intercepted.amount()}); "
            f"police notified {t.police_notified.count:,} (CNY {t.police_notified.amount()})",
            f"verdicts: fraud confirmed {t.fraud_confirmed:,}, not fraud {t.not_fraud:,}",
            f"friction: legitimate customers questioned {t.questioned_legitimate:,}, held "
            f"{t.held_legitimate:,}; friction complaints {t.friction_complaints:,}",
            f"cases: opened {t.cases_opened:,}, closed {t.cases_closed:,}, open "
            f"{t.cases_open:,} (close rate {_pct(t.case_close_rate)}); returned to victims "
            f"CNY {t.returned.amount()}",
            f"complaints: received {t.complaints_received:,}, closed {t.complaints_closed:,} "
            f"({_pct(t.complaint_close_rate)})",
        ]
        if self.by:
            lines.append("")
            head = "  ".join(f"{d:<12}" for d in self.by)
            lines.append(
                f"{head}  {'screened':>9} {'intercepted':>11} {'CNY intercepted':>16} "
                f"{'cases':>6} {'open':>5} {'complaints':>10}"
            )
            for row in self.sorted_rows():
                key = "  ".join(f"{k:<12}" for k in row.key)
                lines.append(
                    f"{key}  {row.screened.count:>9,} {row.intercepted.count:>11,} "
                    f"{row.intercepted.amount():>16} {row.cases_opened:>6,} "
                    f"{row.cases_open:>5,} {row.complaints_received:>10,}"
                )
        if self.rules:
            lines.append("")
            lines.append(
                f"{'rule':<34} {'hits':>8} {'n':>6} {'precision':>9}  95% interval (Wilson)"
            )
            for rule_id in sorted(self.rules):
                r = self.rules[rule_id]
                iv = r.interval
                interval = "n/a" if iv is None else f"[{iv[0]:.1%}, {iv[1]:.1%}]"
                lines.append(
                    f"{rule_id:<34} {r.hits.count:>8,} {r.with_verdict:>6,} "
                    f"{_pct(r.precision):>9}  {interval}"
                )
        return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _day(moment: dt.datetime | None, *, end: bool = False) -> str:
    if moment is None:
        return "…"
    if end:
        moment = moment - dt.timedelta(microseconds=1)
    return moment.date().isoformat()


# -- SQL ----------------------------------------------------------------------------------------
# Latest-of lookups are correlated subqueries on (case_id, seq) indexes: one index probe per
# row, on SQLite and PostgreSQL alike.
def _latest(column: str, table: str, key: str, where: str = "") -> str:
    extra = f" AND {where}" if where else ""
    return (
        f"(SELECT x.{column} FROM {table} x WHERE x.case_id = {key}{extra}"
        " ORDER BY x.seq DESC LIMIT 1)"
    )


def _screening_rows(where: str) -> str:
    return f"(SELECT * FROM rpt_screening s WHERE {where}) s"


_CASE_ROWS = (
    "(SELECT o.case_id, o.epoch, o.case_type, o.branch, o.typology, o.source_case_id,"
    " o.risk_fen, o.risk_cur, "
    + "(SELECT MAX(x.epoch) FROM rpt_entry x WHERE x.case_id = o.case_id AND x.entry = 'closed')"
    + " AS closed_epoch, "
    + _latest("police", "rpt_entry", "o.case_id", "x.police IS NOT NULL")
    + " AS police, "
    + _latest("prevented_fen", "rpt_entry", "o.case_id", "x.prevented_fen IS NOT NULL")
    + " AS prevented_fen, "
    + _latest("prevented_cur", "rpt_entry", "o.case_id", "x.prevented_fen IS NOT NULL")
    + " AS prevented_cur, "
    + _latest("returned_fen", "rpt_entry", "o.case_id", "x.returned_fen IS NOT NULL")
    + " AS returned_fen, "
    + _latest("returned_cur", "rpt_entry", "o.case_id", "x.returned_fen IS NOT NULL")
    + " AS returned_cur"
    " FROM rpt_entry o WHERE o.entry = 'opened' AND NOT EXISTS (SELECT 1 FROM rpt_entry y"
    " WHERE y.case_id = o.case_id AND y.entry = 'opened' AND y.seq < o.seq)) o"
)


@dataclass(frozen=True)
class _Query:
    dialect: Dialect
    by: tuple[str, ...]
    start: int | None
    end: int | None
    kinds: tuple[str, ...]
    channels: tuple[str, ...]
    offset_s: int
    tz: str
    case_rows: str = _CASE_ROWS

    def dim(self, name: str, *, unit: str) -> str:
        """The SQL of dimension ``name`` for screenings (``unit='s'``) or cases (``'c'``)."""
        if name in PERIODS:  # the local day number; weeks, months, quarters are folded from it
            if unit == "s" and self.offset_s == INDEX_OFFSET_S:
                return "s.day"  # stored, and in the order of the covering indexes
            epoch = "s.epoch" if unit == "s" else "o.epoch"
            return f"(({epoch} + {int(self.offset_s)}) / 86400)"
        if name == "branch":
            return "s.branch" if unit == "s" else f"COALESCE(o.branch, s.branch, '{NONE}')"
        if name == "rule":
            return f"COALESCE(cr.rule_id, '{NONE}')"
        if name == "typology":
            return f"COALESCE({'s' if unit == 's' else 'o'}.typology, '{NONE}')"
        column = {"kind": "kind", "channel": "channel", "teller": "teller"}[name]
        return f"COALESCE(s.{column}, '{NONE}')"

    def where(self, epoch: str, params: list[Any], *, linked_only: bool) -> str:
        p = self.dialect.param
        parts = ["1 = 1"]
        if self.start is not None:
            parts.append(f"{epoch} >= {p}")
            params.append(self.start)
        if self.end is not None:
            parts.append(f"{epoch} < {p}")
            params.append(self.end)
        for column, values in (("s.kind", self.kinds), ("s.channel", self.channels)):
            if values:
                parts.append(f"{column} IN ({', '.join([p] * len(values))})")
                params.extend(values)
        if linked_only and (self.kinds or self.channels):
            parts.append("s.case_id IS NOT NULL")
        return " AND ".join(parts)

    def screenings(self) -> tuple[str, list[Any]]:
        """Counts and amounts per group and per (currency, action, outcome, verdict,
        failed): the SQL only groups; the measures are folded from these cells in Python."""
        dims = [self.dim(n, unit="s") for n in self.by]
        select = "".join(f"{expr} AS d{k}, " for k, expr in enumerate(dims))
        cells = ", ".join(f"s.{column.strip()}" for column in CELLS.split(","))
        groups = ", ".join([f"d{k}" for k in range(len(dims))] + [cells])
        params: list[Any] = []
        rows = _screening_rows(self.where("s.epoch", params, linked_only=False))
        head = f"SELECT {select}{cells}, COUNT(*), SUM(s.amount_fen) FROM "
        if "rule" not in self.by:
            return f"{head}{rows} GROUP BY {groups}", params
        # A request hit by rules counts in each rule's group (through the small rule table);
        # one hit by none, in "(none)", without a join.
        none = [self.dim(n, unit="s") if n != "rule" else f"'{NONE}'" for n in self.by]
        select_none = "".join(f"{expr} AS d{k}, " for k, expr in enumerate(none))
        # The constant rule column stays out of GROUP BY, so the unruled index serves it.
        groups_none = ", ".join([f"d{k}" for k, n in enumerate(self.by) if n != "rule"] + [cells])
        params2: list[Any] = []
        rows2 = _screening_rows(self.where("s.epoch", params2, linked_only=False))
        sql = (
            f"{head}rpt_case_rule cr JOIN {rows} ON s.case_id = cr.case_id GROUP BY {groups}"
            f" UNION ALL SELECT {select_none}{cells}, COUNT(*), SUM(s.amount_fen) FROM {rows2}"
            f" WHERE s.rules = 0 GROUP BY {groups_none}"
        )
        return sql, params + params2

    def rules(self) -> tuple[str, list[Any]]:
        params: list[Any] = []
        sql = (
            "SELECT cr.rule_id, s.currency, COUNT(*), SUM(s.amount_fen),"
            " SUM(CASE WHEN s.fraud IS NOT NULL THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN s.fraud = 1 THEN 1 ELSE 0 END)"
            " FROM "
            + _screening_rows(self.where("s.epoch", params, linked_only=False))
            + " JOIN rpt_case_rule cr ON cr.case_id = s.case_id WHERE s.rules > 0"
            " GROUP BY cr.rule_id, s.currency"
        )
        return sql, params

    def _cases_from(self) -> str:
        sql = f" FROM {self.case_rows} LEFT JOIN rpt_screening s ON s.case_id = o.source_case_id"
        if "rule" in self.by:
            sql += " LEFT JOIN rpt_case_rule cr ON cr.case_id = o.source_case_id"
        return sql

    def cases(self, as_of: int, *, dims: Sequence[str] | None = None) -> tuple[str, list[Any]]:
        names = self.by if dims is None else tuple(dims)
        exprs = [self.dim(n, unit="c") for n in names]
        select = "".join(f"{expr} AS d{k}, " for k, expr in enumerate(exprs))
        complaint = "o.case_type IN (" + ", ".join(f"'{t}'" for t in COMPLAINT_TYPES) + ")"
        ages = ""
        for low, high, _ in AGE_BUCKETS:
            cond = f"({as_of} - o.epoch) >= {low * 86400}"
            if high is not None:
                cond += f" AND ({as_of} - o.epoch) < {(high + 1) * 86400}"
            ages += f", SUM(CASE WHEN o.closed_epoch IS NULL AND {cond} THEN 1 ELSE 0 END)"
        params: list[Any] = []
        sql = (
            f"SELECT {select}COUNT(*), SUM(CASE WHEN o.closed_epoch IS NOT NULL THEN 1 ELSE 0 END),"
            f" SUM(CASE WHEN {complaint} THEN 1 ELSE 0 END),"
            f" SUM(CASE WHEN {complaint} AND o.closed_epoch IS NOT NULL THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN o.case_type = 'friction_complaint' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN o.police = 1 THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN o.closed_epoch IS NOT NULL THEN o.closed_epoch - o.epoch ELSE 0 END)"
            f"{ages}{self._cases_from()} WHERE " + self.where("o.epoch", params, linked_only=True)
        )
        if exprs:
            sql += " GROUP BY " + ", ".join(f"d{k}" for k in range(len(exprs)))
        return sql, params

    def case_money(self, what: str, *, dims: Sequence[str] | None = None) -> tuple[str, list[Any]]:
        """Amounts per group and currency: ``risk`` (at opening), ``prevented``, ``returned``."""
        names = self.by if dims is None else tuple(dims)
        exprs = [self.dim(n, unit="c") for n in names]
        select = "".join(f"{expr} AS d{k}, " for k, expr in enumerate(exprs))
        params: list[Any] = []
        fen, cur = f"o.{what}_fen", f"o.{what}_cur"
        sql = (
            f"SELECT {select}{cur}, COUNT(*), SUM({fen}){self._cases_from()}"
            f" WHERE {fen} IS NOT NULL AND " + self.where("o.epoch", params, linked_only=True)
        )
        sql += " GROUP BY " + ", ".join([f"d{k}" for k in range(len(exprs))] + [cur])
        return sql, params


def _tz_offset(zone: dt.tzinfo, at: dt.datetime) -> int:
    offset = at.astimezone(zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def aggregate(
    conn: Any, dialect: Dialect, options: ReportOptions, *, records_indexed: int = 0
) -> PeriodReport:
    """Run the report's SQL over an up-to-date index on ``conn`` (a DB-API connection).

    The cases (each with its close, police report and latest amounts, looked up per case) are
    materialized once in a temporary table that every case query of the report reads."""
    temp = "temp.rpt_case_rows" if dialect is SQLITE else "pg_temp.rpt_case_rows"
    create = (
        f"CREATE TABLE {temp} AS SELECT * FROM {_CASE_ROWS}"
        if dialect is SQLITE
        else f"CREATE TEMP TABLE rpt_case_rows ON COMMIT DROP AS SELECT * FROM {_CASE_ROWS}"
    )
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {temp}")
    cur.execute(create)
    try:
        return _aggregate(conn, dialect, options, records_indexed, f"{temp} o")
    finally:
        conn.cursor().execute(f"DROP TABLE IF EXISTS {temp}")


def _aggregate(
    conn: Any,
    dialect: Dialect,
    options: ReportOptions,
    records_indexed: int,
    case_rows: str,
    *,
    with_rules: bool = True,
) -> PeriodReport:
    by, start, end, tz = options.by, options.start, options.end, options.tz
    kinds, channels, as_of = options.kinds, options.channels, options.as_of
    for name, bound in (("start", start), ("end", end)):
        if bound is not None and (bound.tzinfo is None or bound.utcoffset() is None):
            raise ReportError(f"{name}: must carry a time zone offset")
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        raise ReportError(f"--tz: unknown time zone {tz!r}") from None
    if as_of is None:
        as_of = _log_time(conn) or dt.datetime.now(dt.UTC)
    anchor = start or as_of
    query = _Query(
        dialect,
        by,
        None if start is None else int(start.timestamp()),
        None if end is None else int(end.timestamp()),
        tuple(kinds),
        tuple(channels),
        _tz_offset(zone, anchor),
        tz,
        case_rows,
    )
    report = PeriodReport(
        by,
        start,
        end,
        tz,
        tuple(kinds),
        tuple(channels),
        as_of,
        Row(()),
        {},
        {},
        {},
        records_indexed,
    )
    n = len(by)

    def rows_of(sql: str, params: list[Any]) -> list[Sequence[Any]]:
        cur = conn.cursor()
        cur.execute(sql, params)
        result: list[Sequence[Any]] = cur.fetchall()
        return result

    def targets(key: tuple[str, ...]) -> list[Row]:
        if not by:
            return [report.total]
        row = report.rows.get(key)
        if row is None:
            row = report.rows[key] = Row(key)
        return [row]

    sql, params = query.screenings()
    for rec in rows_of(sql, params):
        key = _key(rec[:n], by)
        currency, action, outcome, fraud, failed, count, amount = rec[n:]
        for row in targets(key):
            _add_cell(
                row,
                str(currency),
                int(action),
                outcome,
                fraud,
                int(failed),
                int(count),
                int(amount or 0),
            )
    as_of_epoch = int(as_of.timestamp())
    sql, params = query.cases(as_of_epoch)
    for rec in rows_of(sql, params):
        key = _key(rec[:n], by)
        for row in targets(key):
            _add_cases(row, [int(v or 0) for v in rec[n:]])
    for what in ("risk", "prevented", "returned"):
        sql, params = query.case_money(what)
        for rec in rows_of(sql, params):
            key = _key(rec[:n], by)
            for row in targets(key):
                _case_amounts(row, what).add(int(rec[n + 1] or 0), rec[n], int(rec[n + 2] or 0))
    sql, params = query.rules()
    for rec in rows_of(sql, params) if with_rules else ():
        stats = report.rules.setdefault(str(rec[0]), RulePrecision(str(rec[0])))
        stats.hits.add(int(rec[2]), str(rec[1]), int(rec[3] or 0))
        stats.with_verdict += int(rec[4] or 0)
        stats.confirmed += int(rec[5] or 0)
    if by and not {"rule", "typology"} & set(by):  # groups partition the total: add them up
        _fill_typologies(report, query, rows_of, as_of_epoch)
        report.total = _sum_rows(report.rows.values())
    elif by:  # rule groups overlap, so the total is its own query
        whole = _aggregate(
            conn,
            dialect,
            replace(options, by=(), as_of=as_of),
            records_indexed,
            case_rows,
            with_rules=False,  # the rule table is this report's own
        )
        report.total = whole.total
        report.typologies = whole.typologies
    else:
        _fill_typologies(report, query, rows_of, as_of_epoch)
    return report


def _sum_rows(rows: Iterable[Row]) -> Row:
    total = Row(())
    for row in rows:
        for name in (
            "screened",
            "executed",
            "intercepted",
            "police_notified",
            "amount_at_risk",
            "prevented_ledger",
            "returned",
        ):
            mine, theirs = getattr(total, name), getattr(row, name)
            mine.count += theirs.count
            for cur, fen in theirs.fen.items():
                mine.fen[cur] = mine.fen.get(cur, 0) + fen
        for key, value in row.by_action.items():
            total.by_action[key] += value
        for key, value in row.open_by_age.items():
            total.open_by_age[key] += value
        for name in (
            "no_outcome",
            "failures",
            "fraud_confirmed",
            "not_fraud",
            "questioned_legitimate",
            "held_legitimate",
            "cases_opened",
            "cases_closed",
            "cases_open",
            "complaints_received",
            "complaints_closed",
            "friction_complaints",
            "cases_reported_to_police",
            "seconds_to_close_total",
        ):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return total


def _log_time(conn: Any) -> dt.datetime | None:
    """The latest time the log knows of (event or ledger entry): the default "as of", so a
    past month's ageing is measured at its end, not today."""
    cur = conn.cursor()
    cur.execute(
        "SELECT MAX(t) FROM (SELECT MAX(epoch) AS t FROM rpt_screening"
        " UNION ALL SELECT MAX(epoch) AS t FROM rpt_entry) u"
    )
    row = cur.fetchone()
    if row is None or row[0] is None:
        return None
    return dt.datetime.fromtimestamp(int(row[0]), dt.UTC)


def _fill_typologies(report: PeriodReport, query: _Query, rows_of: Any, as_of: int) -> None:
    sql, params = query.cases(as_of, dims=("typology",))
    for rec in rows_of(sql, params):
        row = report.typologies.setdefault(str(rec[0]), Row((str(rec[0]),)))
        _add_cases(row, [int(v or 0) for v in rec[1:]])
    for what in ("risk", "prevented", "returned"):
        sql, params = query.case_money(what, dims=("typology",))
        for rec in rows_of(sql, params):
            row = report.typologies.setdefault(str(rec[0]), Row((str(rec[0]),)))
            _case_amounts(row, what).add(int(rec[2] or 0), rec[1], int(rec[3] or 0))


def _case_amounts(row: Row, what: str) -> Amounts:
    return {"risk": row.amount_at_risk, "prevented": row.prevented_ledger}.get(what, row.returned)


_EPOCH_DAY = dt.date(1970, 1, 1)


def period_label(day_number: int, unit: str) -> str:
    """The label of local day ``day_number`` (days since 1970-01-01) in ``unit``."""
    day = _EPOCH_DAY + dt.timedelta(days=day_number)
    if unit == "day":
        return day.isoformat()
    if unit == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if unit == "month":
        return f"{day:%Y-%m}"
    return f"{day.year}-Q{(day.month + 2) // 3}"


def _key(values: Iterable[Any], by: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        period_label(int(v), name)
        if name in PERIODS and v is not None
        else (NONE if v is None else str(v))
        for name, v in zip(by, values, strict=True)
    )


_RANK_ACTION = {action.rank: action for action in Action}
_INQUIRE, _HOLD = Action.INQUIRE.rank, Action.HOLD.rank


def _add_cell(
    row: Row,
    currency: str,
    action: int,
    outcome: str | None,
    fraud: int | None,
    failed: int,
    count: int,
    amount: int,
) -> None:
    """Fold one (action, outcome, verdict) cell of screenings into a row's measures."""
    row.screened.add(count, currency, amount)
    row.by_action[_RANK_ACTION[action].value] += count
    if outcome is None:
        row.no_outcome += count
    elif outcome == "executed":
        row.executed.add(count, currency, amount)
    elif outcome in PREVENTED:
        row.intercepted.add(count, currency, amount)
        if outcome == "police_notified":
            row.police_notified.add(count, currency, amount)
    row.failures += count if failed else 0
    if fraud == 1:
        row.fraud_confirmed += count
    elif fraud == 0:
        row.not_fraud += count
        row.questioned_legitimate += count if action >= _INQUIRE else 0
        row.held_legitimate += count if action >= _HOLD else 0


def _add_cases(row: Row, v: list[int]) -> None:
    row.cases_opened += v[0]
    row.cases_closed += v[1]
    row.cases_open += v[0] - v[1]
    row.complaints_received += v[2]
    row.complaints_closed += v[3]
    row.friction_complaints += v[4]
    row.cases_reported_to_police += v[5]
    row.seconds_to_close_total += v[6]
    for (_, _, label), value in zip(AGE_BUCKETS, v[7:], strict=True):
        row.open_by_age[label] += value


def sqlite_report(path: str | Path, **args: Unpack[ReportArgs]) -> PeriodReport:
    """Bring the SQLite log's report index up to date and aggregate it (keywords: see
    ``ReportOptions``)."""
    options = ReportOptions.of(args)
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no audit log at this path")
    started = time.perf_counter()
    try:
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise ReportError(f"{path}: cannot open: {exc}") from None
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        index = ReportIndex(conn)
        if options.rebuild_upto is not None:
            index.rebuild(options.rebuild_upto)
        else:
            index.refresh()
        conn.execute("BEGIN")  # one read snapshot for every query of the report
        report = aggregate(conn, SQLITE, options, records_indexed=index.indexed_seq())
        conn.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        raise ReportError(f"{path}: cannot report: {exc}") from None
    finally:
        conn.close()
    report.seconds = time.perf_counter() - started
    report.source = str(path)
    return report


def store_report(store: object, **args: Unpack[ReportArgs]) -> PeriodReport:
    """A report over any audit store that gives SQL access: a SQLite file, or a store with a
    ``sql_connection()`` context manager (PostgreSQL). Keywords: see ``ReportOptions``."""
    from guardrail.audit.sqlite_store import SQLiteStore

    if isinstance(store, SQLiteStore):
        return sqlite_report(store.path, **args)
    connect = getattr(store, "sql_connection", None)
    if connect is not None:
        with connect() as conn:
            report = postgres_report(conn, **args)
        report.source = str(getattr(store, "path", ""))
        return report
    raise ReportError(
        f"{type(store).__name__}: this store gives no SQL access, so it cannot be reported on"
    )


def postgres_report(conn: Any, **args: Unpack[ReportArgs]) -> PeriodReport:
    """The same report over a PostgreSQL audit log (a ``psycopg`` connection): the index is
    refreshed in its own transaction, the report read in one ``REPEATABLE READ`` snapshot."""
    options = ReportOptions.of(args)
    started = time.perf_counter()
    index = ReportIndex(conn, POSTGRES)
    if options.rebuild_upto is not None:
        index.rebuild(options.rebuild_upto)
    else:
        index.refresh()
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SET LOCAL statement_timeout = 0")  # a year's report may take a while
        report = aggregate(conn, POSTGRES, options, records_indexed=index.indexed_seq())
    report.seconds = time.perf_counter() - started
    return report
