"""schemathesis against the live API's OpenAPI schema: whatever the input, no 5xx."""

import schemathesis
from hypothesis import HealthCheck, settings

schema = schemathesis.openapi.from_url("http://127.0.0.1:8000/openapi.json")


@schema.exclude(path="/api/stream").parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, stack):
    response = case.call(timeout=10)
    case.validate_response(response, checks=[schemathesis.checks.not_a_server_error])
