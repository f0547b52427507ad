"""Property-based test of the job and registry routes: schemathesis requests from the app's OpenAPI.

Called in-process through ASGI on a loopback base URL (so write routes are exercised), over a real
runner's run folder; no worker runs (queued jobs just wait). Every response must pass schemathesis'
checks: no 5xx, documented status codes, bodies matching the schema, invalid input rejected. Accepting
every schema-valid job body is not required: overrides and dates are checked against the config models
and the calendar (a 422 naming the key), which JSON Schema cannot express.
"""

from __future__ import annotations

import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis_budget import examples
from run_fixtures import runner_run
from schemathesis.specs.openapi.checks import positive_data_acceptance

from orb.api import create_app

ROUTES = r"^/api/(jobs|leaderboard|compare)"


@pytest.fixture(scope="module")
def operations(tmp_path_factory):
    real = runner_run(tmp_path_factory.getbasetemp() / "real" / "runs")
    root = tmp_path_factory.mktemp("jobs_schemathesis") / "runs"
    shutil.copytree(real, root / real.name)
    app = create_app(root, api_key="", cors_origins="")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=ROUTES)
    return [result.ok() for result in schema.get_all_operations()]


def test_job_and_registry_routes_conform_to_their_schema(operations):
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        "POST /api/jobs",
        "GET /api/jobs",
        "GET /api/jobs/{job_id}",
        "DELETE /api/jobs/{job_id}",
        "GET /api/leaderboard",
        "GET /api/compare",
    }
    for op in operations:
        _fuzz(op, [positive_data_acceptance] if op.method.upper() == "POST" else [])


def _fuzz(op, excluded: list) -> None:
    @given(case=op.as_strategy())
    @settings(max_examples=examples(25), deadline=None, suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(base_url="http://127.0.0.1", excluded_checks=excluded)

    check()
