"""Model management on a real server: the repository API over REST and gRPC, control modes,
version policies, reloads (under load, and failing), every bad-input case (PROTOCOL.md §3.2, §0).

The models are small Python models that answer a *tag* (a number) for each request: the version
folder's number unless a ``tag`` parameter in the config says otherwise, so a test can tell which
version, or which configuration, answered. Waits for the poller are bounded polling loops.
"""

from __future__ import annotations

import base64
import gc
import json
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from oipserve.protocol.messages import pb
from tests.serving import RunningServer, serve

TIMEOUT_S = 30.0
SERVICE = "inference.GRPCInferenceService"
POLL_SECS = "0.2"
WAIT_S = 20.0
REFUSED = "explicit model load / unload is not allowed if polling is enabled"

TAGGED = """\
import time

import numpy as np

import oipserve


class Tagged(oipserve.Model):
    def load(self, ctx):
        {broken}
        self.tag = int(ctx.parameters.get("tag", "{tag}"))
        self.delay_s = float(ctx.parameters.get("delay_s", "0"))

    def infer(self, requests):
        if self.delay_s:
            time.sleep(self.delay_s)
        return [
            oipserve.InferResponse({{"tag": np.full(r.inputs["x"].shape, self.tag, np.int32)}})
            for r in requests
        ]
"""

CONFIG = """\
backend = "python"
max_batch_size = {max_batch_size}
[[input]]
name = "x"
data_type = "TYPE_INT32"
dims = [1]
[[output]]
name = "tag"
data_type = "TYPE_INT32"
dims = [1]
"""


def tagged_source(tag: int, *, broken: bool = False) -> str:
    fail = 'raise RuntimeError("broken on purpose")' if broken else "pass"
    return TAGGED.format(tag=tag, broken=fail)


def write_model(
    root: Path,
    name: str,
    versions: tuple[int, ...] = (1,),
    *,
    extra_config: str = "",
    max_batch_size: int = 0,
    broken: bool = False,
) -> Path:
    """A tagged Python model: each version folder's model.py answers its version number."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.toml").write_text(CONFIG.format(max_batch_size=max_batch_size) + extra_config)
    for version in versions:
        write_version(folder, version, broken=broken)
    return folder


def write_version(folder: Path, version: int, *, broken: bool = False) -> None:
    (folder / str(version)).mkdir(exist_ok=True)
    (folder / str(version) / "model.py").write_text(tagged_source(version, broken=broken))


def config_json(tag: int, *, max_batch_size: int = 0, delay_s: float = 0, **extra: Any) -> str:
    """A load ``config`` override (Triton's JSON) for a tagged model answering ``tag`` (after
    sleeping ``delay_s`` in each call)."""
    config: dict[str, Any] = {
        "backend": "python",
        "max_batch_size": max_batch_size,
        "input": [{"name": "x", "data_type": "TYPE_INT32", "dims": [1]}],
        "output": [{"name": "tag", "data_type": "TYPE_INT32", "dims": [1]}],
        "parameters": {
            "tag": {"string_value": str(tag)},
            "delay_s": {"string_value": str(delay_s)},
        },
        **extra,
    }
    return json.dumps(config)


def tag_of(server: RunningServer, name: str, version: str = "", *, batched: bool = False) -> int:
    path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "") + "/infer"
    shape = [1, 1] if batched else [1]
    body = {"inputs": [{"name": "x", "shape": shape, "datatype": "INT32", "data": [0]}]}
    response = httpx.post(f"{server.base_url}{path}", json=body, timeout=TIMEOUT_S)
    assert response.status_code == 200, response.text
    return int(response.json()["outputs"][0]["data"][0])


def status(server: RunningServer, path: str) -> int:
    return httpx.get(f"{server.base_url}{path}", timeout=TIMEOUT_S).status_code


def post(server: RunningServer, path: str, body: bytes | None = None) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", content=body, timeout=TIMEOUT_S)


def index(server: RunningServer, ready: bool = False) -> list[dict[str, str]]:
    response = post(server, "/v2/repository/index", json.dumps({"ready": ready}).encode())
    assert response.status_code == 200, response.text
    entries: list[dict[str, str]] = response.json()
    return entries


def states(server: RunningServer, name: str) -> dict[str, str]:
    """version → state of ``name`` in the repository index."""
    return {e["version"]: e["state"] for e in index(server) if e["name"] == name and "version" in e}


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``condition`` until it holds (bounded; the server polls its folder meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting until {what}")


def rpc(server: RunningServer, name: str, request: Any) -> Any:
    method = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods_by_name[name]
    with grpc.insecure_channel(server.grpc_url) as channel:
        stub = channel.unary_unary(
            f"/{SERVICE}/{name}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=getattr(pb, method.output_type.name).FromString,
        )
        return stub(request, timeout=TIMEOUT_S)


def rpc_error(server: RunningServer, name: str, request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        rpc(server, name, request)
    error: Any = info.value
    return error.code(), error.details() or ""


def load_request(name: str, **parameters: Any) -> Any:
    """A RepositoryModelLoadRequest; each value a ModelRepositoryParameter's keyword arguments."""
    return pb.RepositoryModelLoadRequest(
        model_name=name,
        parameters={k: pb.ModelRepositoryParameter(**v) for k, v in parameters.items()},
    )


