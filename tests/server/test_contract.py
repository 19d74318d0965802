"""The HTTP contract against a real server process: screening, sessions, errors, reading."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
from serving import TELLER, Server, event, run_cli

from guardrail.audit import DecisionRecord, SessionStepRecord, read_records
from guardrail.guard import Guard

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["status"] == status
    for leak in ("Traceback", 'File "', "/src/guardrail", ".py", "sqlite3."):
        assert leak not in response.text
    return body


def test_screen_answers_the_cli_decision_and_logs_it_with_the_teller(server: Server) -> None:
    request = event()
    with server.client(server.keys["teller"]) as client:
        response = client.post("/v1/screen", json=request)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    decision = response.json()
    expected = json.loads(
        Guard.from_path("rules/cn-baseline").screen_json(json.dumps(request)).model_dump_json()
    )
    decision.pop("elapsed_us")
    expected.pop("elapsed_us")
    assert decision == expected
    assert decision["action"] == "report"
    seq = int(response.headers["Guardrail-Audit-Seq"])
    records = {r.seq: r for r in read_records(server.audit_path)}
    payload = records[seq].payload
    assert isinstance(payload, DecisionRecord)
    assert payload.event.event_id == request["event_id"]
    assert payload.teller_id == TELLER


def test_wrong_malformed_and_revoked_keys_get_401_and_are_logged(server: Server) -> None:
    with server.client("grk_000000000000_" + "A" * 43) as client:
        body = _problem(client.post("/v1/screen", json=event()), 401)
    assert "not valid or was revoked" in str(body["detail"])
    with server.client() as client:
        response = client.post("/v1/screen", json=event())
    _problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    with server.client("Basic abc") as client:
        _problem(client.get("/v1/pack"), 401)

    from serving import add_key

    key = add_key(server.config, "teller", "T0777")
    with server.client(key) as client:
        assert client.post("/v1/screen", json=event("T0777")).status_code == 200
        _, key_id, secret = key.split("_", 2)  # the secret itself may contain "_"
        listed = run_cli("keys", "list", "--config", str(server.config))
        assert key_id in listed.stdout and secret not in listed.stdout
        revoked = run_cli("keys", "revoke", key_id, "--config", str(server.config))
        assert revoked.returncode == 0, revoked.stderr
        _problem(client.post("/v1/screen", json=event("T0777")), 401)
    log = server.log()
    assert "auth failed: bad or revoked key 000000000000" in log
    assert f"auth failed: bad or revoked key {key_id}" in log
    assert secret not in log  # never the secret


def test_roles_screening(server: Server) -> None:
    with server.client(server.keys["auditor"]) as client:
        body = _problem(client.post("/v1/screen", json=event("A0001")), 403)
        assert "auditor may not screen" in str(body["detail"])
        assert client.get("/v1/pack").status_code == 200
    with server.client(server.keys["teller"]) as client:
        body = _problem(client.post("/v1/screen", json=event("T0999")), 403)
        assert body["errors"] == [
            {"field": "teller_id", "message": "must be T0457, the key's holder"}
        ]
        _problem(client.get("/v1/keys"), 403)
    with server.client(server.keys["admin"]) as client:
        _problem(client.post("/v1/screen", json=event("root")), 403)
    log = server.log()
    assert "forbidden: A0001 (auditor" in log and "tried to screen" in log
    assert "forbidden: T0457 (key" in log and "as T0999" in log


def _open(client: httpx.Client) -> str:
    response = client.post("/v1/sessions", json=event())
    assert response.status_code == 201, response.text
    view = response.json()
    assert view["state"] == "opened" and view["teller_id"] == TELLER
    return str(view["session_id"])


def _step(client: httpx.Client, session_id: str, **body: object) -> httpx.Response:
    return client.post(f"/v1/sessions/{session_id}/steps", json=body)


def test_counter_session_with_four_eyes(server: Server) -> None:
    teller = server.client(server.keys["teller"])
    supervisor = server.client(server.keys["supervisor"])
    same_person = server.client(server.keys["supervisor_as_teller"])
    other_teller = server.client(server.keys["teller2"])
    with teller, supervisor, same_person, other_teller:
        session_id = _open(teller)
        view = _step(teller, session_id, step="ask_questions").json()
        assert view["state"] == "questioning" and view["unanswered"]
        _problem(_step(other_teller, session_id, step="deliver_notice"), 403)
        assert _step(teller, session_id, step="deliver_notice").status_code == 200
        assert (
            _step(teller, session_id, step="escalate", reason="elderly, on the phone").json()[
                "state"
            ]
            == "escalated"
        )
        teller_try = _problem(_step(teller, session_id, step="supervisor_approve"), 403)
        assert "teller may not take the step supervisor_approve" in str(teller_try["detail"])
        four_eyes = _problem(_step(same_person, session_id, step="supervisor_approve"), 403)
        assert four_eyes["type"] == "https://guardrail.dev/problems/four-eyes"
        refused = _problem(_step(teller, session_id, step="close"), 409)
        assert "close" in str(refused["detail"])
        decided = _step(
            supervisor, session_id, step="supervisor_reject", reason="scam pattern; call police"
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["supervisor_ids"] == ["S0001"]
        outcome = _step(
            teller,
            session_id,
            step="record_outcome",
            outcome="police_notified",
            confirmed_fraud=True,
        )
        assert outcome.status_code == 200, outcome.text
        closed = _step(teller, session_id, step="close").json()
        assert closed["closed"] is True
        assert supervisor.get(f"/v1/sessions/{session_id}").json()["state"] == "closed"
        _problem(other_teller.get(f"/v1/sessions/{session_id}"), 403)
    steps = [
        r.payload
        for r in read_records(server.audit_path)
        if r.case_id == session_id and isinstance(r.payload, SessionStepRecord)
    ]
    kinds = [(s.step.value, s.refused_step, s.supervisor_id) for s in steps]
    assert ("step_refused", "deliver_notice", None) in kinds
    assert ("step_refused", "supervisor_approve", None) in kinds  # the teller's try
    assert ("step_refused", "supervisor_approve", TELLER) in kinds  # four eyes
    assert ("supervisor_rejected", None, "S0001") in kinds
    assert kinds[-1][0] == "closed"


def test_session_errors(server: Server) -> None:
    with server.client(server.keys["teller"]) as client:
        _problem(client.get("/v1/sessions/no-such-session"), 404)
        session_id = _open(client)
        again = client.post("/v1/sessions", json={**event(), "event_id": session_id})
        _problem(again, 409)
        body = _problem(_step(client, session_id, step="fly_away"), 422)
        assert "step" in json.dumps(body["errors"])
        body = _problem(_step(client, session_id, step="escalate", extra=1), 422)
        assert {"field": "escalate.extra", "message": "unknown field"} in body["errors"]


def test_bad_bodies_are_named_problems(server: Server) -> None:
    with server.client(server.keys["teller"]) as client:
        body = _problem(
            client.post(
                "/v1/screen", content=b'{"event_id": ', headers={"content-type": "application/json"}
            ),
            400,
        )
        assert "not valid JSON" in str(body["detail"]) and "line 1" in str(body["detail"])
        body = _problem(client.post("/v1/screen", json={**event(), "surprise": 1}), 422)
        assert {"field": "surprise", "message": "unknown field"} in body["errors"]
        body = _problem(client.post("/v1/screen", json=[1, 2]), 422)
        assert "expected a JSON object, got an array" in str(body["detail"])
        big = b'{"notes": "' + b"x" * (10 * 1024 * 1024) + b'"}'
        body = _problem(client.post("/v1/screen", content=big), 413)
        assert "larger than 1048576 bytes" in str(body["detail"])

        def chunks() -> Iterator[
            bytes
        ]:  # no Content-Length: the limit counts the bytes as they arrive
            for _ in range(20):
                yield b"x" * (512 * 1024)

        _problem(client.post("/v1/screen", content=chunks()), 413)
        _problem(client.get("/v1/nothing-here"), 404)
        _problem(client.delete("/v1/screen"), 405)


def test_batch_executed_pack_health_metrics_keys(server: Server) -> None:
    with server.client(server.keys["teller"]) as client:
        good = event()
        response = client.post("/v1/screen/batch", json={"events": [good, {"event_id": 1}]})
        assert response.status_code == 200, response.text
        first, second = response.json()["results"]
        assert first["decision"]["event_id"] == good["event_id"]
        assert second["decision"] is None and second["errors"]
        too_many = client.post("/v1/screen/batch", json={"events": [good] * 101})
        assert "at most 100 events" in str(_problem(too_many, 422)["detail"])
        recorded = client.post("/v1/executed", json=event())
        assert recorded.status_code == 200 and recorded.json()["recorded"] is True

        def reports() -> int:
            lines = client.get("/metrics").text.splitlines()
            line = next(
                x
                for x in lines
                if x.startswith("guardrail_decisions_total{") and 'action="report"' in x
            )
            return int(line.rsplit(" ", 1)[1])

        before = reports()
        assert client.post("/v1/screen", json=event()).json()["action"] == "report"
        assert reports() == before + 1  # one worker: the same process answers both
        metrics = client.get("/metrics").text
        assert metrics.startswith("# HELP guardrail_decisions_total")
        assert "guardrail_screen_seconds_bucket" in metrics
        assert "guardrail_auth_failures_total" in metrics
    with server.client(server.keys["auditor"]) as client:
        pack = client.get("/v1/pack").json()
        assert pack["name"] == "cn-baseline" and len(pack["content_hash"]) >= 12
        assert {"id", "title_zh", "title_en", "action"} <= set(pack["rules"][0])
    with server.client() as client:
        assert client.get("/v1/health/live").json() == {"status": "ok", "checks": {}}
        ready = client.get("/v1/health/ready").json()
        assert ready["status"] == "ok" and set(ready["checks"]) >= {"pack", "audit", "history"}
        assert client.get("/openapi.json").json()["paths"]["/v1/screen"]
    with server.client(server.keys["admin"]) as client:
        created = client.post("/v1/keys", json={"name": "T0555", "role": "teller"})
        assert created.status_code == 201, created.text
        new_key = created.json()["key"]
        assert any(k["key_id"] == created.json()["key_id"] for k in client.get("/v1/keys").json())
        with server.client(new_key) as newcomer:
            assert newcomer.post("/v1/screen", json=event("T0555")).status_code == 200
            assert client.delete(f"/v1/keys/{created.json()['key_id']}").status_code == 200
            _problem(newcomer.post("/v1/screen", json=event("T0555")), 401)


def test_answers_observations_raise_and_override_over_http(server: Server) -> None:
    teller = server.client(server.keys["teller"])
    supervisor = server.client(server.keys["supervisor"])
    with teller, supervisor:
        request = event(amount={"value": "3000.00", "currency": "CNY"}, observations={})
        opened = teller.post("/v1/sessions", json=request)
        assert opened.status_code == 201, opened.text
        session_id = opened.json()["session_id"]
        asked = _step(
            teller, session_id, step="ask_questions", question_ids=["purpose", "instructed"]
        )
        assert asked.json()["unanswered"] == ["purpose", "instructed"]
        wrong = _problem(
            _step(teller, session_id, step="record_answers", answers={"instructed": "yes"}), 409
        )
        assert "instructed" in str(wrong["detail"])
        answered = _step(
            teller,
            session_id,
            step="record_answers",
            answers={"purpose": "investment", "instructed": True},
        )
        assert answered.status_code == 200, answered.text
        assert answered.json()["unanswered"] == []
        observed = _step(teller, session_id, step="record_observations", observations=["on_phone"])
        assert observed.status_code == 200, observed.text
        lower = _step(teller, session_id, step="teller_raise", to="proceed", reason="looks fine")
        assert "can only raise" in str(_problem(lower, 409)["detail"])
        assert _step(teller, session_id, step="escalate").status_code == 200
        override = _step(
            supervisor,
            session_id,
            step="supervisor_override",
            to="review",
            reason="son confirmed by phone",
        )
        assert override.status_code == 200, override.text
        assert override.json()["action"] == "review"  # a supervisor may lower, with a reason
        steps = [s["step"] for s in override.json()["steps"]]
        assert steps == [
            "open",
            "ask_questions",
            "record_answers",
            "record_observations",
            "escalate",
            "supervisor_override",
        ]
