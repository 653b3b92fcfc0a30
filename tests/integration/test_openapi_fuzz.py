"""The OpenAPI document of the REST API (``/v2/openapi.json``) and schemathesis against a live
server (issue 13): every operation of the document, bounded examples, responses that match the
schema, and no 5xx but 501 and 503 (PROTOCOL.md §0) — never a 500 for anything a client sends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.integration.test_repository import write_model
from tests.serving import RunningServer, serve

EXAMPLES_PER_OPERATION = 30
ALLOWED_5XX = {501, 503}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("fuzz-repo")
    write_model(root, "plain")
    with serve(root, tmp_dir=tmp_path_factory.mktemp("fuzz")) as running:
        yield running


def test_the_document_covers_every_route(server: RunningServer) -> None:
    document = httpx.get(f"{server.base_url}/v2/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    from typing import cast

    from oipserve.dataplane import DataPlane
    from oipserve.transport.http.app import HTTPApp

    router = HTTPApp(cast(DataPlane, None), 1).router
    expected = set()
    for pattern, route, _mount in router.routes():
        if route.category is None:
            continue
        path = "/".join(
            "{" + part[1:-1].partition(":")[0] + "}" if part.startswith("{") else part
            for part in pattern.split("/")
        )
        expected |= {(method, path) for method in route.methods}
    assert operations == expected
    assert ("GET", "/v2/openapi.json") in operations
    assert ("POST", "/v2/models/{model}/infer") in operations


def test_schemathesis_every_operation(server: RunningServer) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/v2/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 20
    failures: list[str] = []
    statuses: dict[int, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Any) -> None:
            response = case.call(base_url=server.base_url, timeout=30)
            status = response.status_code
            statuses[status] = statuses.get(status, 0) + 1
            assert status < 500 or status in ALLOWED_5XX, (
                f"{case.method} {case.formatted_path}: {status} {response.text[:300]}"
            )
            case.validate_response(
                response, checks=[response_schema_conformance, content_type_conformance]
            )

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # many requests went out, and most reached the handlers (not only 404s)
    assert sum(statuses.values()) >= len(operations) * 5, statuses
    assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > 0, statuses
    # the server still answers normally after all of it
    assert httpx.get(f"{server.base_url}/v2/health/ready").status_code == 200
    assert "Traceback" not in server.log()
