"""schemathesis over the service's OpenAPI document: every operation, generated (and, by
schemathesis' negative mode, malformed) bodies against a real server process; no 5xx, every
response matches the schema."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.openapi import from_dict
from serving import Server

from guardrail.server.app import create_app
from guardrail.server.config import ServeConfig

# The document the app builds; the served /openapi.json is checked to be the same.
DOCUMENT = create_app(ServeConfig()).app.openapi()
schema = from_dict(DOCUMENT)


def test_served_document_is_the_tested_one(server: Server) -> None:
    assert httpx.get(server.url + "/openapi.json", timeout=30).json() == DOCUMENT


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_openapi(case: schemathesis.Case, server: Server) -> None:
    role = "admin" if case.path.startswith("/v1/keys") else "teller"
    case.call_and_validate(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.keys[role]}"},
        # Events have rules JSON Schema cannot say (money never a float, a real time zone,
        # dates in order, ...): a schema-valid event may rightly get a 422 naming the field.
        # Every other check runs, including negative_data_rejection and the response schema.
        excluded_checks=[positive_data_acceptance],
    )
