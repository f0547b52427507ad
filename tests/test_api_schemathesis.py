"""Property-based API test: schemathesis generates requests from the app's own OpenAPI schema.

The app is called in-process through its ASGI interface (no network), over a real runner's run folder
plus a damaged copy, and every response must pass schemathesis' checks: no 5xx, status codes and
bodies that conform to the schema, invalid input rejected, valid input accepted.
"""

from __future__ import annotations

import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis_budget import examples
from run_fixtures import runner_run

from orb.api import create_app


@pytest.fixture(scope="session")
def api_schema(tmp_path_factory):
    real = runner_run(tmp_path_factory.getbasetemp() / "real" / "runs")
    root = tmp_path_factory.mktemp("schemathesis") / "runs"
    shutil.copytree(real, root / real.name)
    damaged = root / "backtest_20000101_000000"
    shutil.copytree(real, damaged)
    (damaged / "SPY_trades.parquet").unlink()
    (root / "latest").write_text(real.name + "\n")
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(root, api_key="", cors_origins=""))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=examples(100), deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    case.call_and_validate()
