"""The auditors' dashboard: one self-contained HTML file (inline SVG and CSS, no script, no
network), charts and the tables behind them. Every bar carries its figure in ``data-``
attributes, and the JSON reports it was drawn from are embedded, so a test (or an auditor)
can check each chart against the numbers."""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass

from guardrail.audit.period_report import PeriodReport, Row
from guardrail.model import from_fen

_W, _BAR_H, _GAP, _LABEL_W = 900, 18, 4, 260


@dataclass(frozen=True)
class Bar:
    key: str
    value: float
    label: str  # the figure as printed
    low: float | None = None  # an interval, for precision
    high: float | None = None


@dataclass(frozen=True)
class DashboardData:
    """The reports one dashboard is drawn from."""

    total: PeriodReport  # no grouping: totals, rules, typologies
    by_day: PeriodReport
    by_branch: PeriodReport


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _yuan(fen: int) -> str:
    return f"¥{from_fen(fen):,.2f}"


def _bars(
    chart_id: str,
    title: str,
    measure: str,
    bars: Sequence[Bar],
    *,
    unit: str = "",
    scale: float | None = None,
) -> str:
    top = scale or max([b.high if b.high is not None else b.value for b in bars] + [1e-9])
    height = len(bars) * (_BAR_H + _GAP) + 10
    span = _W - _LABEL_W - 110
    parts = [
        f'<figure class="chart" id="{chart_id}" data-measure="{measure}">'
        f"<figcaption>{_esc(title)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'role="img" aria-label="{_esc(title)}">'
    ]
    for i, bar in enumerate(bars):
        y = i * (_BAR_H + _GAP) + 4
        width = max(0.0, bar.value / top * span)
        interval = ""
        if bar.low is not None and bar.high is not None:
            x1, x2 = _LABEL_W + bar.low / top * span, _LABEL_W + bar.high / top * span
            mid = y + _BAR_H / 2
            interval = (
                f'<line class="interval" x1="{x1:.1f}" x2="{x2:.1f}" y1="{mid}" y2="{mid}" '
                f'data-low="{bar.low:.6f}" data-high="{bar.high:.6f}"/>'
            )
        extra = (
            ""
            if bar.low is None or bar.high is None
            else f' data-low="{bar.low:.6f}" data-high="{bar.high:.6f}"'
        )
        right = max(width, 0.0 if bar.high is None else bar.high / top * span)
        parts.append(
            f'<g class="bar" data-key="{_esc(bar.key)}" data-value="{bar.value:g}"{extra}>'
            f'<text x="{_LABEL_W - 6}" y="{y + 13}" text-anchor="end">{_esc(bar.key)}</text>'
            f'<rect x="{_LABEL_W}" y="{y}" width="{width:.1f}" height="{_BAR_H}"/>{interval}'
            f'<text class="figure" x="{_LABEL_W + right + 4:.1f}" y="{y + 13}">'
            f"{_esc(bar.label)}{_esc(unit)}</text></g>"
        )
    parts.append("</svg></figure>")
    return "".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], table_id: str) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _rows_by_key(report: PeriodReport) -> list[tuple[str, Row]]:
    return [(row.key[0], row) for row in report.sorted_rows()]


