"""The dashboard in headless Chromium (Debian's ``chromium``): the page renders, each chart
holds the numbers the JSON report gives, and a screenshot is written. In CI a missing
Chromium is a failure, never a skip."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from guardrail.audit.period_report import sqlite_report

pytestmark = pytest.mark.slow
Quarter = tuple[Path, Any]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    message = "headless Chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _run(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp / 'profile'}",
            "--virtual-time-budget=3000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _bars(dom: str, chart_id: str) -> dict[str, float]:
    figure = re.search(rf'<figure[^>]*id="{chart_id}".*?</figure>', dom, re.S)
    assert figure is not None, f"chart {chart_id} missing from the rendered page"
    return {
        html.unescape(key): float(value)
        for key, value in re.findall(
            r'<g class="bar" data-key="([^"]*)" data-value="([^"]*)"', figure.group(0)
        )
    }


@pytest.fixture(scope="module")
def rendered(quarter: Quarter, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("dashboard")
    page = tmp / "dashboard.html"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "guardrail.cli",
            "audit",
            "report",
            str(quarter[0]),
            "--format",
            "html",
            "-o",
            str(page),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert out.returncode == 0, out.stderr
    dump = _run(["--dump-dom", page.as_uri()], tmp)
    assert dump.returncode == 0, dump.stderr[-2000:]
    shot = tmp / "dashboard.png"
    taken = _run([f"--screenshot={shot}", "--window-size=1100,2600", page.as_uri()], tmp)
    assert taken.returncode == 0, taken.stderr[-2000:]
    return {"dom": dump.stdout, "page": page, "shot": shot}


def test_page_renders_self_contained(rendered: dict[str, Any]) -> None:
    dom = rendered["dom"]
    assert "<h1>Counter anti-fraud: audit dashboard</h1>" in dom
    assert dom.count("<svg") >= 7
    source = rendered["page"].read_text(encoding="utf-8")
    assert "http://" not in source.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in source and "<script src" not in source and "<link" not in source


def test_charts_hold_the_numbers_of_the_json_report(
    rendered: dict[str, Any], quarter: Quarter
) -> None:
    dom = rendered["dom"]
    by_day = sqlite_report(quarter[0], by="day")
    by_branch = sqlite_report(quarter[0], by="branch")
    total = sqlite_report(quarter[0])
    days = {r.key[0]: r for r in by_day.sorted_rows()}
    assert _bars(dom, "chart-interceptions-by-day") == {
        k: r.intercepted.count for k, r in days.items()
    }
    assert _bars(dom, "chart-amount-by-day") == {
        k: r.intercepted.fen.get("CNY", 0) for k, r in days.items()
    }
    assert _bars(dom, "chart-interceptions-by-branch") == {
        r.key[0]: r.intercepted.count for r in by_branch.sorted_rows()
    }
    assert _bars(dom, "chart-cases-by-typology") == {
        k: r.cases_opened for k, r in total.typologies.items()
    }
    precision = _bars(dom, "chart-rule-precision")
    judged = {k: r for k, r in total.rules.items() if r.with_verdict}
    assert set(precision) == set(judged) and judged
    for rule_id, value in precision.items():
        assert value == pytest.approx(judged[rule_id].precision, abs=1e-6)
    intervals = re.findall(
        r'data-key="([^"]*)" data-value="[^"]*" data-low="([^"]*)" data-high="([^"]*)"', dom
    )
    for rule_id, low, high in intervals:
        want = judged[html.unescape(rule_id)].interval
        assert want is not None
        assert (float(low), float(high)) == (
            pytest.approx(want[0], abs=1e-6),
            pytest.approx(want[1], abs=1e-6),
        )
    t = total.total
    assert _bars(dom, "chart-case-ageing") == t.open_by_age
    assert sum(t.open_by_age.values()) == t.cases_open
    assert _bars(dom, "chart-friction") == {
        "legitimate customers questioned": t.questioned_legitimate,
        "legitimate customers held": t.held_legitimate,
        "friction complaints": t.friction_complaints,
    }


def test_a_readable_screenshot_is_written(rendered: dict[str, Any]) -> None:
    shot: Path = rendered["shot"]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    keep = os.environ.get("GUARDRAIL_DASHBOARD_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
