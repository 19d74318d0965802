"""``/v1/cases`` on a real server process: supervisors and auditors work the case ledger of the
service's own audit log; other roles are refused; a case walked over HTTP verifies in the chain
(``guardrail cases verify``) and tampering with its evidence is detected."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from serving import Server, run_cli

from conftest import event

PHONE = "13800138000"
NAME = "张伟"


def _evidence_dir(server: Server) -> Path:
    return server.audit_path.with_name(server.audit_path.name + ".evidence")


def test_case_walked_over_http_verifies_in_the_chain(server: Server) -> None:
    screened = event()
    with server.client(server.keys["teller"]) as teller:
        assert teller.post("/v1/screen", json=screened).status_code == 200
    with server.client(server.keys["supervisor"]) as supervisor:
        opened = supervisor.post(
            "/v1/cases",
            json={
                "case_type": "manual",
                "text": f"police asked about the withdrawal; caller {PHONE}",
                "source_case_id": screened["event_id"],
                "branch_id": screened["branch"]["id"],
                "parties": [{"role": "customer", "name": NAME, "phone": PHONE}],
                "amount_at_risk": {"value": "80000.00"},
            },
        )
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["case_id"]
        assert case_id.startswith("CASE-")
        assert PHONE not in opened.text and NAME not in opened.text  # stored protected
        assert opened.json()["case"]["opened_by"] == "S0001"  # the key's holder, not the body
        note = supervisor.post(f"/v1/cases/{case_id}/notes", json={"text": "called the son"})
        assert note.status_code == 200 and note.json()["case"]["entries"][-1]["entry"] == "note"
    evidence = b"%PDF-1.4 police receipt 2025-03-03\n"
    with server.client(server.keys["auditor"]) as auditor:
        attached = auditor.post(
            f"/v1/cases/{case_id}/evidence",
            content=evidence,
            params={"name": "receipt.pdf"},
            headers={"Content-Type": "application/pdf"},
        )
        assert attached.status_code == 201, attached.text
        digest = attached.json()["sha256"]
        assert attached.json()["case"]["evidence"][0]["sha256"] == digest
        fetched = auditor.get(f"/v1/cases/{case_id}/evidence/{digest}")
        assert fetched.status_code == 200 and fetched.content == evidence
        assert fetched.headers["guardrail-evidence-media-type"] == "application/pdf"
        assigned = auditor.post(f"/v1/cases/{case_id}/assign", json={"assignee": "A0002"})
        assert assigned.json()["case"]["assignee"] == "A0002"
        verdict = auditor.post(f"/v1/cases/{case_id}/verdict", json={"verdict": "fraud_confirmed"})
        assert verdict.status_code == 200 and verdict.json()["case"]["verdict"] == "fraud_confirmed"
        closed = auditor.post(
            f"/v1/cases/{case_id}/close",
            json={"resolution": "fraud_prevented", "prevented": {"value": "80000.00"}},
        )
        assert closed.status_code == 200, closed.text
        case = closed.json()["case"]
        assert case["status"] == "closed" and case["closed_by"] == "A0001"
        assert case["amount_prevented"] == {"value": "80000.00", "currency": "CNY"}
        kinds = [e["entry"] for e in auditor.get(f"/v1/cases/{case_id}").json()["entries"]]
        assert kinds == ["opened", "note", "evidence_attached", "assigned", "verdict", "closed"]
        again = auditor.post(f"/v1/cases/{case_id}/close", json={"resolution": "no_fraud"})
        assert again.status_code == 409 and "closed" in again.json()["detail"]
        listed = auditor.get("/v1/cases", params={"status": "closed"}).json()["cases"]
        assert case_id in [c["case_id"] for c in listed]
        # The verdict reaches rule precision through the screening the case came from.
        report = auditor.get("/v1/reports/period").json()
        assert sum(r["n"] for r in report["rules"]) >= 1

    verified = run_cli("cases", "verify", str(server.audit_path), "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    result = json.loads(verified.stdout)
    assert result["ok"] and result["evidence_checked"] >= 1

    stored = _evidence_dir(server) / digest[:2] / digest
    os.chmod(stored, stat.S_IRUSR | stat.S_IWUSR)
    stored.write_bytes(evidence.replace(b"2025-03-03", b"2025-03-04"))
    tampered = run_cli("cases", "verify", str(server.audit_path), "--json")
    assert tampered.returncode == 1
    problems = json.loads(tampered.stdout)["evidence_problems"]
    assert [(p["case_id"], p["kind"]) for p in problems] == [(case_id, "modified")]
    with server.client(server.keys["auditor"]) as auditor:
        refused = auditor.get(f"/v1/cases/{case_id}/evidence/{digest}")
        assert refused.status_code == 409 and "Traceback" not in refused.text
    assert PHONE not in server.log() and NAME not in server.log()


def test_case_roles_unknown_cases_and_bad_bodies(server: Server) -> None:
    with server.client(server.keys["supervisor"]) as supervisor:
        opened = supervisor.post(
            "/v1/cases", json={"case_type": "friction_complaint", "text": "held for 40 minutes"}
        )
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["case_id"]
        assert case_id.startswith("FRC-")

        for role in ("teller", "admin"):
            with server.client(server.keys[role]) as other:
                assert other.get("/v1/cases").status_code == 403, role
                assert other.get(f"/v1/cases/{case_id}").status_code == 403, role
                denied = other.post(f"/v1/cases/{case_id}/notes", json={"text": "x"})
                assert denied.status_code == 403, role
                assert "may not" in denied.json()["detail"]
                assert other.post("/v1/cases", json={"case_type": "manual"}).status_code == 403, (
                    role
                )
        with server.client() as anonymous:
            assert anonymous.get("/v1/cases").status_code == 401

        missing = supervisor.post("/v1/cases/CASE-19700101-nothere/notes", json={"text": "x"})
        assert missing.status_code == 404 and "CASE-19700101-nothere" in missing.json()["detail"]
        assert supervisor.get("/v1/cases/CASE-19700101-nothere").status_code == 404
        upload = supervisor.post("/v1/cases/CASE-19700101-nothere/evidence", content=b"x")
        assert upload.status_code == 404

        def fields(response: object) -> list[str]:
            assert getattr(response, "status_code", None) == 422, getattr(response, "text", "")
            return [e["field"] for e in response.json()["errors"]]  # type: ignore[attr-defined]

        base = f"/v1/cases/{case_id}"
        assert fields(supervisor.post(base + "/verdict", json={"verdict": "maybe"})) == ["verdict"]
        assert fields(supervisor.post(base + "/notes", json={"text": ""})) == ["text"]
        assert fields(supervisor.post(base + "/assign", json={"assignee": "A1", "x": 1})) == ["x"]
        assert "unknown field" in supervisor.post(base + "/assign", json={"to": "A1"}).text
        bad_amount = supervisor.post(
            base + "/close", json={"resolution": "no_fraud", "prevented": {"value": "1.234"}}
        )
        assert fields(bad_amount) == ["prevented.value"]
        assert fields(supervisor.post("/v1/cases", json={"case_type": "decision"})) == ["case_type"]
        party = {"case_type": "complaint", "parties": [{"role": "judge"}]}
        assert fields(supervisor.post("/v1/cases", json=party)) == ["parties.0.role"]
        assert fields(supervisor.post(base + "/evidence", content=b"")) == ["(body)"]
        assert fields(supervisor.get("/v1/cases", params={"status": "pending"})) == ["query.status"]
        duplicate = supervisor.post("/v1/cases", json={"case_type": "manual", "case_id": case_id})
        assert duplicate.status_code == 409
        malformed = supervisor.post(
            base + "/notes", content=b"{", headers={"Content-Type": "application/json"}
        )
        assert malformed.status_code in (400, 422) and "Traceback" not in malformed.text
        # After the refusals the case is unchanged: only its opening entry.
        assert [e["entry"] for e in supervisor.get(base).json()["entries"]] == ["opened"]


def test_cases_are_in_the_published_openapi(server: Server) -> None:
    with server.client() as anonymous:
        paths = anonymous.get("/openapi.json").json()["paths"]
    assert {"post", "get"} <= set(paths["/v1/cases"])
    for action in ("notes", "evidence", "assign", "verdict", "amounts", "close"):
        assert "post" in paths[f"/v1/cases/{{case_id}}/{action}"], action
        assert "403" in paths[f"/v1/cases/{{case_id}}/{action}"]["post"]["responses"]
    upload = paths["/v1/cases/{case_id}/evidence"]["post"]["requestBody"]["content"]
    assert "application/octet-stream" in upload


def test_evidence_folder_from_the_config(tmp_path: Path) -> None:
    from guardrail.server.cases import evidence_root
    from guardrail.server.config import load_config

    config = tmp_path / "serve.toml"
    config.write_text('[stores]\naudit = "sqlite:///var/audit.sqlite"\n', encoding="utf-8")
    assert evidence_root(load_config(config, env={})) == (
        tmp_path / "var" / "audit.sqlite.evidence"
    ).resolve()
    config.write_text(
        '[stores]\naudit = "postgresql://u@127.0.0.1:1/db"\nevidence = "files/evidence"\n',
        encoding="utf-8",
    )
    assert evidence_root(load_config(config, env={})) == tmp_path.resolve() / "files/evidence"
    overridden = load_config(config, env={"GUARDRAIL_SERVE_STORES_EVIDENCE": "/srv/evidence"})
    assert evidence_root(overridden) == Path("/srv/evidence")