@pytest.fixture
def http_client(explicit: RunningServer) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(explicit.http_url, network_timeout=TIMEOUT_S)
    yield client
    client.close()


@pytest.fixture
def grpc_client(explicit: RunningServer) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(explicit.grpc_url)
    yield client
    client.close()


# -- explicit mode (the default) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def explicit_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explicit")
    for name in ("plain", "http-cycle", "grpc-cycle", "override", "reload-fails", "hammer"):
        write_model(root, name, max_batch_size=8 if name == "hammer" else 0)
    write_model(root, "latest", (1, 2, 3))
    write_model(
        root, "latest2", (1, 2, 3), extra_config="[version_policy.latest]\nnum_versions = 2\n"
    )
    write_model(root, "all", (1, 2, 3), extra_config="[version_policy.all]\n")
    write_model(
        root, "specific", (1, 2, 3), extra_config="[version_policy.specific]\nversions = [1, 3]\n"
    )
    return root


@pytest.fixture(scope="module")
def explicit(
    explicit_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with serve(
        explicit_repository,
        "--allow-model-upload",
        tmp_dir=tmp_path_factory.mktemp("explicit-server"),
    ) as running:
        yield running


def test_every_model_loads_at_start_up_in_explicit_mode(explicit: RunningServer) -> None:
    assert status(explicit, "/v2/health/ready") == 200
    assert {e["name"] for e in index(explicit, ready=True)} >= {"plain", "latest", "all"}
    assert "explicit" in explicit.log()


def test_server_metadata_advertises_the_repository_extensions(explicit: RunningServer) -> None:
    extensions = httpx.get(f"{explicit.base_url}/v2", timeout=TIMEOUT_S).json()["extensions"]
    assert {"model_repository", "model_repository(unload_dependents)"} <= set(extensions)


def test_index_through_both_tritonclients(
    explicit: RunningServer,
    http_client: httpclient.InferenceServerClient,
    grpc_client: grpcclient.InferenceServerClient,
) -> None:
    over_http = http_client.get_model_repository_index()
    assert isinstance(over_http, list)
    assert {"name": "plain", "version": "1", "state": "READY"} in over_http
    assert all("reason" not in e for e in over_http if e.get("state") == "READY")
    assert [e["name"] for e in over_http] == sorted(e["name"] for e in over_http)
    over_grpc = grpc_client.get_model_repository_index()
    assert [(m.name, m.version, m.state) for m in over_grpc.models] == [
        (e["name"], e.get("version", ""), e.get("state", "")) for e in over_http
    ]
    as_json = grpc_client.get_model_repository_index(as_json=True)
    assert {"name": "plain", "version": "1", "state": "READY"} in as_json["models"]


def test_index_body_rules(explicit: RunningServer) -> None:
    everything = post(explicit, "/v2/repository/index")  # tritonclient posts an empty body
    assert everything.status_code == 200
    assert post(explicit, "/v2/repository/index", b"{}").json() == everything.json()
    assert post(explicit, "/v2/repository/index", b'{"ready": false}').json() == everything.json()
    ready = index(explicit, ready=True)
    assert ready and all(e["state"] == "READY" for e in ready)
    for body in (b'{"ready": "yes"}', b'{"ready": 1}', b"[]", b"{", b'"x"'):
        response = post(explicit, "/v2/repository/index", body)
        assert response.status_code == 400, body
        assert "error" in response.json()
    assert httpx.get(f"{explicit.base_url}/v2/repository/index").status_code == 405
    code, _ = rpc_error(explicit, "RepositoryIndex", pb.RepositoryIndexRequest(repository_name="r"))
    assert code == grpc.StatusCode.UNIMPLEMENTED
    only_ready = rpc(explicit, "RepositoryIndex", pb.RepositoryIndexRequest(ready=True))
    assert {m.state for m in only_ready.models} == {"READY"}


def test_version_policies(explicit: RunningServer) -> None:
    assert states(explicit, "latest") == {"3": "READY"}
    assert states(explicit, "latest2") == {"2": "READY", "3": "READY"}
    assert states(explicit, "all") == {"1": "READY", "2": "READY", "3": "READY"}
    assert states(explicit, "specific") == {"1": "READY", "3": "READY"}
    # no version: the highest READY one; a named version: that one
    assert [tag_of(explicit, n) for n in ("latest", "latest2", "all", "specific")] == [3, 3, 3, 3]
    assert tag_of(explicit, "all", "1") == 1
    assert tag_of(explicit, "specific", "1") == 1
    assert status(explicit, "/v2/models/specific/versions/2/ready") == 404
    assert status(explicit, "/v2/models/latest/versions/1/ready") == 404
    metadata = httpx.get(f"{explicit.base_url}/v2/models/all", timeout=TIMEOUT_S).json()
    assert metadata["versions"] == ["1", "2", "3"]


def test_load_and_unload_through_tritonclient_http(
    explicit: RunningServer, http_client: httpclient.InferenceServerClient
) -> None:
    assert http_client.is_model_ready("http-cycle")
    http_client.unload_model("http-cycle")
    assert not http_client.is_model_ready("http-cycle")
    assert states(explicit, "http-cycle") == {"1": "UNAVAILABLE"}
    entry = next(e for e in index(explicit) if e["name"] == "http-cycle")
    assert entry["reason"] == "unloaded"
    assert status(explicit, "/v2/models/http-cycle") == 404
    assert status(explicit, "/v2/health/ready") == 200  # the server stays ready
    http_client.unload_model("http-cycle", unload_dependents=True)  # again: harmless
    http_client.load_model("http-cycle")
    assert http_client.is_model_ready("http-cycle")
    assert tag_of(explicit, "http-cycle") == 1
    http_client.load_model("http-cycle")  # loading a loaded model reloads it
    assert tag_of(explicit, "http-cycle") == 1


def test_load_and_unload_through_tritonclient_grpc(
    explicit: RunningServer, grpc_client: grpcclient.InferenceServerClient
) -> None:
    assert grpc_client.is_model_ready("grpc-cycle")
    grpc_client.unload_model("grpc-cycle", unload_dependents=True)
    assert not grpc_client.is_model_ready("grpc-cycle")
    assert states(explicit, "grpc-cycle") == {"1": "UNAVAILABLE"}
    assert grpc_client.is_server_ready()
    grpc_client.unload_model("grpc-cycle")  # again: harmless
    grpc_client.load_model("grpc-cycle")
    assert grpc_client.is_model_ready("grpc-cycle")
    assert states(explicit, "grpc-cycle") == {"1": "READY"}


def test_config_override_through_both_clients(
    explicit: RunningServer,
    http_client: httpclient.InferenceServerClient,
    grpc_client: grpcclient.InferenceServerClient,
) -> None:
    assert tag_of(explicit, "override") == 1
    http_client.load_model("override", config=config_json(41))
    assert tag_of(explicit, "override") == 41
    config = http_client.get_model_config("override")
    assert config["parameters"]["tag"] == {"string_value": "41"}
    grpc_client.load_model("override", config=config_json(42, max_batch_size=4))
    assert tag_of(explicit, "override", batched=True) == 42
    assert grpc_client.get_model_config("override").config.max_batch_size == 4
    http_client.load_model("override")  # no override: back to the folder's config
    assert tag_of(explicit, "override") == 1
    assert http_client.get_model_config("override")["parameters"] == {}


def test_unload_of_a_model_that_is_not_loaded_is_harmless(
    explicit: RunningServer,
    http_client: httpclient.InferenceServerClient,
    grpc_client: grpcclient.InferenceServerClient,
) -> None:
    http_client.unload_model("never-heard-of-it")
    grpc_client.unload_model("never-heard-of-it")
    assert post(explicit, "/v2/repository/models/never-heard-of-it/unload").status_code == 200
    assert "never-heard-of-it" not in {e["name"] for e in index(explicit)}


def test_unload_parameter_types(explicit: RunningServer) -> None:
    path = "/v2/repository/models/never-heard-of-it/unload"
    ok = post(explicit, path, b'{"parameters": {"unload_dependents": true}}')
    assert ok.status_code == 200
    assert ok.content == b""
    for body in (
        b'{"parameters": {"unload_dependents": "yes"}}',
        b'{"parameters": []}',
        b"[1]",
    ):
        assert post(explicit, path, body).status_code == 400, body
    bad = pb.RepositoryModelUnloadRequest(
        model_name="plain",
        parameters={"unload_dependents": pb.ModelRepositoryParameter(string_param="true")},
    )
    code, details = rpc_error(explicit, "RepositoryModelUnload", bad)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "bool_param" in details
    assert tag_of(explicit, "plain") == 1  # nothing changed


def test_loading_an_unknown_model_is_not_found(
    explicit: RunningServer,
    http_client: httpclient.InferenceServerClient,
    grpc_client: grpcclient.InferenceServerClient,
) -> None:
    response = post(explicit, "/v2/repository/models/nope/load")
    assert response.status_code == 404
    assert "nope" in response.json()["error"]
    with pytest.raises(InferenceServerException, match="not in the model repository"):
        http_client.load_model("nope")
    with pytest.raises(InferenceServerException, match="not in the model repository"):
        grpc_client.load_model("nope")
    code, _ = rpc_error(explicit, "RepositoryModelLoad", load_request("nope"))
    assert code == grpc.StatusCode.NOT_FOUND
    assert "nope" not in {e["name"] for e in index(explicit)}


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ('{"inputs": []}', "inputs"),
        ('{"max_batch_size": "eight"}', "max_batch_size"),
        ('{"input": [{"name": "x", "data_type": "TYPE_NOPE"}]}', "TYPE_NOPE"),
        ('{"optimization": {"no_such_knob": 1}}', "no_such_knob"),
        ('{"name": "other"}', "other"),
        ("{not json", "invalid JSON"),
        ("[]", "object"),
    ],
)
def test_an_invalid_config_override_says_which_field(
    explicit: RunningServer,
    http_client: httpclient.InferenceServerClient,
    grpc_client: grpcclient.InferenceServerClient,
    config: str,
    field: str,
) -> None:
    with pytest.raises(InferenceServerException, match=field) as info:
        http_client.load_model("plain", config=config)
    assert info.value.status() == "400"
    with pytest.raises(InferenceServerException, match=field) as grpc_info:
        grpc_client.load_model("plain", config=config)
    assert grpc_info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert tag_of(explicit, "plain") == 1  # nothing changed
    assert states(explicit, "plain") == {"1": "READY"}


