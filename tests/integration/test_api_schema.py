"""Schemathesis over the API's OpenAPI schema: whatever the input, never a 500.

Bounded (a few examples per operation) so the whole file stays well under a
minute on a shared 2-core machine.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

import perfkit.api
from perfkit.monitor import Monitor


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    db = tmp_path_factory.mktemp("schema") / "perfkit.db"
    mon = Monitor(f"sqlite:///{db}", interval=0.5, host="schema-test")
    with mon.track("GET /x"):
        pass
    mon.collect()
    mon.collect()
    yield schemathesis.openapi.from_asgi("/openapi.json", perfkit.api.app(mon, token=""))
    mon.stop_optimization()
    mon.stop()
    mon.store.close()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    # a generated query may ask for 20,000 forecast steps of every metric: seconds of work
    # on a busy machine; the bound is only there to end a hang
    response = case.call(timeout=120)
    assert response.status_code < 500, \
        f"{case.method} {case.formatted_path} -> {response.status_code}\n{response.text[:2000]}"
    case.validate_response(response, checks=[not_a_server_error])
