"""Issue 13 in ``guardrail serve``: a candidate pack in shadow, snoozes from the policy store,
and production mode refusing an unapproved pack."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving import AUDIT_SECRET, ROOT, add_key, write_config

from conftest import TELLER, event
from guardrail.audit.keys import AuditKeys
from guardrail.audit.log import AuditLog
from guardrail.audit.records import ShadowRecord
from guardrail.lang import load_pack
from guardrail.policy.snooze import new_snooze
from guardrail.server.app import create_app
from guardrail.server.config import load_config
from guardrail.server.service import Service
from guardrail.stores import open_snooze_store

BASELINE = ROOT / "rules" / "cn-baseline"


def _configure(folder: Path, serve_lines: str, stores_lines: str) -> Path:
    path = write_config(folder)
    text = path.read_text(encoding="utf-8")
    text = text.replace("[serve]\n", "[serve]\n" + serve_lines, 1)
    text = text.replace("[stores]\n", "[stores]\n" + stores_lines, 1)
    path.write_text(text, encoding="utf-8")
    return path


def test_serve_records_shadow_decisions_and_applies_snoozes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARDRAIL_AUDIT_KEY", AUDIT_SECRET)
    draft = tmp_path / "draft"
    shutil.copytree(BASELINE, draft)
    elderly = draft / "elderly.yaml"
    elderly.write_text(elderly.read_text(encoding="utf-8").replace("50000", "5000"), "utf-8")
    path = _configure(
        tmp_path, f'candidate_pack = "{draft}"\n', 'policy = "sqlite:///policy.sqlite"\n'
    )
    key = add_key(path, "teller", TELLER)
    config = load_config(path)
    sent = event()
    store = open_snooze_store(config.stores.policy or "")
    moment = dt.datetime.fromisoformat(sent["timestamp"])
    store.add(
        new_snooze(
            load_pack(BASELINE),
            "elderly-large-cash-withdrawal",
            "customer",
            sent["customer"]["id"],
            until=moment + dt.timedelta(days=5),
            reason="cleared",
            approver="officer-7",
            now=moment,
        )
    )
    service = Service.start(config)
    with TestClient(create_app(config, service)) as client:
        answer = client.post("/v1/screen", json=sent, headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        decision = answer.json()
        assert decision["pack"]["content_hash"] == load_pack(BASELINE).content_hash
        assert any(a["rule_id"] == "elderly-large-cash-withdrawal" for a in decision["adjustments"])
    with AuditLog.open(tmp_path / "audit.sqlite", keys=AuditKeys.from_env()) as log:
        shadows = [r.payload for r in log.records() if isinstance(r.payload, ShadowRecord)]
    assert [s.event_id for s in shadows] == [sent["event_id"]]
    assert shadows[0].shadow_pack.content_hash == load_pack(draft).content_hash


def test_production_serve_is_not_ready_without_an_approval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARDRAIL_AUDIT_KEY", AUDIT_SECRET)
    config = load_config(_configure(tmp_path, "production = true\n", ""))
    with TestClient(create_app(config)) as client:
        ready = client.get("/v1/health/ready")
        assert ready.status_code == 503
        assert "could not start" in ready.json()["checks"]["pack"]


def test_metrics_count_breaker_trips_and_capped_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARDRAIL_AUDIT_KEY", AUDIT_SECRET)
    live = tmp_path / "live"
    shutil.copytree(BASELINE, live)
    typologies = live / "typologies.yaml"
    text = typologies.read_text(encoding="utf-8")
    typologies.write_text(
        text.replace(
            "  - id: typ-safe-account\n",
            "  - id: typ-safe-account\n    circuit_breaker: {max_hit_rate: 0.5, "
            "window_minutes: 60, min_screened: 2, cap_at: review}\n",
            1,
        ),
        encoding="utf-8",
    )
    path = write_config(tmp_path, pack=live)
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("[stores]\n", '[stores]\npolicy = "sqlite:///policy.sqlite"\n', 1), "utf-8"
    )
    key = add_key(path, "teller", TELLER)
    config = load_config(path)
    service = Service.start(config)
    with TestClient(create_app(config, service)) as client:
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(4):
            answer = client.post("/v1/screen", json=event(), headers=headers)
            assert answer.status_code == 200, answer.text
        metrics = client.get("/metrics", headers=headers).text
    trips = [line for line in metrics.splitlines() if "circuit_breaker_trips_total{" in line]
    capped = [
        line for line in metrics.splitlines() if "circuit_breaker_capped_decisions_total{" in line
    ]
    assert len(trips) == 1 and 'rule="typ-safe-account"' in trips[0]
    assert trips[0].endswith(" 1")
    assert capped and 'rule="typ-safe-account"' in capped[0]
    assert int(capped[0].rsplit(" ", 1)[1]) >= 1
