"""The REST API against a real server: every endpoint, through tritonclient.http and httpx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.serving import RunningServer


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as c:
        yield c


@pytest.fixture
def triton(server: RunningServer) -> Iterator[httpclient.InferenceServerClient]:
    c = httpclient.InferenceServerClient(server.http_url)
    yield c
    c.close()


def simple_body(a: list[int], b: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": a},
            {"name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "data": b},
        ],
        **extra,
    }


# -- health and metadata ---------------------------------------------------------------------


def test_health_endpoints(client: httpx.Client) -> None:
    live = client.get("/v2/health/live")
    assert live.status_code == 200
    assert live.json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True}


def test_health_through_tritonclient(triton: httpclient.InferenceServerClient) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready("simple")
    assert triton.is_model_ready("iris", "1")
    assert not triton.is_model_ready("no-such-model")


def test_server_metadata(client: httpx.Client, triton: httpclient.InferenceServerClient) -> None:
    body = client.get("/v2").json()
    assert body["name"] == "oipserve"
    assert body["version"]
    assert "binary_tensor_data" in body["extensions"]
    assert triton.get_server_metadata()["name"] == "oipserve"


def test_model_metadata(client: httpx.Client, triton: httpclient.InferenceServerClient) -> None:
    body = client.get("/v2/models/simple").json()
    assert body == {
        "name": "simple",
        "versions": ["1"],
        "platform": "python",
        "inputs": [
            {"name": "INPUT0", "datatype": "INT32", "shape": [-1, 16]},
            {"name": "INPUT1", "datatype": "INT32", "shape": [-1, 16]},
        ],
        "outputs": [
            {"name": "OUTPUT0", "datatype": "INT32", "shape": [-1, 16]},
            {"name": "OUTPUT1", "datatype": "INT32", "shape": [-1, 16]},
        ],
    }
    versioned = client.get("/v2/models/simple/versions/1").json()
    assert versioned["versions"] == ["1"]
    iris = triton.get_model_metadata("iris")
    assert iris["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in iris["outputs"]] == ["predict"]  # its model.toml lists one


def test_model_ready_endpoints(client: httpx.Client) -> None:
    response = client.get("/v2/models/iris/ready")
    assert response.status_code == 200
    assert response.json() == {"name": "iris", "ready": True}
    assert client.get("/v2/models/iris/versions/1/ready").status_code == 200
    missing = client.get("/v2/models/iris/versions/7/ready")
    assert missing.status_code == 404
    assert "unknown model" in missing.json()["error"]
    assert client.get("/v2/models/nope/ready").status_code == 404


# -- inference -------------------------------------------------------------------------------


def test_infer_simple_json(client: httpx.Client) -> None:
    a = list(range(16))
    b = [1] * 16
    response = client.post("/v2/models/simple/infer", json=simple_body(a, b, id="req-7"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["id"] == "req-7"
    assert body["model_name"] == "simple"
    assert body["model_version"] == "1"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["OUTPUT0"]["data"] == [x + 1 for x in a]
    assert outputs["OUTPUT1"]["data"] == [x - 1 for x in a]
    assert outputs["OUTPUT0"]["shape"] == [1, 16]
    assert outputs["OUTPUT0"]["datatype"] == "INT32"


def test_infer_versioned_path_and_nested_data(client: httpx.Client) -> None:
    body = simple_body([], [])
    body["inputs"][0]["data"] = [list(range(16))]
    body["inputs"][1]["data"] = [[2] * 16]
    response = client.post("/v2/models/simple/versions/1/infer", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [x + 2 for x in range(16)]


def test_infer_output_selection(client: httpx.Client) -> None:
    body = simple_body(list(range(16)), [1] * 16, outputs=[{"name": "OUTPUT1"}])
    response = client.post("/v2/models/simple/infer", json=body)
    assert [o["name"] for o in response.json()["outputs"]] == ["OUTPUT1"]
    assert "id" not in response.json()


def test_infer_without_content_type(server: RunningServer) -> None:
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    payload = json.dumps(simple_body(list(range(16)), [0] * 16)).encode()
    connection.putrequest("POST", "/v2/models/simple/infer", skip_accept_encoding=True)
    connection.putheader("Content-Length", str(len(payload)))
    connection.endheaders(payload)
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["outputs"][0]["data"] == list(range(16))
    connection.close()


def test_iris_predict_and_its_only_output(client: httpx.Client) -> None:
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    request: dict[str, Any] = {
        "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": rows}]
    }
    body = client.post("/v2/models/iris/infer", json=request).json()
    assert [o["name"] for o in body["outputs"]] == ["predict"]
    assert body["outputs"][0]["data"] == [0, 2]
    assert body["outputs"][0]["datatype"] == "INT64"
    # its model.toml lists predict alone, which narrows what it serves
    request["outputs"] = [{"name": "predict_proba"}]
    response = client.post("/v2/models/iris/infer", json=request)
    assert response.status_code == 400
    assert "predict_proba" in response.json()["error"]


def test_outputs_come_back_in_the_order_asked(client: httpx.Client) -> None:
    a = list(range(16))
    request = {
        "inputs": [
            {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": a},
            {"name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "data": a},
        ],
        "outputs": [{"name": "OUTPUT1"}, {"name": "OUTPUT0"}],
    }
    body = client.post("/v2/models/simple/infer", json=request).json()
    assert [o["name"] for o in body["outputs"]] == ["OUTPUT1", "OUTPUT0"]
    assert body["outputs"][1]["data"] == [2 * v for v in a]


def test_parameters_accepted(client: httpx.Client) -> None:
    body = simple_body(list(range(16)), [1] * 16, parameters={"custom": "x", "n": 3, "f": 0.5})
    body["inputs"][0]["parameters"] = {"note": True}
    assert client.post("/v2/models/simple/infer", json=body).status_code == 200


def test_tritonclient_json_mode(triton: httpclient.InferenceServerClient) -> None:
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.full((1, 16), 3, dtype=np.int32)
    inputs = [
        httpclient.InferInput("INPUT0", [1, 16], "INT32"),
        httpclient.InferInput("INPUT1", [1, 16], "INT32"),
    ]
    inputs[0].set_data_from_numpy(a, binary_data=False)
    inputs[1].set_data_from_numpy(b, binary_data=False)
    outputs = [
        httpclient.InferRequestedOutput("OUTPUT0", binary_data=False),
        httpclient.InferRequestedOutput("OUTPUT1", binary_data=False),
    ]
    result = triton.infer("simple", inputs, outputs=outputs, request_id="abc")
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)
    response = result.get_response()
    assert response["id"] == "abc"
    assert response["model_version"] == "1"


@pytest.mark.parametrize(
    ("datatype", "array"),
    [
        ("BOOL", np.array([[True, False, True]])),
        ("UINT8", np.array([[0, 7, 255]], dtype=np.uint8)),
        ("UINT16", np.array([[0, 7, 65535]], dtype=np.uint16)),
        ("UINT32", np.array([[0, 7, 2**32 - 1]], dtype=np.uint32)),
        ("UINT64", np.array([[0, 7, 2**64 - 1]], dtype=np.uint64)),
        ("INT8", np.array([[-128, 0, 127]], dtype=np.int8)),
        ("INT16", np.array([[-(2**15), 0, 2**15 - 1]], dtype=np.int16)),
        ("INT32", np.array([[-(2**31), 0, 2**31 - 1]], dtype=np.int32)),
        ("INT64", np.array([[-(2**63), 0, 2**63 - 1]], dtype=np.int64)),
        ("FP16", np.array([[0.5, -1.25, 2.0]], dtype=np.float16)),
        ("FP32", np.array([[0.5, -1.25, 3.0e38]], dtype=np.float32)),
        ("FP64", np.array([[0.1, -1.25, 1e300]], dtype=np.float64)),
        ("BYTES", np.array([[b"a", b"", "é".encode()]], dtype=np.object_)),
    ],
)
def test_identity_json_round_trip(
    triton: httpclient.InferenceServerClient, datatype: str, array: np.ndarray
) -> None:
    tensor = httpclient.InferInput("INPUT0", list(array.shape), datatype)
    if datatype == "FP16":
        # tritonclient refuses FP16 in JSON client-side; send the numbers ourselves
        tensor._data = [float(x) for x in array.ravel()]
    else:
        tensor.set_data_from_numpy(array, binary_data=False)
    output = httpclient.InferRequestedOutput("OUTPUT0", binary_data=datatype == "FP16")
    result = triton.infer("identity", [tensor], outputs=[output])
    got = result.as_numpy("OUTPUT0")
    assert got is not None
    assert got.shape == array.shape
    assert result.get_output("OUTPUT0")["datatype"] == datatype
    if datatype == "BYTES":
        # tritonclient hands JSON BYTES back as str
        array = np.vectorize(lambda b: b.decode(), otypes=[object])(array)
    np.testing.assert_array_equal(got, array)


# -- errors ----------------------------------------------------------------------------------


def test_unknown_path_and_method(client: httpx.Client) -> None:
    assert client.get("/nope").status_code == 404
    not_found = client.get("/v2/models/simple/bogus")
    assert not_found.status_code == 404
    assert not_found.json() == {"error": "Not Found"}
    wrong_method = client.get("/v2/models/simple/infer")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "Method Not Allowed"}
    assert client.delete("/v2/health/live").status_code == 405


def test_unknown_model_and_version(client: httpx.Client) -> None:
    body = simple_body(list(range(16)), [1] * 16)
    missing = client.post("/v2/models/nope/infer", json=body)
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("Request for unknown model: 'nope'")
    version = client.post("/v2/models/simple/versions/9/infer", json=body)
    assert version.status_code == 404
    assert "'simple'" in version.json()["error"]
    assert client.get("/v2/models/nope").status_code == 404
    assert client.get("/v2/models/simple/versions/3").status_code == 404


def test_tritonclient_sees_errors(triton: httpclient.InferenceServerClient) -> None:
    tensor = httpclient.InferInput("INPUT0", [1, 16], "INT32")
    tensor.set_data_from_numpy(np.zeros((1, 16), dtype=np.int32), binary_data=False)
    with pytest.raises(InferenceServerException, match="INPUT1"):
        triton.infer("simple", [tensor])
    with pytest.raises(InferenceServerException, match="unknown model"):
        triton.infer("missing-model", [tensor])