def render_dashboard(data: DashboardData) -> str:
    """The dashboard as one HTML document."""
    t = data.total.total
    days = _rows_by_key(data.by_day)
    branches = _rows_by_key(data.by_branch)
    sections: list[str] = []
    sections.append(
        _bars(
            "chart-interceptions-by-day",
            "Interceptions per day (requests stopped at the counter)",
            "intercepted.count",
            [Bar(k, r.intercepted.count, f"{r.intercepted.count:,}") for k, r in days],
        )
    )
    sections.append(
        _bars(
            "chart-amount-by-day",
            "Amount intercepted per day (CNY)",
            "intercepted.amounts_fen.CNY",
            [
                Bar(k, r.intercepted.fen.get("CNY", 0), _yuan(r.intercepted.fen.get("CNY", 0)))
                for k, r in days
            ],
        )
    )
    sections.append(
        _table(
            ["day", "screened", "intercepted", "CNY intercepted", "police", "cases opened"],
            [
                (
                    k,
                    r.screened.count,
                    r.intercepted.count,
                    r.intercepted.amount(),
                    r.police_notified.count,
                    r.cases_opened,
                )
                for k, r in days
            ],
            "table-by-day",
        )
    )
    sections.append(
        _bars(
            "chart-interceptions-by-branch",
            "Interceptions by branch",
            "intercepted.count",
            [Bar(k, r.intercepted.count, f"{r.intercepted.count:,}") for k, r in branches],
        )
    )
    sections.append(
        _table(
            [
                "branch",
                "screened",
                "intercepted",
                "CNY intercepted",
                "questioned (legit.)",
                "cases open",
                "complaints",
            ],
            [
                (
                    k,
                    r.screened.count,
                    r.intercepted.count,
                    r.intercepted.amount(),
                    r.questioned_legitimate,
                    r.cases_open,
                    r.complaints_received,
                )
                for k, r in branches
            ],
            "table-by-branch",
        )
    )
    typologies = sorted(data.total.typologies.items())
    sections.append(
        _bars(
            "chart-cases-by-typology",
            "Cases by typology (as classified in the case ledger)",
            "cases.opened",
            [Bar(k, r.cases_opened, f"{r.cases_opened:,}") for k, r in typologies],
        )
    )
    sections.append(
        _table(
            ["typology", "cases", "closed", "CNY at risk", "CNY prevented", "CNY returned"],
            [
                (
                    k,
                    r.cases_opened,
                    r.cases_closed,
                    r.amount_at_risk.amount(),
                    r.prevented_ledger.amount(),
                    r.returned.amount(),
                )
                for k, r in typologies
            ],
            "table-by-typology",
        )
    )
    rules = [data.total.rules[k] for k in sorted(data.total.rules)]
    judged = [r for r in rules if r.with_verdict]
    bars = []
    for r in judged:
        iv = r.interval
        assert iv is not None and r.precision is not None
        bars.append(
            Bar(
                r.rule_id,
                r.precision,
                f"{r.precision:.0%} (n={r.with_verdict}, 95% {iv[0]:.0%}–{iv[1]:.0%})",
                iv[0],
                iv[1],
            )
        )
    sections.append(
        _bars(
            "chart-rule-precision",
            "Rule precision with 95% Wilson intervals (rules with verdicts)",
            "precision",
            bars,
            scale=1.0,
        )
    )
    sections.append(
        _table(
            ["rule", "hits", "n (verdicts)", "confirmed", "precision", "95% interval"],
            [
                (
                    r.rule_id,
                    r.hits.count,
                    r.with_verdict,
                    r.confirmed,
                    _pct(r.precision),
                    "n/a" if r.interval is None else f"{r.interval[0]:.1%} – {r.interval[1]:.1%}",
                )
                for r in rules
            ],
            "table-rules",
        )
    )
    sections.append(
        _bars(
            "chart-case-ageing",
            f"Open cases by age (close rate {_pct(t.case_close_rate)}, mean "
            f"{t.mean_days_to_close or 0:.1f} days to close)",
            "cases.open_by_age",
            [Bar(k, v, f"{v:,}") for k, v in t.open_by_age.items()],
        )
    )
    friction = [
        ("legitimate customers questioned", t.questioned_legitimate),
        ("legitimate customers held", t.held_legitimate),
        ("friction complaints", t.friction_complaints),
    ]
    sections.append(
        _bars(
            "chart-friction",
            "Friction: legitimate customers questioned or held, and their complaints",
            "friction",
            [Bar(k, v, f"{v:,}") for k, v in friction],
        )
    )
    headline = [
        ("screened", f"{t.screened.count:,}"),
        ("intercepted", f"{t.intercepted.count:,} · {_yuan(t.intercepted.fen.get('CNY', 0))}"),
        (
            "police notified",
            f"{t.police_notified.count:,} · {_yuan(t.police_notified.fen.get('CNY', 0))}",
        ),
        ("returned to victims", _yuan(t.returned.fen.get("CNY", 0))),
        (
            "complaints",
            f"{t.complaints_received:,} received, {t.complaints_closed:,} closed "
            f"({_pct(t.complaint_close_rate)})",
        ),
        ("cases open", f"{t.cases_open:,} of {t.cases_opened:,}"),
    ]
    cards = "".join(
        f'<div class="card" data-measure="{_esc(k)}"><div class="k">{_esc(k)}</div>'
        f'<div class="v">{_esc(v)}</div></div>'
        for k, v in headline
    )
    payload = json.dumps(
        {
            "total": data.total.to_dict(),
            "by_day": data.by_day.to_dict(),
            "by_branch": data.by_branch.to_dict(),
        },
        ensure_ascii=False,
    ).replace("</", "<\\/")
    report = data.total
    span = (
        f"{'…' if report.start is None else report.start.date()} – "
        f"{'…' if report.end is None else (report.end - dt.timedelta(seconds=1)).date()}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>guardrail audit dashboard {span}</title><style>{_CSS}</style></head><body>"
        f'<h1>Counter anti-fraud: audit dashboard</h1><p class="meta">{_esc(report.source)}'
        f" · {_esc(span)} ({_esc(report.tz)}) · {report.records_indexed:,} records · as of "
        f"{_esc(report.as_of.isoformat(timespec='seconds'))}</p>"
        f'<section class="cards">{cards}</section>'
        + "".join(f"<section>{s}</section>" for s in sections)
        + f'<script type="application/json" id="report-data">{payload}</script>'
        "</body></html>"
    )


_CSS = """
body{font-family:"Noto Sans CJK SC","Noto Sans",Arial,sans-serif;margin:24px;color:#1d2733;
background:#fff}h1{font-size:22px;margin:0 0 4px}.meta{color:#5b6b7c;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}.card{border:1px solid #d5dde6;
border-radius:6px;padding:8px 12px;min-width:150px}.card .k{font-size:12px;color:#5b6b7c}
.card .v{font-size:17px;font-weight:600}figure{margin:18px 0}figcaption{font-weight:600;
margin-bottom:6px}svg text{font-size:12px;fill:#1d2733}svg rect{fill:#2f6fb0}
svg .interval{stroke:#c0392b;stroke-width:3}table{border-collapse:collapse;font-size:12px;
margin:8px 0 20px}th,td{border:1px solid #d5dde6;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#eef3f8}
"""
