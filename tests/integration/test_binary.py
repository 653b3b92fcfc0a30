"""The binary tensor data extension, HTTP compression and classification against a real server.

Real clients first (``tritonclient.http`` with its defaults: binary in and out), then hand-built
framing through httpx / http.client, then every bad input: each answered 400 with a message saying
what was wrong, on a keep-alive connection that keeps serving.
"""

from __future__ import annotations

import gzip
import http.client
import json
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ml_dtypes
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.serving import EXAMPLES, RunningServer, serve

HEADER = "Inference-Header-Content-Length"

CLASSIFIER_CONFIG = """
backend = "python"
max_batch_size = 8

[[input]]
name = "INPUT0"
data_type = "TYPE_FP32"
dims = [4]

[[output]]
name = "SCORES"
data_type = "TYPE_FP32"
dims = [4]
label_filename = "labels.txt"

[[output]]
name = "COUNTS"
data_type = "TYPE_INT32"
dims = [4]
"""

CLASSIFIER_MODEL = """
import numpy as np
import oipserve


class Classifier(oipserve.Model):
    def infer(self, requests):
        return [
            oipserve.InferResponse(
                {
                    "SCORES": r.inputs["INPUT0"],
                    "COUNTS": (r.inputs["INPUT0"] * 10).astype(np.int32),
                }
            )
            for r in requests
        ]
"""

