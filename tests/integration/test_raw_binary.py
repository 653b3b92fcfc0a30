"""Triton's raw binary request (``Inference-Header-Content-Length: 0``; PROTOCOL.md §2.6), sent with
httpx against a real server: the body is the raw bytes of the model's one input, its datatype and
shape come from the model's metadata, and every output comes back binary."""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving import serve

HEADER = "Inference-Header-Content-Length"

ECHO = """
import numpy as np
import oipserve


class Echo(oipserve.Model):
    def infer(self, requests):
        out = []
        for r in requests:
            (name, value), = r.inputs.items()
            out.append(oipserve.InferResponse({"OUT": value}))
        return out
"""


def _model(root: Path, name: str, config: str) -> None:
    folder = root / name
    (folder / "1").mkdir(parents=True)
    (folder / "1" / "model.py").write_text(ECHO)
    (folder / "model.toml").write_text(config)


def _config(datatype: str, dims: str, max_batch_size: int) -> str:
    return f"""
backend = "python"
max_batch_size = {max_batch_size}
[[input]]
name = "IN"
data_type = "{datatype}"
dims = {dims}
[[output]]
name = "OUT"
data_type = "{datatype}"
dims = {dims}
"""


@pytest.fixture(scope="module")
def client(
    examples_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("raw-repo")
    for name in ("iris", "simple"):
        shutil.copytree(examples_repository / name, root / name)
    _model(root, "vector", _config("TYPE_INT16", "[-1]", 0))
    _model(root, "rows", _config("TYPE_FP32", "[2, -1]", 8))
    _model(root, "text", _config("TYPE_STRING", "[1]", 4))
    _model(root, "words", _config("TYPE_STRING", "[-1]", 0))
    _model(root, "matrix", _config("TYPE_FP32", "[-1, -1]", 0))
    with (
        serve(root, tmp_dir=tmp_path_factory.mktemp("raw-logs")) as server,
        httpx.Client(base_url=server.base_url, timeout=30.0) as c,
    ):
        yield c


def raw(client: httpx.Client, model: str, body: bytes) -> httpx.Response:
    return client.post(
        f"/v2/models/{model}/infer",
        content=body,
        headers={HEADER: "0", "Content-Type": "application/octet-stream"},
    )


def outputs(reply: httpx.Response) -> tuple[dict[str, object], dict[str, bytes]]:
    """The JSON header and each output's bytes (the binary framing of the response)."""
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/octet-stream"
    length = int(reply.headers[HEADER])
    header = json.loads(reply.content[:length])
    offset, chunks = length, {}
    for output in header["outputs"]:
        size = output["parameters"]["binary_data_size"]
        chunks[output["name"]] = reply.content[offset : offset + size]
        offset += size
    assert offset == len(reply.content)
    return header, chunks


def test_iris_batch_of_one(client: httpx.Client) -> None:
    row = np.array([5.1, 3.5, 1.4, 0.2], dtype=np.float32)
    header, chunks = outputs(raw(client, "iris", row.tobytes()))
    shapes = {o["name"]: o["shape"] for o in header["outputs"]}  # type: ignore[attr-defined]
    assert shapes["predict"] == [1]  # batch 1; every output binary (outputs() checks)
    assert np.frombuffer(chunks["predict"], dtype=np.int64).tolist() == [0]
    # the same answer as the JSON request
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": row.tolist()}
    body = {"inputs": [tensor]}
    reply = client.post("/v2/models/iris/infer", json=body).json()
    assert reply["outputs"][0]["data"] == [0]


def test_variable_dimension_from_the_byte_count(client: httpx.Client) -> None:
    data = np.arange(7, dtype=np.int16)
    header, chunks = outputs(raw(client, "vector", data.tobytes()))
    assert header["outputs"] == [  # no batch dimension: max_batch_size 0
        {"name": "OUT", "datatype": "INT16", "shape": [7], "parameters": {"binary_data_size": 14}}
    ]
    assert np.array_equal(np.frombuffer(chunks["OUT"], dtype=np.int16), data)
    data = np.arange(6, dtype=np.float32)
    header, chunks = outputs(raw(client, "rows", data.tobytes()))
    assert header["outputs"][0]["shape"] == [1, 2, 3]  # type: ignore[index]
    assert np.array_equal(np.frombuffer(chunks["OUT"], dtype=np.float32), data)


def test_bytes_input_is_one_element(client: httpx.Client) -> None:
    payload = b"\x00\xffnot utf-8 \xc3"
    header, chunks = outputs(raw(client, "text", payload))
    assert header["outputs"][0]["shape"] == [1, 1]  # type: ignore[index]
    assert chunks["OUT"] == struct.pack("<I", len(payload)) + payload


def test_compressed_raw_body(client: httpx.Client) -> None:
    data = np.arange(100, dtype=np.int16)
    reply = client.post(
        "/v2/models/vector/infer",
        content=gzip.compress(data.tobytes()),
        headers={HEADER: "0", "Content-Encoding": "gzip"},
    )
    _, chunks = outputs(reply)
    assert np.array_equal(np.frombuffer(chunks["OUT"], dtype=np.int16), data)


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        ("simple", b"\0" * 64, "must only have 1 input (found 1) to be deduced but got 2 inputs"),
        ("iris", b"\0" * 15, "15 bytes of data do not match shape [1, 4] of FP32"),
        ("iris", b"\0" * 32, "32 bytes of data do not match shape [1, 4] of FP32"),
        ("vector", b"\0" * 7, "7 bytes do not make whole elements"),
        ("matrix", b"\0" * 16, "more than one variable-sized dimension"),
        ("words", b"abc", "must have input shape [1]"),
    ],
)
def test_refusals(client: httpx.Client, model: str, body: bytes, message: str) -> None:
    reply = raw(client, model, body)
    assert reply.status_code == 400
    assert message in reply.json()["error"]
    # the connection and the model keep serving
    outputs(raw(client, "vector", b"\1\0"))


def test_unknown_model_is_404(client: httpx.Client) -> None:
    reply = raw(client, "nothing", b"\0" * 4)
    assert reply.status_code == 404
    assert "Request for unknown model: 'nothing'" in reply.json()["error"]


def test_header_longer_than_the_body_is_still_400(client: httpx.Client) -> None:
    reply = client.post("/v2/models/vector/infer", content=b"\0\0", headers={HEADER: "3"})
    assert reply.status_code == 400
    assert "inference header size should be in range (0, 2)" in reply.json()["error"]