@pytest.mark.parametrize(
    "encoded", ["..%2Fx", "%2E%2E%2Fplain", "%2Fetc%2Fpasswd", "%2E%2E", "a%5C..%5Cb", "%00"]
)
@pytest.mark.parametrize("action", ["load", "unload"])
def test_model_names_escaping_the_repository_are_refused_over_rest(
    explicit: RunningServer, explicit_repository: Path, encoded: str, action: str
) -> None:
    before = index(explicit)
    response = post(explicit, f"/v2/repository/models/{encoded}/{action}")
    assert response.status_code == 400
    assert "invalid model name" in response.json()["error"]
    assert index(explicit) == before
    assert sorted(p.name for p in explicit_repository.parent.iterdir())  # nothing written beside


@pytest.mark.parametrize("name", ["../x", "../plain", "/etc/passwd", "..", "", "a/b"])
@pytest.mark.parametrize("rpc_name", ["RepositoryModelLoad", "RepositoryModelUnload"])
def test_model_names_escaping_the_repository_are_refused_over_grpc(
    explicit: RunningServer, name: str, rpc_name: str
) -> None:
    request_type = getattr(pb, f"{rpc_name}Request")
    code, details = rpc_error(explicit, rpc_name, request_type(model_name=name))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid model name" in details
    assert tag_of(explicit, "plain") == 1


