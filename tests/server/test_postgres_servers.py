"""Two server processes on one PostgreSQL: keys, history, sessions and the audit log are
shared, so either continues the other's counter session."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving import add_key, serve, write_config

from conftest import TELLER, event
from guardrail.audit import SessionStepRecord
from guardrail.audit.log import to_audit_record
from guardrail.stores import open_audit_store


@pytest.mark.slow
def test_two_servers_continue_each_others_sessions(postgres_db_url: str, tmp_path: Path) -> None:
    configs = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        configs.append(write_config(folder, store_url=postgres_db_url))
    teller = add_key(configs[0], "teller", TELLER)  # made through A's config, used on both
    supervisor = add_key(configs[1], "supervisor", "S0001")
    with serve(configs[0]) as a, serve(configs[1]) as b:
        servers = [a, b]
        opened = a.client(teller).post("/v1/sessions", json=event())
        assert opened.status_code == 201, opened.text
        session_id = opened.json()["session_id"]
        steps = [
            (teller, {"step": "ask_questions"}),
            (teller, {"step": "deliver_notice"}),
            (teller, {"step": "escalate", "reason": "on the phone"}),
            (supervisor, {"step": "supervisor_reject", "reason": "scam pattern"}),
            (teller, {"step": "record_outcome", "outcome": "police_notified"}),
            (teller, {"step": "close"}),
        ]
        for number, (key, body) in enumerate(steps, start=1):
            server = servers[number % 2]  # B, A, B, A, ...
            with server.client(key) as client:
                response = client.post(f"/v1/sessions/{session_id}/steps", json=body)
            assert response.status_code == 200, (server.url, body, response.text)
        view = a.client(teller).get(f"/v1/sessions/{session_id}").json()
        assert view["closed"] is True and view["supervisor_ids"] == ["S0001"]
        assert [s["step"] for s in view["steps"]] == ["open"] + [b["step"] for _, b in steps]
        screened = b.client(teller).post("/v1/screen", json=event())
        assert screened.status_code == 200
    store = open_audit_store(postgres_db_url, create=False)
    try:
        records = [to_audit_record(row) for row in store.iterate()]
    finally:
        store.close()
    kinds = [
        r.payload.step.value
        for r in records
        if r.case_id == session_id and isinstance(r.payload, SessionStepRecord)
    ]
    assert kinds[-3:] == ["supervisor_rejected", "outcome_recorded", "closed"]