LABELS = "cat\ndog\nbird\n"  # one label short: index 3 has none


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_server(
    examples_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """identity + a labelled classifier, with a 1 MB request limit (for the gzip bomb)."""
    root = tmp_path_factory.mktemp("binary-repo")
    shutil.copytree(EXAMPLES / "identity", root / "identity")
    model = root / "classifier"
    (model / "1").mkdir(parents=True)
    (model / "model.toml").write_text(CLASSIFIER_CONFIG)
    (model / "labels.txt").write_text(LABELS)
    (model / "1" / "model.py").write_text(CLASSIFIER_MODEL)
    with serve(
        root, "--http-max-request-mb", "1", tmp_dir=tmp_path_factory.mktemp("binary-log")
    ) as running:
        yield running


@pytest.fixture
def triton(server: RunningServer) -> Iterator[httpclient.InferenceServerClient]:
    c = httpclient.InferenceServerClient(server.http_url)
    yield c
    c.close()


@pytest.fixture
def small_triton(small_server: RunningServer) -> Iterator[httpclient.InferenceServerClient]:
    c = httpclient.InferenceServerClient(small_server.http_url)
    yield c
    c.close()


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as c:
        yield c


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def split(self) -> tuple[dict[str, Any], bytes]:
        """The JSON header and the binary bytes after it."""
        length = self.headers.get("inference-header-content-length")
        if length is None:
            return json.loads(self.body), b""
        return json.loads(self.body[: int(length)]), self.body[int(length) :]

    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


class Connection:
    """One keep-alive HTTP/1.1 connection (headers sent exactly as given, raw body back)."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self._conn.connect()
        self._socket = self._conn.sock

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Reply:
        self._conn.request("POST", path, body=body, headers=headers or {})
        response = self._conn.getresponse()
        data = response.read()
        assert self._conn.sock is self._socket, "the server closed the keep-alive connection"
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def close(self) -> None:
        self._conn.close()


@pytest.fixture
def conn(server: RunningServer) -> Iterator[Connection]:
    c = Connection(server.http_port)
    yield c
    c.close()


@pytest.fixture
def small_conn(small_server: RunningServer) -> Iterator[Connection]:
    c = Connection(small_server.http_port)
    yield c
    c.close()


def frame(header: dict[str, Any], *chunks: bytes) -> tuple[bytes, int]:
    head = json.dumps(header).encode()
    return head + b"".join(chunks), len(head)


def binary_input(name: str, datatype: str, shape: list[int], size: int) -> dict[str, Any]:
    return {
        "name": name,
        "datatype": datatype,
        "shape": shape,
        "parameters": {"binary_data_size": size},
    }


def bytes_raw(*items: bytes) -> bytes:
    return b"".join(len(i).to_bytes(4, "little") + i for i in items)


def assert_identity_still_works(conn: Connection) -> None:
    a = np.arange(4, dtype=np.float32)
    body, length = frame(
        {"inputs": [binary_input("INPUT0", "FP32", [4], 16)], "parameters": {}}, a.tobytes()
    )
    reply = conn.post("/v2/models/identity/infer", body, {HEADER: str(length)})
    assert reply.status == 200, reply.body
    head, _ = reply.split()
    assert head["outputs"][0]["data"] == [0.0, 1.0, 2.0, 3.0]


# -- tritonclient.http with its defaults: binary in and out -------------------------------------

ALL_TYPES: list[tuple[str, np.ndarray]] = [
    ("BOOL", np.array([[True, False, True]])),
    ("UINT8", np.array([[0, 7, 255]], dtype=np.uint8)),
    ("UINT16", np.array([[0, 7, 65535]], dtype=np.uint16)),
    ("UINT32", np.array([[0, 7, 2**32 - 1]], dtype=np.uint32)),
    ("UINT64", np.array([[0, 7, 2**64 - 1]], dtype=np.uint64)),
    ("INT8", np.array([[-128, 0, 127]], dtype=np.int8)),
    ("INT16", np.array([[-(2**15), 0, 2**15 - 1]], dtype=np.int16)),
    ("INT32", np.array([[-(2**31), 0, 2**31 - 1]], dtype=np.int32)),
    ("INT64", np.array([[-(2**63), 0, 2**63 - 1]], dtype=np.int64)),
    ("FP16", np.array([[0.5, -1.25, 65504.0]], dtype=np.float16)),
    ("FP32", np.array([[0.5, -1.25, 3.0e38]], dtype=np.float32)),
    ("FP64", np.array([[0.1, -1.25, 1e300]], dtype=np.float64)),
    # tritonclient (since 2.73) takes and returns BF16 as ml_dtypes.bfloat16 arrays
    ("BF16", np.array([[1.0, -2.5, 3.140625]], dtype=ml_dtypes.bfloat16)),
    ("BYTES", np.array([[b"a", b"", b"\xff\x00not utf-8"]], dtype=np.object_)),
]


@pytest.mark.parametrize(("datatype", "array"), ALL_TYPES, ids=[t for t, _ in ALL_TYPES])
def test_tritonclient_binary_every_datatype(
    triton: httpclient.InferenceServerClient, datatype: str, array: np.ndarray
) -> None:
    tensor = httpclient.InferInput("INPUT0", list(array.shape), datatype)
    tensor.set_data_from_numpy(array)  # binary by default
    result = triton.infer("identity", [tensor])  # outputs omitted: binary_data_output
    output = result.get_output("OUTPUT0")
    assert output["datatype"] == datatype
    assert "binary_data_size" in output["parameters"]
    assert "data" not in output
    got = result.as_numpy("OUTPUT0")
    assert got.shape == array.shape
    if datatype == "BYTES":
        assert got.tolist() == array.tolist()
    else:
        assert got.dtype == array.dtype
        np.testing.assert_array_equal(got, array)


def test_tritonclient_binary_simple_and_big_tensor(
    triton: httpclient.InferenceServerClient,
) -> None:
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.full((1, 16), 3, dtype=np.int32)
    inputs = [
        httpclient.InferInput("INPUT0", [1, 16], "INT32"),
        httpclient.InferInput("INPUT1", [1, 16], "INT32"),
    ]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    result = triton.infer("simple", inputs)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)

    big = np.random.default_rng(0).standard_normal((1000, 20)).astype(np.float32)
    tensor = httpclient.InferInput("INPUT0", [1000, 20], "FP32")
    tensor.set_data_from_numpy(big)
    np.testing.assert_array_equal(triton.infer("identity", [tensor]).as_numpy("OUTPUT0"), big)


def test_tritonclient_mixed_json_and_binary(triton: httpclient.InferenceServerClient) -> None:
    a = np.array([[1.5, 2.5]], dtype=np.float32)
    b = np.array([[b"x", b"yz"]], dtype=np.object_)
    c = np.array([7, 8, 9], dtype=np.int64)
    inputs = [
        httpclient.InferInput("INPUT0", [1, 2], "FP32"),
        httpclient.InferInput("INPUT1", [1, 2], "BYTES"),
        httpclient.InferInput("INPUT2", [3], "INT64"),
    ]
    inputs[0].set_data_from_numpy(a, binary_data=False)
    inputs[1].set_data_from_numpy(b, binary_data=True)
    inputs[2].set_data_from_numpy(c, binary_data=False)
    outputs = [
        httpclient.InferRequestedOutput("OUTPUT2", binary_data=True),
        httpclient.InferRequestedOutput("OUTPUT0", binary_data=False),
        httpclient.InferRequestedOutput("OUTPUT1", binary_data=True),
    ]
    result = triton.infer("identity", inputs, outputs=outputs)
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["OUTPUT2", "OUTPUT0", "OUTPUT1"]
    assert response["outputs"][1]["data"] == [1.5, 2.5]
    assert "parameters" not in response["outputs"][1]  # JSON outputs carry none (pitfall 15)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a)
    assert result.as_numpy("OUTPUT1").tolist() == b.tolist()
    np.testing.assert_array_equal(result.as_numpy("OUTPUT2"), c)


def test_tritonclient_zero_size_tensors(triton: httpclient.InferenceServerClient) -> None:
    empty = np.zeros((0, 3), dtype=np.float32)
    full = np.arange(3, dtype=np.int16)
    inputs = [
        httpclient.InferInput("INPUT0", [0, 3], "FP32"),
        httpclient.InferInput("INPUT1", [3], "INT16"),
    ]
    inputs[0].set_data_from_numpy(empty)
    inputs[1].set_data_from_numpy(full)
    result = triton.infer("identity", inputs)
    assert result.get_output("OUTPUT0")["parameters"] == {"binary_data_size": 0}
    assert result.as_numpy("OUTPUT0").shape == (0, 3)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), full)


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_compression(
    triton: httpclient.InferenceServerClient, algorithm: str, binary: bool
) -> None:
    a = np.arange(2000, dtype=np.float32).reshape(100, 20)
    tensor = httpclient.InferInput("INPUT0", [100, 20], "FP32")
    tensor.set_data_from_numpy(a, binary_data=binary)
    output = httpclient.InferRequestedOutput("OUTPUT0", binary_data=binary)
    result = triton.infer(
        "identity",
        [tensor],
        outputs=[output],
        request_compression_algorithm=algorithm,
        response_compression_algorithm=algorithm,
    )
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a)


def test_tritonclient_sees_binary_errors(triton: httpclient.InferenceServerClient) -> None:
    tensor = httpclient.InferInput("INPUT0", [2], "BOOL")
    tensor.set_data_from_numpy(np.array([True, False]))
    output = httpclient.InferRequestedOutput("OUTPUT0", class_count=1)
    with pytest.raises(InferenceServerException, match="classification does not support"):
        triton.infer("identity", [tensor], outputs=[output])


# -- hand-built framing -------------------------------------------------------------------------


def test_server_metadata_lists_the_extensions(client: httpx.Client) -> None:
    extensions = client.get("/v2").json()["extensions"]
    assert "binary_tensor_data" in extensions
    assert "classification" in extensions


def test_binary_data_output_request_wide_vs_per_output(conn: Connection) -> None:
    a = np.arange(16, dtype=np.int32)
    b = np.ones(16, dtype=np.int32)
    inputs = [
        binary_input("INPUT0", "INT32", [1, 16], 64),
        binary_input("INPUT1", "INT32", [1, 16], 64),
    ]
    chunks = (a.tobytes(), b.tobytes())
    body, length = frame(
        {
            "inputs": inputs,
            "parameters": {"binary_data_output": True},
            "outputs": [
                {"name": "OUTPUT1", "parameters": {"binary_data": False}},
                {"name": "OUTPUT0"},
            ],
        },
        *chunks,
    )
    reply = conn.post("/v2/models/simple/infer", body, {HEADER: str(length)})
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/octet-stream"
    head, rest = reply.split()
    assert [o["name"] for o in head["outputs"]] == ["OUTPUT1", "OUTPUT0"]
    assert head["outputs"][0]["data"] == (a - b).tolist()
    assert head["outputs"][1]["parameters"] == {"binary_data_size": 64}
    assert rest == (a + b).tobytes()

    # no request-wide flag: JSON unless the output asks
    body, length = frame(
        {"inputs": inputs, "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}]},
        *chunks,
    )
    reply = conn.post("/v2/models/simple/infer", body, {HEADER: str(length)})
    head, rest = reply.split()
    assert [o["name"] for o in head["outputs"]] == ["OUTPUT0"]
    assert rest == (a + b).tobytes()

    # everything JSON: a plain JSON response, no header
    body, length = frame({"inputs": inputs}, *chunks)
    reply = conn.post("/v2/models/simple/infer", body, {HEADER: str(length)})
    assert reply.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in reply.headers
    assert reply.json()["outputs"][0]["data"] == (a + b).tolist()


def test_output_order_is_chunk_order(conn: Connection) -> None:
    f = np.array([1.0, 2.0, 3.0], dtype=np.float64)
    i = np.array([-1, 1], dtype=np.int8)
    s = bytes_raw(b"hello", b"")
    body, length = frame(
        {
            "inputs": [
                binary_input("INPUT0", "FP64", [3], f.nbytes),
                binary_input("INPUT1", "INT8", [2], i.nbytes),
                binary_input("INPUT2", "BYTES", [2], len(s)),
            ],
            "outputs": [{"name": n} for n in ("OUTPUT2", "OUTPUT0", "OUTPUT1")],
            "parameters": {"binary_data_output": True},
        },
        f.tobytes(),
        i.tobytes(),
        s,
    )
    reply = conn.post("/v2/models/identity/infer", body, {HEADER: str(length)})
    assert reply.status == 200, reply.body
    head, rest = reply.split()
    assert int(reply.headers["inference-header-content-length"]) == len(
        json.dumps(head, separators=(",", ":"))
    )
    sizes = [o["parameters"]["binary_data_size"] for o in head["outputs"]]
    assert [o["name"] for o in head["outputs"]] == ["OUTPUT2", "OUTPUT0", "OUTPUT1"]
    assert sizes == [len(s), f.nbytes, i.nbytes]
    assert rest == s + f.tobytes() + i.tobytes()


def test_header_equal_to_whole_body_perf_analyzer_json_mode(conn: Connection) -> None:
    body = json.dumps(
        {"inputs": [{"name": "INPUT0", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]}]}
    ).encode()
    reply = conn.post(
        "/v2/models/identity/infer",
        body,
        {HEADER: str(len(body)), "Content-Type": "application/json"},
    )
    assert reply.status == 200
    assert reply.json()["outputs"][0]["data"] == [1.0, 2.0]


def test_lower_case_header_kserve_client(conn: Connection) -> None:
    a = np.arange(4, dtype=np.int64)
    body, length = frame(
        {
            "inputs": [binary_input("INPUT0", "INT64", [4], a.nbytes)],
            "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}],
        },
        a.tobytes(),
    )
    reply = conn.post(
        "/v2/models/identity/infer",
        body,
        {
            "inference-header-content-length": str(length),
            "content-type": "application/octet-stream",
        },
    )
    assert reply.status == 200
    assert reply.split()[1] == a.tobytes()


def test_zero_size_binary_in_and_out(conn: Connection) -> None:
    body, length = frame(
        {
            "inputs": [
                binary_input("INPUT0", "FP32", [0, 5], 0),
                binary_input("INPUT1", "BYTES", [0], 0),
                binary_input("INPUT2", "UINT8", [2], 2),
            ],
            "parameters": {"binary_data_output": True},
        },
        b"\x01\x02",
    )
    reply = conn.post("/v2/models/identity/infer", body, {HEADER: str(length)})
    assert reply.status == 200, reply.body
    head, rest = reply.split()
    shapes = {o["name"]: (o["shape"], o["parameters"]["binary_data_size"]) for o in head["outputs"]}
    assert shapes == {"OUTPUT0": ([0, 5], 0), "OUTPUT1": ([0], 0), "OUTPUT2": ([2], 2)}
    assert rest == b"\x01\x02"

    # only empty outputs: no bytes follow, so a JSON response without the header (as Triton)
    body, length = frame(
        {
            "inputs": [binary_input("INPUT0", "FP32", [0], 0)],
            "parameters": {"binary_data_output": True},
        }
    )
    reply = conn.post("/v2/models/identity/infer", body, {HEADER: str(length)})
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["outputs"][0]["parameters"] == {"binary_data_size": 0}


# -- compression --------------------------------------------------------------------------------


def _simple_binary_body() -> tuple[bytes, int, np.ndarray]:
    a = np.arange(16, dtype=np.int32)
    body, length = frame(
        {
            "inputs": [
                binary_input("INPUT0", "INT32", [1, 16], 64),
                binary_input("INPUT1", "INT32", [1, 16], 64),
            ],
            "parameters": {"binary_data_output": True},
        },
        a.tobytes(),
        a.tobytes(),
    )
    return body, length, a


@pytest.mark.parametrize(
    ("coding", "pack"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
def test_compressed_request_header_counts_inflated_bytes(
    conn: Connection, coding: str, pack: Any
) -> None:
    body, length, a = _simple_binary_body()
    packed = pack(body)
    assert len(packed) < length  # the header value is beyond the compressed body
    reply = conn.post(
        "/v2/models/simple/infer", packed, {HEADER: str(length), "Content-Encoding": coding}
    )
    assert reply.status == 200, reply.body
    head, rest = reply.split()
    assert [o["parameters"]["binary_data_size"] for o in head["outputs"]] == [64, 64]
    assert rest[:64] == (a + a).tobytes()
    assert "content-encoding" not in reply.headers  # not asked for


@pytest.mark.parametrize(
    ("accept", "coding"),
    [("gzip", "gzip"), ("deflate", "deflate"), ("br;q=1, deflate;q=0.5, gzip;q=0.4", "deflate")],
)
def test_compressed_response(conn: Connection, accept: str, coding: str) -> None:
    body, length, a = _simple_binary_body()
    reply = conn.post(
        "/v2/models/simple/infer", body, {HEADER: str(length), "Accept-Encoding": accept}
    )
    assert reply.status == 200
    assert reply.headers["content-encoding"] == coding
    assert reply.headers["content-type"] == "application/octet-stream"
    # the whole body is compressed; the header still counts the uncompressed JSON
    plain = gzip.decompress(reply.body) if coding == "gzip" else zlib.decompress(reply.body)
    json_length = int(reply.headers["inference-header-content-length"])
    head = json.loads(plain[:json_length])
    assert [o["parameters"]["binary_data_size"] for o in head["outputs"]] == [64, 64]
    assert plain[json_length:] == (a + a).tobytes() + (a - a).tobytes()


def test_identity_accept_encoding_is_not_compressed(conn: Connection) -> None:
    body, length, _ = _simple_binary_body()
    reply = conn.post(
        "/v2/models/simple/infer", body, {HEADER: str(length), "Accept-Encoding": "identity, gzip"}
    )
    assert reply.status == 200
    assert "content-encoding" not in reply.headers


@pytest.mark.parametrize("coding", ["br", "zstd", "compress"])
def test_unsupported_request_encoding_is_501(conn: Connection, coding: str) -> None:
    body, length, _ = _simple_binary_body()
    reply = conn.post(
        "/v2/models/simple/infer", body, {HEADER: str(length), "Content-Encoding": coding}
    )
    assert reply.status == 501
    assert reply.headers["accept-encoding"] == "gzip, deflate"
    assert coding in reply.json()["error"]
    assert_identity_still_works(conn)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_gzip_bomb_is_413(small_conn: Connection, coding: str) -> None:
    zeros = b"\0" * (10 << 20)
    bomb = gzip.compress(zeros) if coding == "gzip" else zlib.compress(zeros)
    assert len(bomb) < 64 * 1024  # far below the 1 MB limit as sent
    reply = small_conn.post(
        "/v2/models/identity/infer", bomb, {"Content-Encoding": coding, HEADER: "10"}
    )
    assert reply.status == 413
    assert "decompressed request body exceeds the limit" in reply.json()["error"]
    assert_identity_still_works(small_conn)


# -- classification -----------------------------------------------------------------------------


def test_classification_with_labels_batched(small_triton: httpclient.InferenceServerClient) -> None:
    scores = np.array([[0.1, 0.7, 0.2, 0.9], [0.4, 0.3, 0.2, 0.1]], dtype=np.float32)
    tensor = httpclient.InferInput("INPUT0", [2, 4], "FP32")
    tensor.set_data_from_numpy(scores)
    outputs = [
        httpclient.InferRequestedOutput("SCORES", binary_data=True, class_count=3),
        httpclient.InferRequestedOutput("COUNTS", binary_data=False, class_count=2),
    ]
    result = small_triton.infer("classifier", [tensor], outputs=outputs)
    output = result.get_output("SCORES")
    assert output["datatype"] == "BYTES"
    assert output["shape"] == [2, 3]
    assert result.as_numpy("SCORES").tolist() == [
        [b"0.900000:3", b"0.700000:1:dog", b"0.200000:2:bird"],  # index 3 has no label
        [b"0.400000:0:cat", b"0.300000:1:dog", b"0.200000:2:bird"],
    ]
    counts = result.get_output("COUNTS")
    assert counts["shape"] == [2, 2]
    assert counts["data"] == ["9:3", "7:1", "4:0", "3:1"]  # integers plain; no label file


def test_classification_without_labels_unbatched(triton: httpclient.InferenceServerClient) -> None:
    values = np.array([3.3, 10.0, -1.0], dtype=np.float64)
    tensor = httpclient.InferInput("INPUT0", [3], "FP64")
    tensor.set_data_from_numpy(values)
    output = httpclient.InferRequestedOutput("OUTPUT0", binary_data=False, class_count=5)
    result = triton.infer("identity", [tensor], outputs=[output])
    response = result.get_output("OUTPUT0")
    assert response == {
        "name": "OUTPUT0",
        "datatype": "BYTES",
        "shape": [3],  # k = min(K, elements)
        "data": ["10.000000:1", "3.300000:0", "-1.000000:2"],
    }


def test_classification_zero_returns_the_output(client: httpx.Client) -> None:
    body = {
        "inputs": [{"name": "INPUT0", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]}],
        "outputs": [{"name": "OUTPUT0", "parameters": {"classification": 0}}],
    }
    output = client.post("/v2/models/identity/infer", json=body).json()["outputs"][0]
    assert output["datatype"] == "FP32"
    assert output["data"] == [1.0, 2.0]


# -- bad input: 400 with a message, and the connection keeps serving ----------------------------

FP32_4 = np.arange(4, dtype=np.float32).tobytes()


def _case(
    header: dict[str, Any], *chunks: bytes, length: str | None = "auto"
) -> tuple[bytes, dict[str, str]]:
    body, json_length = frame(header, *chunks)
    if length is None:
        return body, {}
    return body, {HEADER: str(json_length) if length == "auto" else length}


def _one(entry: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"inputs": [entry], **extra}


def _classify(value: Any, datatype: str = "FP32") -> tuple[bytes, dict[str, str]]:
    data: Any = (
        [True, False] if datatype == "BOOL" else ["a", "b"] if datatype == "BYTES" else [1, 2]
    )
    return _case(
        {
            "inputs": [{"name": "INPUT0", "shape": [2], "datatype": datatype, "data": data}],
            "outputs": [{"name": "OUTPUT0", "parameters": {"classification": value}}],
        },
        length=None,
    )


BAD_CASES: dict[str, tuple[tuple[bytes, dict[str, str]], str]] = {
    "header beyond the body": (
        _case(_one(binary_input("INPUT0", "FP32", [4], 16)), FP32_4, length="99999"),
        "inference header size should be in range (0,",
    ),
    "negative header": (
        _case(_one(binary_input("INPUT0", "FP32", [4], 16)), FP32_4, length="-3"),
        "should be in range",
    ),
    "non-numeric header": (
        _case(_one(binary_input("INPUT0", "FP32", [4], 16)), FP32_4, length="12abc"),
        "Inference-Header-Content-Length must be an integer, got '12abc'",
    ),
    "header cuts the JSON": (
        _case(_one(binary_input("INPUT0", "FP32", [4], 16)), FP32_4, length="20"),
        "malformed JSON",
    ),
    "binary size not shape x datatype": (
        _case(_one(binary_input("INPUT0", "FP32", [4], 12)), FP32_4[:12]),
        "12 bytes of data do not match shape [4] of FP32 (16 bytes expected)",
    ),
    "binary size beyond the body": (
        _case(_one(binary_input("INPUT0", "FP32", [8], 32)), FP32_4),
        "unexpected size for input 'INPUT0', expecting 32 additional bytes",
    ),
    "trailing bytes no input claims": (
        _case(
            _one({"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]}),
            FP32_4,
        ),
        "unexpected additional input data for model 'identity'",
    ),
    "binary input without binary_data_size": (
        _case(_one({"name": "INPUT0", "shape": [4], "datatype": "FP32"}), FP32_4),
        "input 'INPUT0' has no 'data' (nor binary_data_size)",
    ),
    "data and binary for one input": (
        _case(
            _one({**binary_input("INPUT0", "FP32", [4], 16), "data": [1, 2, 3, 4]}),
            FP32_4,
        ),
        "input 'INPUT0' has both 'data' and binary_data_size",
    ),
    "binary without the header": (
        _case(_one(binary_input("INPUT0", "FP32", [4], 16)), FP32_4, length=None),
        "no Inference-Header-Content-Length header",
    ),
    "truncated BYTES element": (
        _case(_one(binary_input("INPUT0", "BYTES", [1], 8)), bytes_raw(b"hello")[:8]),
        "BYTES element 0 declares 5 bytes but only 4 remain",
    ),
    "BYTES count below the shape": (
        _case(_one(binary_input("INPUT0", "BYTES", [3], 13)), bytes_raw(b"hello", b"")),
        "BYTES data ends after 2 of 3 elements",
    ),
    "BYTES shape far beyond the data": (
        # under --max-tensor-elements (a shape over it is 413, tests/integration/test_limits.py)
        _case(_one(binary_input("INPUT0", "BYTES", [1 << 10, 1 << 10], 9)), bytes_raw(b"hello")),
        "9 bytes cannot hold 1048576 BYTES elements",
    ),
    "BYTES elements left over": (
        _case(_one(binary_input("INPUT0", "BYTES", [1], 10)), bytes_raw(b"hi", b"")),
        "4 bytes left over after 1 BYTES elements",
    ),
    "non-boolean binary_data": (
        _case(
            _one(
                binary_input("INPUT0", "FP32", [4], 16),
                outputs=[{"name": "OUTPUT0", "parameters": {"binary_data": "yes"}}],
            ),
            FP32_4,
        ),
        "'binary_data' must be a boolean",
    ),
    "classification on BOOL": (_classify(1, "BOOL"), "classification does not support"),
    "classification on BYTES": (_classify(1, "BYTES"), "datatype BYTES"),
    "classification negative": (_classify(-1), "must be a non-negative integer, got -1"),
    "classification non-integer": (_classify(1.5), "must be a non-negative integer, got 1.5"),
    "classification string": (_classify("2"), "must be a non-negative integer, got '2'"),
    "classification boolean": (_classify(True), "must be a non-negative integer, got True"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_binary_input(conn: Connection, case: str) -> None:
    (body, headers), message = BAD_CASES[case]
    reply = conn.post("/v2/models/identity/infer", body, headers)
    assert reply.status == 400, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert message in reply.json()["error"]
    assert_identity_still_works(conn)


@pytest.mark.parametrize(
    ("coding", "body", "message"),
    [
        ("gzip", b"\x1f\x8b\x08\x00 definitely not gzip", "corrupt gzip request body"),
        ("gzip", gzip.compress(b'{"inputs": []}')[:-6], "corrupt gzip request body"),
        ("deflate", b"\x78\x9c\xff\xff\xff", "corrupt deflate request body"),
        ("gzip", gzip.compress(b'{"inputs": []}') + b"junk", "trailing data"),
    ],
)
def test_corrupt_compressed_body(conn: Connection, coding: str, body: bytes, message: str) -> None:
    reply = conn.post("/v2/models/identity/infer", body, {"Content-Encoding": coding})
    assert reply.status == 400
    assert message in reply.json()["error"]
    assert_identity_still_works(conn)


def test_header_zero_is_raw_binary_mode(conn: Connection) -> None:
    """Raw binary mode (test_raw_binary.py): identity declares no inputs, so nothing to deduce."""
    reply = conn.post("/v2/models/identity/infer", FP32_4, {HEADER: "0"})
    assert reply.status == 400
    assert "Raw request must only have 1 input" in reply.json()["error"]
    assert_identity_still_works(conn)