def test_load_parameter_types(explicit: RunningServer) -> None:
    path = "/v2/repository/models/plain/load"
    for body, message in (
        (b'{"parameters": {"config": {"backend": "python"}}}', "must be a string"),
        (b'{"parameters": {"colour": "blue"}}', "unrecognized load parameter 'colour'"),
        (b'{"parameters": {"file:1/model.py": 12}}', "base64"),
        (b'{"parameters": "config"}', "must be an object"),
    ):
        response = post(explicit, path, body)
        assert response.status_code == 400, body
        assert message in response.json()["error"]
    for parameters, message in (
        ({"config": {"bytes_param": b"{}"}}, "string_param"),
        ({"file:1/model.py": {"string_param": "x"}}, "bytes_param"),
        ({"colour": {"string_param": "blue"}}, "unrecognized load parameter"),
    ):
        code, details = rpc_error(
            explicit, "RepositoryModelLoad", load_request("plain", **parameters)
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert message in details
    assert tag_of(explicit, "plain") == 1


def test_a_named_repository_is_not_supported(explicit: RunningServer) -> None:
    for path in (
        "/v2/repository/mine/index",
        "/v2/repository/mine/models/plain/load",
        "/v2/repository/mine/models/plain/unload",
    ):
        response = post(explicit, path)
        assert response.status_code == 501, path
        assert "repository_name" in response.json()["error"]
    for rpc_name in ("RepositoryModelLoad", "RepositoryModelUnload"):
        request = getattr(pb, f"{rpc_name}Request")(repository_name="mine", model_name="plain")
        code, _ = rpc_error(explicit, rpc_name, request)
        assert code == grpc.StatusCode.UNIMPLEMENTED
    assert tag_of(explicit, "plain") == 1


def test_file_overrides_over_rest_and_grpc(
    explicit: RunningServer, grpc_client: grpcclient.InferenceServerClient
) -> None:
    source = tagged_source(7).encode()
    # REST: base64 values (tritonclient.http 2.48 cannot send these: it puts bytes in its JSON)
    parameters = {
        "config": config_json(7),
        "file:1/model.py": base64.b64encode(source).decode(),
        "file:1/notes/readme.txt": base64.b64encode(b"hello").decode(),
    }
    body = json.dumps({"parameters": parameters}).encode()
    response = post(explicit, "/v2/repository/models/from-files/load", body)
    assert response.status_code == 200, response.text
    assert tag_of(explicit, "from-files") == 7
    assert states(explicit, "from-files") == {"1": "READY"}
    # gRPC: raw bytes, through tritonclient; it replaces the REST-loaded files
    grpc_client.load_model(
        "from-files",
        config=config_json(0),
        files={"file:2/model.py": tagged_source(8).encode()},
    )
    assert tag_of(explicit, "from-files") == 0  # the config's tag parameter
    assert states(explicit, "from-files") == {"1": "UNAVAILABLE", "2": "READY"}
    grpc_client.unload_model("from-files")
    assert states(explicit, "from-files") == {"1": "UNAVAILABLE", "2": "UNAVAILABLE"}


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"file:1/model.py": "eA=="}, "'config' parameter"),
        ({"config": "{}", "file:../escape.py": "eA=="}, "invalid file override path"),
        ({"config": "{}", "file:/abs/model.py": "eA=="}, "invalid file override path"),
        ({"config": "{}", "file:1/model.py": "not base64!"}, "base64"),
    ],
)
def test_bad_file_overrides(
    explicit: RunningServer, parameters: dict[str, str], message: str
) -> None:
    body = json.dumps({"parameters": parameters}).encode()
    response = post(explicit, "/v2/repository/models/plain/load", body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert tag_of(explicit, "plain") == 1
    code, details = rpc_error(
        explicit, "RepositoryModelLoad", load_request("plain", **{"file:1/x": {"bytes_param": b""}})
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "'config' parameter" in details


def test_a_failed_reload_leaves_the_old_version_serving(
    explicit: RunningServer,
    explicit_repository: Path,
    http_client: httpclient.InferenceServerClient,
    grpc_client: grpcclient.InferenceServerClient,
) -> None:
    folder = explicit_repository / "reload-fails"
    assert tag_of(explicit, "reload-fails") == 1
    write_version(folder, 1, broken=True)
    try:
        with pytest.raises(InferenceServerException, match="broken on purpose") as info:
            http_client.load_model("reload-fails")
        assert info.value.status() == "500"
        assert "failed to load 'reload-fails'" in str(info.value)
        with pytest.raises(InferenceServerException, match="broken on purpose"):
            grpc_client.load_model("reload-fails")
        assert tag_of(explicit, "reload-fails") == 1
        assert states(explicit, "reload-fails") == {"1": "READY"}
        # a new version that fails does not replace the one serving either
        write_version(folder, 2, broken=True)
        with pytest.raises(InferenceServerException, match="version 2"):
            http_client.load_model("reload-fails")
        assert tag_of(explicit, "reload-fails") == 1
        assert states(explicit, "reload-fails")["1"] == "READY"
        assert states(explicit, "reload-fails")["2"] == "UNAVAILABLE"
        assert status(explicit, "/v2/models/reload-fails/versions/2/ready") == 503
        # and a config override that cannot load
        with pytest.raises(InferenceServerException):
            http_client.load_model("reload-fails", config='{"backend": "no-such-runtime"}')
        assert tag_of(explicit, "reload-fails") == 1
    finally:
        (folder / "2" / "model.py").unlink()
        (folder / "2").rmdir()
        write_version(folder, 1)
    http_client.load_model("reload-fails")
    assert tag_of(explicit, "reload-fails") == 1


def test_reload_under_concurrent_load_fails_no_request(explicit: RunningServer) -> None:
    """Clients over REST and gRPC hammer a batching model while it is reloaded with changed
    configs (and new tags) again and again: every request succeeds, and the new tags show up."""
    stop = threading.Event()
    failures: list[str] = []
    seen: set[int] = set()
    counts = [0]
    lock = threading.Lock()

    def _answered(tag: int, enough: int) -> bool:
        return tag in seen and counts[0] > enough

    def record(tag: int) -> None:
        with lock:
            seen.add(tag)
            counts[0] += 1

    def rest_worker() -> None:
        body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "INT32", "data": [0]}]}
        with httpx.Client(base_url=explicit.base_url, timeout=TIMEOUT_S) as client:
            while not stop.is_set():
                try:
                    response = client.post("/v2/models/hammer/infer", json=body)
                    if response.status_code != 200:
                        failures.append(f"REST {response.status_code}: {response.text}")
                        continue
                    record(int(response.json()["outputs"][0]["data"][0]))
                except Exception as exc:
                    failures.append(f"REST {type(exc).__name__}: {exc}")

    def grpc_worker() -> None:
        client = grpcclient.InferenceServerClient(explicit.grpc_url)
        infer_input = grpcclient.InferInput("x", [1, 1], "INT32")
        infer_input.set_data_from_numpy(np.zeros((1, 1), np.int32))
        try:
            while not stop.is_set():
                try:
                    result = client.infer("hammer", [infer_input])
                    answer = result.as_numpy("tag")
                    assert answer is not None
                    record(int(answer[0, 0]))
                except Exception as exc:
                    failures.append(f"gRPC {type(exc).__name__}: {exc}")
        finally:
            client.close()

    # tritonclient.http clients of earlier tests, left to the garbage collector, must be
    # collected here: collected in a worker thread, their gevent hub refuses to close them
    gc.collect()
    threads = [threading.Thread(target=rest_worker) for _ in range(4)]
    threads += [threading.Thread(target=grpc_worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    http = httpclient.InferenceServerClient(explicit.http_url, network_timeout=TIMEOUT_S)
    grpc_admin = grpcclient.InferenceServerClient(explicit.grpc_url)
    try:
        wait_until(lambda: counts[0] > 50, "requests flow")
        for round_ in range(6):
            tag = 100 + round_
            batching = {"max_queue_delay_microseconds": 2000 * (round_ % 3)}
            config = config_json(tag, max_batch_size=8, delay_s=0.002, dynamic_batching=batching)
            enough = counts[0] + 20
            if round_ % 2:
                grpc_admin.load_model("hammer", config=config)
            else:
                http.load_model("hammer", config=config)
            wait_until(partial(_answered, tag, enough), f"tag {tag} answers")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=TIMEOUT_S)
        http.close()
        grpc_admin.close()
    assert not failures, failures[:5]
    assert {100, 101, 102, 103, 104, 105} <= seen
    assert status(explicit, "/v2/health/ready") == 200


# -- explicit mode with --load-model -------------------------------------------------------------


def test_load_model_names_the_start_up_subset(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write_model(tmp_path / "repo", name)
    with serve(
        tmp_path / "repo", "--load-model", "a", "--load-model", "c", tmp_dir=tmp_path
    ) as running:
        assert status(running, "/v2/health/ready") == 200
        assert index(running) == [
            {"name": "a", "version": "1", "state": "READY"},
            {"name": "b"},  # never loaded: the name alone
            {"name": "c", "version": "1", "state": "READY"},
        ]
        assert [e["name"] for e in index(running, ready=True)] == ["a", "c"]
        assert status(running, "/v2/models/b/ready") == 404
        client = httpclient.InferenceServerClient(running.http_url)
        try:
            client.load_model("b")
            assert client.is_model_ready("b")
        finally:
            client.close()
        assert status(running, "/v2/health/ready") == 200


def test_load_model_star_loads_everything(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_model(tmp_path / "repo", name)
    with serve(tmp_path / "repo", "--load-model", "*", tmp_dir=tmp_path) as running:
        assert [e["name"] for e in index(running, ready=True)] == ["a", "b"]


def test_a_model_that_failed_at_start_up_and_loads_later_makes_the_server_ready(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    write_model(repo, "good")
    write_model(repo, "bad", broken=True)
    with serve(repo, tmp_dir=tmp_path) as running:
        assert status(running, "/v2/health/ready") == 503
        assert states(running, "bad") == {"1": "UNAVAILABLE"}
        (entry,) = [e for e in index(running) if e["name"] == "bad"]
        assert "broken on purpose" in entry["reason"]
        failed = post(running, "/v2/repository/models/bad/load")
        assert failed.status_code == 500
        assert "broken on purpose" in failed.json()["error"]
        assert status(running, "/v2/health/ready") == 503
        write_version(repo / "bad", 1)
        assert post(running, "/v2/repository/models/bad/load").status_code == 200
        assert status(running, "/v2/health/ready") == 200
        assert post(running, "/v2/repository/models/good/unload").status_code == 200
        assert status(running, "/v2/health/ready") == 200  # unloading never flips readiness


# -- none and poll modes -------------------------------------------------------------------------


def test_none_mode_refuses_load_and_unload(tmp_path: Path) -> None:
    write_model(tmp_path / "repo", "a")
    with serve(tmp_path / "repo", "--model-control-mode", "none", tmp_dir=tmp_path) as running:
        assert index(running) == [{"name": "a", "version": "1", "state": "READY"}]
        for action in ("load", "unload"):
            # Triton's status and text (core's ModelRepositoryManager::LoadUnloadModel)
            response = post(running, f"/v2/repository/models/a/{action}")
            assert response.status_code == 503
            assert response.json()["error"].startswith(REFUSED)
            assert "'none'" in response.json()["error"]
            request = getattr(pb, f"RepositoryModel{action.title()}Request")(model_name="a")
            code, details = rpc_error(running, f"RepositoryModel{action.title()}", request)
            assert code == grpc.StatusCode.UNAVAILABLE
            assert details.startswith(REFUSED)
            assert "'none'" in details
        client = httpclient.InferenceServerClient(running.http_url)
        try:
            with pytest.raises(InferenceServerException, match=REFUSED):
                client.unload_model("a")
        finally:
            client.close()
        assert tag_of(running, "a") == 1


def test_control_mode_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_model(tmp_path / "repo", "a")
    monkeypatch.setenv("OIPSERVE_MODEL_CONTROL_MODE", "none")
    with serve(tmp_path / "repo", tmp_dir=tmp_path) as running:
        response = post(running, "/v2/repository/models/a/unload")
        assert response.status_code == 503
        assert "'none'" in response.json()["error"]


def test_poll_mode_follows_the_repository_folder(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_model(repo, "stays")
    write_model(repo, "goes")
    write_model(repo, "grows")
    args = ("--model-control-mode", "poll", "--repository-poll-secs", POLL_SECS)
    with serve(repo, *args, tmp_dir=tmp_path) as running:
        assert [e["name"] for e in index(running, ready=True)] == ["goes", "grows", "stays"]
        # the API's load and unload are refused, naming the mode; the index is not
        response = post(running, "/v2/repository/models/stays/unload")
        assert response.status_code == 503
        assert response.json()["error"].startswith(REFUSED)
        assert "'poll'" in response.json()["error"]
        code, details = rpc_error(running, "RepositoryModelLoad", load_request("stays"))
        assert code == grpc.StatusCode.UNAVAILABLE
        assert details.startswith(REFUSED)
        assert "'poll'" in details

        # a new model folder
        write_model(repo, "new")
        wait_until(lambda: states(running, "new") == {"1": "READY"}, "'new' is loaded")
        assert tag_of(running, "new") == 1
        # a new version: the latest-1 policy switches over to it
        write_version(repo / "grows", 2)
        wait_until(
            lambda: states(running, "grows") == {"1": "UNAVAILABLE", "2": "READY"},
            "'grows' serves version 2",
        )
        assert tag_of(running, "grows") == 2
        # a changed config: reloaded with it
        (repo / "stays" / "model.toml").write_text(
            CONFIG.format(max_batch_size=0) + '[parameters]\ntag = "55"\n'
        )
        wait_until(lambda: tag_of(running, "stays") == 55, "'stays' answers its new tag")
        # a removed model folder
        for path in sorted((repo / "goes").rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (repo / "goes").rmdir()
        wait_until(lambda: status(running, "/v2/models/goes/ready") != 200, "'goes' is unloaded")
        assert states(running, "goes") == {"1": "UNAVAILABLE"}
        # a broken change leaves the old version serving
        write_version(repo / "new", 1, broken=True)
        wait_until(lambda: "broken on purpose" in running.log(), "the broken reload is tried")
        assert tag_of(running, "new") == 1
        assert status(running, "/v2/health/ready") == 200  # changes never flip readiness
