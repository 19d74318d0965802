"""``/v1/reports/...`` on a real server process: auditors read the period report and the
dashboard of the service's own audit log; other roles are refused; bad input is a 400."""

from __future__ import annotations

from serving import Server

from conftest import event


def test_auditor_reads_reports_of_what_was_screened(server: Server) -> None:
    with server.client(server.keys["teller"]) as teller:
        for _ in range(3):
            assert teller.post("/v1/screen", json=event()).status_code == 200
    with server.client(server.keys["auditor"]) as auditor:
        answer = auditor.get("/v1/reports/period", params={"by": "branch,rule"})
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report["total"]["screened"]["count"] >= 3
        assert report["groups"] and set(report["groups"][0]["group"]) == {"branch", "rule"}
        assert all(r["n"] >= 0 and "interval95" in r for r in report["rules"])
        page = auditor.get("/v1/reports/dashboard")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<svg" in page.text and 'id="report-data"' in page.text
        bad = auditor.get("/v1/reports/period", params={"by": "month,brnch"})
        assert bad.status_code == 400 and "brnch" in bad.text and "Traceback" not in bad.text
        assert auditor.get("/v1/reports/period", params={"from": "yesterday"}).status_code == 400


def test_other_roles_may_not_read_reports(server: Server) -> None:
    for role in ("teller", "supervisor", "admin"):
        with server.client(server.keys[role]) as client:
            assert client.get("/v1/reports/period").status_code == 403, role
            assert client.get("/v1/reports/dashboard").status_code == 403, role
    with server.client() as anonymous:
        assert anonymous.get("/v1/reports/period").status_code == 401
