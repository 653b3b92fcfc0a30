"""Fix 11: refusals that Triton's clients and tests read answer with Triton's status and text, over
both transports, through the clients users have (tritonclient.http and tritonclient.grpc).

Sources: core ``src/model_repository_manager/model_repository_manager.cc``
(``LoadUnloadModel``: ``UNAVAILABLE`` "explicit model load / unload is not allowed if polling is
enabled" whenever model control is not explicit, ``none`` mode included) and server
``src/grpc/grpc_server.cc`` (``RepositoryModelLoad`` / ``RepositoryModelUnload`` parameter checks).
Triton's own L0 test of the gRPC aio client matches ``[StatusCode.UNAVAILABLE] explicit model
load / unload is not allowed if polling is enabled`` as a pattern; so do these tests. PROTOCOL.md
§0 maps ``UNAVAILABLE`` to HTTP 503.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from oipserve.protocol.messages import pb
from tests.serving import EXAMPLES, RunningServer, serve

REFUSED = "explicit model load / unload is not allowed if polling is enabled"
TRITON_GRPC_PATTERN = r"\[StatusCode\.UNAVAILABLE\] " + re.escape(REFUSED)
SERVICE = "inference.GRPCInferenceService"


@pytest.fixture(scope="module", params=["none", "poll"])
def refusing(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp(f"refusing-{request.param}")
    with serve(EXAMPLES, "--model-control-mode", request.param, tmp_dir=tmp) as running:
        yield running


@pytest.fixture(scope="module")
def explicit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with serve(EXAMPLES, tmp_dir=tmp_path_factory.mktemp("explicit")) as running:
        yield running


def _raised(call: Callable[[], object]) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value


def test_repository_calls_refused_over_http(refusing: RunningServer) -> None:
    client = httpclient.InferenceServerClient(refusing.http_url)
    try:
        for call in (lambda: client.load_model("iris"), lambda: client.unload_model("iris")):
            error = _raised(call)
            assert error.status() == "503"
            assert str(error.message()).startswith(REFUSED)
        assert client.is_model_ready("iris")  # nothing changed
    finally:
        client.close()


def test_repository_calls_refused_over_grpc(refusing: RunningServer) -> None:
    client = grpcclient.InferenceServerClient(refusing.grpc_url)
    try:
        calls: list[Callable[[], object]] = [
            lambda: client.load_model("iris"),
            lambda: client.load_model("iris", config='{"backend": "sklearn"}'),
            lambda: client.unload_model("iris"),
            lambda: client.unload_model("iris", unload_dependents=True),
        ]
        for call in calls:
            error = _raised(call)
            assert error.status() == "StatusCode.UNAVAILABLE"
            assert str(error.message()).startswith(REFUSED)
            assert re.search(TRITON_GRPC_PATTERN, str(error))  # Triton's own test's pattern
        assert client.is_model_ready("iris")
    finally:
        client.close()


def _rpc_error(server: RunningServer, name: str, request: Any) -> tuple[grpc.StatusCode, str]:
    response_type = getattr(pb, f"{name}Response")
    with grpc.insecure_channel(server.grpc_url) as channel:
        call = channel.unary_unary(
            f"/{SERVICE}/{name}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=30)
    error: Any = info.value
    return error.code(), error.details() or ""


def _load(**parameters: dict[str, Any]) -> pb.RepositoryModelLoadRequest:
    return pb.RepositoryModelLoadRequest(
        model_name="iris",
        parameters={k: pb.ModelRepositoryParameter(**v) for k, v in parameters.items()},
    )


@pytest.mark.parametrize(
    ("name", "request_", "code", "text"),
    [
        (
            "RepositoryModelLoad",
            _load(config={"bytes_param": b"{}"}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid value type for load parameter 'config', expected string_param.",
        ),
        (
            "RepositoryModelLoad",
            _load(**{"file:1/model.py": {"string_param": "x"}}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid value type for load parameter 'file:1/model.py', expected bytes_param.",
        ),
        (
            "RepositoryModelLoad",
            _load(colour={"string_param": "blue"}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "unrecognized load parameter 'colour'.",
        ),
        (
            "RepositoryModelUnload",
            pb.RepositoryModelUnloadRequest(
                model_name="iris",
                parameters={"unload_dependents": pb.ModelRepositoryParameter(string_param="y")},
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid value type for 'unload_dependents' parameter, expected bool_param.",
        ),
        (
            "RepositoryModelLoad",
            pb.RepositoryModelLoadRequest(repository_name="mine", model_name="iris"),
            grpc.StatusCode.UNIMPLEMENTED,
            "'repository_name' specification is not supported",
        ),
        (
            "RepositoryModelUnload",
            pb.RepositoryModelUnloadRequest(repository_name="mine", model_name="iris"),
            grpc.StatusCode.UNIMPLEMENTED,
            "'repository_name' specification is not supported",
        ),
    ],
    ids=[
        "config-type",
        "file-type",
        "unrecognized",
        "unload-dependents-type",
        "repo-load",
        "repo-unload",
    ],
)
def test_repository_parameter_refusals_use_tritons_text(
    explicit: RunningServer, name: str, request_: Any, code: grpc.StatusCode, text: str
) -> None:
    got_code, details = _rpc_error(explicit, name, request_)
    assert got_code == code
    assert details.startswith(text)
    client = grpcclient.InferenceServerClient(explicit.grpc_url)
    try:
        assert client.is_model_ready("iris")  # the refusal changed nothing
    finally:
        client.close()
