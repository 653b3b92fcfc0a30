"""Zero-config tabular models through a real server: any numeric input datatype, every output.

Each model folder holds only its model file (plus one with a ``model.toml`` that declares its
input, which stays strict). Requests go through httpx (JSON) and tritonclient (binary over HTTP,
and gRPC), as users send them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import ml_dtypes
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.serving import RunningServer, serve

pytest.importorskip("sklearn")

FEATURES = 4
#: every datatype a zero-config tabular model takes, with a numpy dtype to send it as
ACCEPTED = {
    "BOOL": np.bool_,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
STRICT_CONFIG = """
backend = "sklearn"
[[input]]
name = "input-0"
data_type = "TYPE_FP32"
dims = [-1, 4]
"""


@dataclass
class ZeroConfig:
    server: RunningServer
    models: dict[str, Any]


def _training_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    features = rng.integers(0, 10, size=(90, FEATURES)).astype(np.float64)
    labels = (features[:, 0] + features[:, 1] > 9).astype(np.int64) + (features[:, 2] > 6)
    return features, labels


@pytest.fixture(scope="module")
def zero_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZeroConfig]:
    import joblib
    from sklearn.linear_model import LinearRegression, LogisticRegression

    root = tmp_path_factory.mktemp("zero-config")
    features, labels = _training_data()
    models: dict[str, Any] = {
        "sk-classifier": LogisticRegression(max_iter=1000).fit(features, labels),
        "sk-regressor": LinearRegression().fit(features, labels * 2.5),
    }
    for name in ("sk-classifier", "sk-regressor", "sk-strict"):
        (root / name).mkdir()
    joblib.dump(models["sk-classifier"], root / "sk-classifier" / "model.joblib")
    joblib.dump(models["sk-regressor"], root / "sk-regressor" / "model.pkl")
    joblib.dump(models["sk-classifier"], root / "sk-strict" / "model.joblib")
    (root / "sk-strict" / "model.toml").write_text(STRICT_CONFIG)
    try:
        import xgboost

        xgb = xgboost.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1)
        models["xgb-classifier"] = xgb.fit(features.astype(np.float32), labels)
        (root / "xgb-classifier").mkdir()
        xgb.save_model(root / "xgb-classifier" / "model.ubj")
    except ImportError:
        pass
    try:
        import lightgbm

        lgb = lightgbm.LGBMClassifier(n_estimators=8, num_leaves=7, verbose=-1, n_jobs=1)
        models["lgb-classifier"] = lgb.fit(features, labels)
        (root / "lgb-classifier").mkdir()
        lgb.booster_.save_model(root / "lgb-classifier" / "model.txt")
    except ImportError:
        pass
    with serve(root, tmp_dir=tmp_path_factory.mktemp("zero-config-server")) as server:
        yield ZeroConfig(server, models)


@pytest.fixture
def client(zero_config: ZeroConfig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=zero_config.server.base_url, timeout=30) as c:
        yield c


@pytest.fixture
def triton(zero_config: ZeroConfig) -> Iterator[httpclient.InferenceServerClient]:
    c = httpclient.InferenceServerClient(zero_config.server.http_url)
    yield c
    c.close()


@pytest.fixture
def triton_grpc(zero_config: ZeroConfig) -> Iterator[grpcclient.InferenceServerClient]:
    c = grpcclient.InferenceServerClient(zero_config.server.grpc_url)
    yield c
    c.close()


def rows(dtype: Any, count: int = 6) -> np.ndarray:
    values = np.random.default_rng(3).integers(0, 10, size=(count, FEATURES))
    if dtype is np.bool_:
        return values > 4
    return values.astype(dtype)


def binary_infer(
    client: httpclient.InferenceServerClient,
    model: str,
    array: np.ndarray,
    datatype: str,
    outputs: tuple[str, ...] = (),
) -> httpclient.InferResult:
    tensor = httpclient.InferInput("input-0", list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=True)
    requested = [httpclient.InferRequestedOutput(name) for name in outputs] or None
    return client.infer(model, [tensor], outputs=requested)


def model(zero_config: ZeroConfig, name: str) -> Any:
    if name not in zero_config.models:
        pytest.skip(f"{name}: its framework is not installed")
    return zero_config.models[name]


# -- fix 4: any numeric input datatype ----------------------------------------------------------


def test_the_readme_fp32_request_works_on_a_zero_config_sklearn_model(
    client: httpx.Client, zero_config: ZeroConfig
) -> None:
    body = {
        "inputs": [
            {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
        ],
        "outputs": [{"name": "predict"}],
    }
    response = client.post("/v2/models/sk-classifier/infer", json=body)
    assert response.status_code == 200, response.text
    expected = zero_config.models["sk-classifier"].predict([[5.1, 3.5, 1.4, 0.2]])
    assert response.json()["outputs"][0]["data"] == expected.tolist()


def test_metadata_keeps_the_native_datatype(triton: httpclient.InferenceServerClient) -> None:
    assert triton.get_model_metadata("sk-classifier")["inputs"] == [
        {"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}
    ]


@pytest.mark.parametrize("datatype", sorted(ACCEPTED))
def test_sklearn_takes_every_numeric_datatype(
    triton: httpclient.InferenceServerClient, zero_config: ZeroConfig, datatype: str
) -> None:
    array = rows(ACCEPTED[datatype])
    result = binary_infer(triton, "sk-classifier", array, datatype, ("predict", "predict_proba"))
    classifier = zero_config.models["sk-classifier"]
    as_float = array.astype(np.float64)  # what scikit-learn's check_array makes of it
    np.testing.assert_array_equal(result.as_numpy("predict"), classifier.predict(as_float))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), classifier.predict_proba(as_float))
    regression = binary_infer(triton, "sk-regressor", array, datatype).as_numpy("predict")
    np.testing.assert_allclose(regression, zero_config.models["sk-regressor"].predict(as_float))


@pytest.mark.parametrize("datatype", ["BOOL", "INT8", "UINT16", "INT32", "FP16", "FP64"])
def test_xgboost_and_lightgbm_convert_as_their_predict_does(
    triton: httpclient.InferenceServerClient, zero_config: ZeroConfig, datatype: str
) -> None:
    array = rows(ACCEPTED[datatype])
    for name, dtype in (("xgb-classifier", np.float32), ("lgb-classifier", np.float64)):
        estimator = model(zero_config, name)
        result = binary_infer(triton, name, array, datatype, ("predict", "predict_proba"))
        np.testing.assert_allclose(
            result.as_numpy("predict_proba"),
            estimator.predict_proba(array.astype(dtype)),
            rtol=1e-6,
        )


@pytest.mark.parametrize(
    ("datatype", "data"), [("BYTES", ["a", "b", "c", "d"]), ("BF16", [1.0, 2.0, 3.0, 4.0])]
)
def test_bytes_and_bf16_are_refused_saying_what_is_accepted(
    client: httpx.Client, datatype: str, data: list[Any]
) -> None:
    body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": datatype, "data": data}]}
    response = client.post("/v2/models/sk-classifier/infer", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert f"input 'input-0' has datatype {datatype}" in error
    assert "expects FP64 (or BOOL, " in error and "FP32, converted to FP64)" in error
    assert client.post(
        "/v2/models/sk-classifier/infer",
        json={"inputs": [{**body["inputs"][0], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
    ).is_success


def test_bf16_is_refused_over_grpc_as_invalid_argument(
    triton_grpc: grpcclient.InferenceServerClient,
) -> None:
    tensor = grpcclient.InferInput("input-0", [1, 4], "BF16")
    tensor.set_data_from_numpy(np.ones((1, 4), dtype=ml_dtypes.bfloat16))
    with pytest.raises(InferenceServerException) as info:
        triton_grpc.infer("sk-classifier", [tensor])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "has datatype BF16" in str(info.value.message())


def test_an_integer_fp64_cannot_hold_exactly_is_refused(
    triton: httpclient.InferenceServerClient, zero_config: ZeroConfig
) -> None:
    edge = np.array([[2**53, -(2**53), 0, 1]], dtype=np.int64)
    result = binary_infer(triton, "sk-classifier", edge, "INT64", ("predict",))
    expected = zero_config.models["sk-classifier"].predict(edge.astype(np.float64))
    np.testing.assert_array_equal(result.as_numpy("predict"), expected)
    for value in (2**53 + 1, -(2**53) - 1):
        beyond = np.array([[value, 0, 0, 1]], dtype=np.int64)
        with pytest.raises(InferenceServerException) as info:
            binary_infer(triton, "sk-classifier", beyond, "INT64")
        assert info.value.status() == "400"
        message = str(info.value.message())
        assert f"input 'input-0' holds {value}, which FP64 cannot hold exactly" in message
    huge = np.array([[2**64 - 1, 0, 0, 1]], dtype=np.uint64)
    with pytest.raises(InferenceServerException, match="cannot hold exactly"):
        binary_infer(triton, "sk-classifier", huge, "UINT64")
    # the next request is answered normally
    binary_infer(triton, "sk-classifier", edge, "INT64")


def test_an_integer_fp32_cannot_hold_exactly_is_refused_by_xgboost(
    triton: httpclient.InferenceServerClient, zero_config: ZeroConfig
) -> None:
    model(zero_config, "xgb-classifier")
    binary_infer(triton, "xgb-classifier", np.array([[2**24, 0, 0, 1]], np.int32), "INT32")
    beyond = np.array([[2**24 + 1, 0, 0, 1]], dtype=np.int32)
    with pytest.raises(InferenceServerException) as info:
        binary_infer(triton, "xgb-classifier", beyond, "INT32")
    assert info.value.status() == "400"
    assert "which FP32 cannot hold exactly" in str(info.value.message())


def test_a_datatype_declared_in_model_toml_stays_strict(client: httpx.Client) -> None:
    base = {"name": "input-0", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}
    ok = client.post("/v2/models/sk-strict/infer", json={"inputs": [{**base, "datatype": "FP32"}]})
    assert ok.status_code == 200, ok.text
    refused = client.post(
        "/v2/models/sk-strict/infer", json={"inputs": [{**base, "datatype": "FP64"}]}
    )
    assert refused.status_code == 400
    assert refused.json()["error"].endswith("expects FP32")


# -- fix 5: no outputs named, every output of the metadata ---------------------------------------


def test_a_zero_config_classifier_answers_every_output(
    client: httpx.Client,
    triton: httpclient.InferenceServerClient,
    triton_grpc: grpcclient.InferenceServerClient,
    zero_config: ZeroConfig,
) -> None:
    metadata = client.get("/v2/models/sk-classifier").json()
    assert [o["name"] for o in metadata["outputs"]] == ["predict", "predict_proba"]
    body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [1] * 8}]}
    outputs = client.post("/v2/models/sk-classifier/infer", json=body).json()["outputs"]
    assert [o["name"] for o in outputs] == ["predict", "predict_proba"]
    assert outputs[1]["shape"] == [2, 3]
    array = rows(np.float64, 3)
    result = binary_infer(triton, "sk-classifier", array, "FP64")
    assert [o["name"] for o in result.get_response()["outputs"]] == ["predict", "predict_proba"]
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"),
        zero_config.models["sk-classifier"].predict_proba(array),
    )
    tensor = grpcclient.InferInput("input-0", [3, 4], "FP64")
    tensor.set_data_from_numpy(array)
    response = triton_grpc.infer("sk-classifier", [tensor]).get_response()
    assert [o.name for o in response.outputs] == ["predict", "predict_proba"]
    for name in ("xgb-classifier", "lgb-classifier"):
        if name in zero_config.models:
            result = binary_infer(triton, name, array, "FP64")
            names = [o["name"] for o in result.get_response()["outputs"]]
            assert names == ["predict", "predict_proba"]


def test_a_regressor_answers_its_one_output(client: httpx.Client) -> None:
    body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "INT32", "data": [1] * 4}]}
    outputs = client.post("/v2/models/sk-regressor/infer", json=body).json()["outputs"]
    assert [o["name"] for o in outputs] == ["predict"]


def test_classification_of_a_classifiers_probabilities(
    client: httpx.Client, zero_config: ZeroConfig
) -> None:
    """A zero-config model has no batch dimension (``max_batch_size`` 0), so classification
    ranks the whole output: one row at a time, its top class is the prediction."""
    for row in ([9.0, 9.0, 9.0, 1.0], [0.0, 1.0, 2.0, 3.0]):
        body = {
            "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": row}],
            "outputs": [
                {"name": "predict_proba", "parameters": {"classification": 1}},
                {"name": "predict"},
            ],
        }
        response = client.post("/v2/models/sk-classifier/infer", json=body)
        assert response.status_code == 200, response.text
        proba, predict = response.json()["outputs"]
        assert proba["datatype"] == "BYTES"
        assert proba["shape"] == [1]
        expected = zero_config.models["sk-classifier"].predict(np.array([row])).tolist()
        assert [int(v.split(":")[1]) for v in proba["data"]] == predict["data"] == expected


# -- the repository root is itself one model's folder (KServe's /mnt/models) --------------------


def test_a_root_holding_a_model_file_serves_as_that_one_model(
    tmp_path_factory: pytest.TempPathFactory, zero_config: ZeroConfig
) -> None:
    import joblib

    root = tmp_path_factory.mktemp("mnt") / "models"
    root.mkdir()
    joblib.dump(zero_config.models["sk-classifier"], root / "model.joblib")
    log_dir = tmp_path_factory.mktemp("single-model-server")
    with serve(root, tmp_dir=log_dir) as server, httpx.Client(base_url=server.base_url) as client:
        index = client.post("/v2/repository/index").json()
        assert index == [{"name": "models", "version": "1", "state": "READY"}]
        body = {
            "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1] * 4}]
        }
        response = client.post("/v2/models/models/infer", json=body)
        assert response.status_code == 200, response.text
        names = [o["name"] for o in response.json()["outputs"]]
        assert names == ["predict", "predict_proba"]
        reload = client.post("/v2/repository/models/models/load")
        assert reload.status_code == 200, reload.text
        assert client.post("/v2/repository/models/other/load").status_code == 400
