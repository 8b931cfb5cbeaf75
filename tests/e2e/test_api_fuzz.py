"""schemathesis against the live API's OpenAPI schema: whatever the input, no 5xx."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings


@pytest.fixture
def api_schema(stack):
    # loaded once the stack (and so the API) is up, not when tests are collected
    return schemathesis.openapi.from_url("http://127.0.0.1:8000/openapi.json").exclude(path="/api/stream")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call(timeout=10)
    case.validate_response(response, checks=[schemathesis.checks.not_a_server_error])
