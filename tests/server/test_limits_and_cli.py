"""Failed-authentication rate limit, readiness, and the CLI's errors for bad configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving import AUDIT_SECRET, add_key, run_cli, serve, write_config

from conftest import TELLER, event
from guardrail.server.app import create_app
from guardrail.server.config import load_config
from guardrail.server.service import Service


@pytest.mark.slow
def test_repeated_failed_authentications_are_rate_limited_and_logged(tmp_path: Path) -> None:
    config = write_config(tmp_path, auth_failures_per_minute=3)
    key = add_key(config, "teller", TELLER)
    with serve(config) as server:
        with server.client("grk_000000000000_" + "B" * 43) as bad:
            statuses = [bad.post("/v1/screen", json=event()).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        with server.client(key) as good:
            blocked = good.post("/v1/screen", json=event())
        assert blocked.status_code == 429
        assert blocked.headers["content-type"] == "application/problem+json"
        assert 1 <= int(blocked.headers["Retry-After"]) <= 61
        assert "too many failed authentications" in blocked.json()["detail"]
        log = server.log()
    assert log.count("auth failed: bad or revoked key 000000000000") == 3
    assert "rate-limited on POST /v1/screen" in log


def test_not_ready_while_a_store_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARDRAIL_AUDIT_KEY", AUDIT_SECRET)
    config = load_config(write_config(tmp_path))
    service = Service.start(config)
    with TestClient(create_app(config, service)) as client:
        assert client.get("/v1/health/ready").json()["status"] == "ok"
        service.stores.keys.close()  # the key store goes away
        response = client.get("/v1/health/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["keys"] == "unreachable"
        assert str(tmp_path) not in response.text


def test_not_ready_when_the_pack_fails_to_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARDRAIL_AUDIT_KEY", AUDIT_SECRET)
    broken = tmp_path / "pack"
    broken.mkdir()
    (broken / "pack.yaml").write_text("name: broken\nversion: [\n", encoding="utf-8")
    config = load_config(write_config(tmp_path, pack=broken))
    with TestClient(create_app(config)) as client:
        ready = client.get("/v1/health/ready")
        assert ready.status_code == 503 and "failed to load" in ready.json()["checks"]["pack"]
        assert client.get("/v1/health/live").status_code == 200


def test_cli_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = run_cli("serve", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert "nope.toml: cannot read" in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[serve]\nworkers = 0\n", encoding="utf-8")
    result = run_cli("serve", "--config", str(bad))
    assert result.returncode == 2 and "bad.toml: serve.workers" in result.stderr
    shared = tmp_path / "shared.toml"
    shared.write_text('[serve]\nworkers = 2\n[stores]\nhistory = "memory:"\n', encoding="utf-8")
    result = run_cli("serve", "--config", str(shared))
    assert result.returncode == 2 and "stores.history: memory: is private" in result.stderr
    config = write_config(tmp_path)
    result = run_cli("keys", "revoke", "ffffffffffff", "--config", str(config))
    assert result.returncode == 2 and "no key with id 'ffffffffffff'" in result.stderr
    result = run_cli(
        "keys", "add", "--role", "teller", "--name", "bad name", "--config", str(config)
    )
    assert result.returncode == 2 and "name 'bad name'" in result.stderr
    assert "Traceback" not in result.stderr
