"""The framework runtimes against a real server, each model in a folder without a config.

Every model is built here at test time on a few dozen random rows (nothing is downloaded). One
server serves them all, together with corrupt model files that must fail alone. Each test skips
when its framework is not installed, so the suite passes wherever an extra is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from oipserve.errors import InvalidArgument, ModelLoadError
from oipserve.model import InferRequest, InferResponse, LoadContext
from oipserve.repository.config import ModelConfig, parse_toml
from oipserve.runtimes import BUILTIN, import_framework
from tests.serving import RunningServer, serve

ROWS = 40
FEATURES = 4


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``ROWS`` x ``FEATURES`` floats and three classes that depend on them."""
    rng = np.random.RandomState(seed)
    features = rng.rand(ROWS, FEATURES)
    labels = (features[:, 0] * 2 + features[:, 1] > 1.5).astype(np.int64) + (
        features[:, 2] > 0.5
    ).astype(np.int64)
    return features, labels


def has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


# -- model builders: each writes one model folder and returns the framework's own model ---------


def build_xgboost(root: Path) -> dict[str, Any]:
    import xgboost

    features, labels = data()
    x = features.astype(np.float32)
    multi = xgboost.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1).fit(x, labels)
    binary = xgboost.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1).fit(x, labels > 0)
    regressor = xgboost.XGBRegressor(n_estimators=4, max_depth=2, n_jobs=1).fit(x, features[:, 3])
    for name, model, filename in (
        ("xgb-multi", multi, "model.ubj"),
        ("xgb-binary", binary, "model.json"),
        ("xgb-regressor", regressor, "model.ubj"),
    ):
        (root / name).mkdir()
        model.save_model(root / name / filename)
    # .bst: the same bytes under the other name XGBoost users keep (saving to .bst warns)
    (root / "xgb-regressor" / "model.ubj").rename(root / "xgb-regressor" / "model.bst")
    (root / "bad-xgboost").mkdir()
    (root / "bad-xgboost" / "model.ubj").write_bytes(
        (root / "xgb-multi" / "model.ubj").read_bytes()[:64]
    )
    return {"xgb-multi": multi, "xgb-binary": binary, "xgb-regressor": regressor}


def build_lightgbm(root: Path) -> dict[str, Any]:
    import lightgbm

    features, labels = data()
    common: dict[str, Any] = {"n_estimators": 4, "num_leaves": 4, "min_child_samples": 3}
    common.update(verbose=-1, n_jobs=1)
    multi = lightgbm.LGBMClassifier(**common).fit(features, labels)
    binary = lightgbm.LGBMClassifier(**common).fit(features, (labels > 0).astype(np.int64))
    regressor = lightgbm.LGBMRegressor(**common).fit(features, features[:, 3])
    for name, model in (("lgb-multi", multi), ("lgb-binary", binary), ("lgb-regressor", regressor)):
        (root / name).mkdir()
        model.booster_.save_model(root / name / "model.txt")
    (root / "bad-lightgbm").mkdir()
    text = (root / "lgb-multi" / "model.txt").read_text()
    (root / "bad-lightgbm" / "model.txt").write_text(text[: len(text) // 3])
    return {"lgb-multi": multi, "lgb-binary": binary, "lgb-regressor": regressor}


def build_onnx(root: Path) -> dict[str, Any]:
    """A linear scorer with an arg-max label, written with the onnx helper API."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.RandomState(1)
    weights = rng.rand(FEATURES, 3).astype(np.float32)
    bias = rng.rand(3).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["product"]),
            helper.make_node("Add", ["product", "B"], ["scores"]),
            helper.make_node("ArgMax", ["scores"], ["label"], axis=1, keepdims=0),
        ],
        "tiny",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", FEATURES])],
        [
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (root / "onnx-linear").mkdir()
    path = root / "onnx-linear" / "model.onnx"
    path.write_bytes(model.SerializeToString())
    (root / "bad-onnx").mkdir()
    (root / "bad-onnx" / "model.onnx").write_bytes(path.read_bytes()[:40])
    built: dict[str, Any] = {"onnx-linear": path}
    if has("skl2onnx", "sklearn"):
        from skl2onnx import to_onnx
        from sklearn.linear_model import LogisticRegression

        features, labels = data()
        x = features.astype(np.float32)
        classifier = LogisticRegression(max_iter=500).fit(x, labels)
        (root / "onnx-zipmap").mkdir()
        zipmap = root / "onnx-zipmap" / "model.onnx"
        zipmap.write_bytes(to_onnx(classifier, x[:1], target_opset=17).SerializeToString())
        built["onnx-zipmap"] = zipmap
    return built


def _torch_net() -> Any:
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(FEATURES, 3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            probabilities = torch.softmax(self.linear(x), dim=-1)
            return probabilities, torch.argmax(probabilities, dim=-1)

    torch.manual_seed(0)
    return Net().eval()


def build_torch(root: Path) -> dict[str, Any]:
    import torch

    net = _torch_net()
    example = torch.rand(2, FEATURES)
    program = torch.export.export(
        net, (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}}
    )
    (root / "torch-export").mkdir()
    torch.export.save(program, root / "torch-export" / "model.pt2")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        trace: Any = torch.jit.trace  # untyped in PyTorch's stubs
        traced = trace(net, example)
    (root / "torch-script").mkdir()
    traced.save(str(root / "torch-script" / "model.pt"))
    (root / "bad-torch").mkdir()
    blob = (root / "torch-export" / "model.pt2").read_bytes()
    (root / "bad-torch" / "model.pt2").write_bytes(blob[: len(blob) // 2])
    (root / "bad-torchscript").mkdir()
    (root / "bad-torchscript" / "model.pt").write_bytes(b"not a TorchScript archive")
    return {"torch-export": net, "torch-script": net}


def build_sklearn(root: Path) -> dict[str, Any]:
    import joblib
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LogisticRegression

    features, labels = data()
    classifier = LogisticRegression(max_iter=500).fit(features, labels)
    regressor = RandomForestRegressor(n_estimators=5, random_state=0).fit(features, labels * 1.5)
    for name, model, filename in (
        ("sk-classifier", classifier, "model.joblib"),
        ("sk-regressor", regressor, "model.pkl"),
    ):
        (root / name).mkdir()
        joblib.dump(model, root / name / filename)
    return {"sk-classifier": classifier, "sk-regressor": regressor}


BUILDERS: dict[str, tuple[tuple[str, ...], Callable[[Path], dict[str, Any]]]] = {
    "sklearn": (("sklearn", "joblib"), build_sklearn),
    "xgboost": (("xgboost",), build_xgboost),
    "lightgbm": (("lightgbm",), build_lightgbm),
    "onnx": (("onnxruntime", "onnx"), build_onnx),
    "torch": (("torch",), build_torch),
}


@dataclass
class Runtimes:
    server: RunningServer
    models: dict[str, Any]
    root: Path

    def file(self, folder: str, filename: str) -> Path:
        return self.root / folder / filename


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtimes]:
    root = tmp_path_factory.mktemp("runtimes")
    models: dict[str, Any] = {}
    for modules, build in BUILDERS.values():
        if has(*modules):
            models.update(build(root))
    # a Python model that needs no framework: it serves whatever else fails
    (root / "echo").mkdir()
    (root / "echo" / "model.py").write_text(ECHO_MODEL)
    with serve(root, tmp_dir=tmp_path_factory.mktemp("runtimes-server")) as server:
        yield Runtimes(server, models, root)


ECHO_MODEL = """
from oipserve import Model
from oipserve.model import InferResponse


class Echo(Model):
    def infer(self, requests):
        return [InferResponse(dict(r.inputs)) for r in requests]
"""


@pytest.fixture
def triton(runtimes: Runtimes) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(runtimes.server.http_url)
    yield client
    client.close()


def infer(
    client: httpclient.InferenceServerClient,
    model: str,
    inputs: dict[str, np.ndarray],
    outputs: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """One binary request; the named outputs (all when none) as numpy arrays."""
    tensors = []
    for name, array in inputs.items():
        tensor = httpclient.InferInput(name, list(array.shape), _datatype(array))
        tensor.set_data_from_numpy(array, binary_data=True)
        tensors.append(tensor)
    requested = [httpclient.InferRequestedOutput(n, binary_data=True) for n in outputs] or None
    result = client.infer(model, tensors, outputs=requested)
    names = outputs or tuple(o["name"] for o in result.get_response()["outputs"])
    return {name: result.as_numpy(name) for name in names}


def _datatype(array: np.ndarray) -> str:
    return {"float32": "FP32", "float64": "FP64", "int64": "INT64"}[array.dtype.name]


def metadata(client: httpclient.InferenceServerClient, model: str) -> dict[str, Any]:
    result: dict[str, Any] = client.get_model_metadata(model)
    return result


def tensors(entries: list[dict[str, Any]]) -> list[tuple[str, str, list[int]]]:
    return [(e["name"], e["datatype"], list(e["shape"])) for e in entries]


def feature_count_error(
    client: httpclient.InferenceServerClient, model: str, name: str, dtype: type[np.floating[Any]]
) -> str:
    """The 400 for a request with 3 features where the model wants 4."""
    with pytest.raises(InferenceServerException) as info:
        infer(client, model, {name: np.ones((2, FEATURES - 1), dtype)})
    assert info.value.status() == "400"
    message = str(info.value.message())
    assert "[2, 3]" in message or "got 3" in message
    assert "[-1, 4]" in message or "expected 4" in message
    return message


# -- scikit-learn ------------------------------------------------------------------------------


def test_sklearn_predictions(runtimes: Runtimes, triton: httpclient.InferenceServerClient) -> None:
    pytest.importorskip("sklearn")
    features, _ = data(seed=5)
    classifier = runtimes.models["sk-classifier"]
    out = infer(triton, "sk-classifier", {"input-0": features}, ("predict", "predict_proba"))
    np.testing.assert_array_equal(out["predict"], classifier.predict(features))
    np.testing.assert_allclose(out["predict_proba"], classifier.predict_proba(features))
    # a request naming no output gets every output of the metadata (zero-config: both)
    single = infer(triton, "sk-classifier", {"input-0": features[:1]})
    assert list(single) == ["predict", "predict_proba"]
    np.testing.assert_allclose(single["predict_proba"], classifier.predict_proba(features[:1]))
    regressor = runtimes.models["sk-regressor"]
    out = infer(triton, "sk-regressor", {"input-0": features})
    np.testing.assert_allclose(out["predict"], regressor.predict(features))


def test_sklearn_metadata(runtimes: Runtimes, triton: httpclient.InferenceServerClient) -> None:
    pytest.importorskip("sklearn")
    meta = metadata(triton, "sk-classifier")
    assert meta["platform"] == "sklearn"
    assert tensors(meta["inputs"]) == [("input-0", "FP64", [-1, 4])]
    assert tensors(meta["outputs"]) == [
        ("predict", "INT64", [-1]),
        ("predict_proba", "FP64", [-1, 3]),
    ]
    feature_count_error(triton, "sk-classifier", "input-0", np.float64)


# -- XGBoost -----------------------------------------------------------------------------------


def test_xgboost_classifier_predictions(
    runtimes: Runtimes, triton: httpclient.InferenceServerClient
) -> None:
    pytest.importorskip("xgboost")
    features, _ = data(seed=7)
    x = features.astype(np.float32)
    for name in ("xgb-multi", "xgb-binary"):
        model = runtimes.models[name]
        out = infer(triton, name, {"input-0": x}, ("predict", "predict_proba"))
        assert out["predict"].dtype == np.int64
        np.testing.assert_array_equal(out["predict"], model.predict(x))
        np.testing.assert_allclose(out["predict_proba"], model.predict_proba(x), rtol=1e-6)
        # one row, naming no output: every output of the metadata
        single = infer(triton, name, {"input-0": x[:1]})
        assert list(single) == ["predict", "predict_proba"]
        np.testing.assert_array_equal(single["predict"], model.predict(x[:1]))


def test_xgboost_regressor_predictions(
    runtimes: Runtimes, triton: httpclient.InferenceServerClient
) -> None:
    xgboost = pytest.importorskip("xgboost")
    features, _ = data(seed=8)
    x = features.astype(np.float32)
    regressor = runtimes.models["xgb-regressor"]
    out = infer(triton, "xgb-regressor", {"input-0": x})
    np.testing.assert_allclose(out["predict"], regressor.predict(x), rtol=1e-6)
    booster = regressor.get_booster()
    np.testing.assert_allclose(out["predict"], booster.predict(xgboost.DMatrix(x)), rtol=1e-6)
    with pytest.raises(InferenceServerException, match="predict_proba"):
        infer(triton, "xgb-regressor", {"input-0": x}, ("predict_proba",))


def test_xgboost_metadata(runtimes: Runtimes, triton: httpclient.InferenceServerClient) -> None:
    pytest.importorskip("xgboost")
    multi = metadata(triton, "xgb-multi")
    assert multi["platform"] == "xgboost"
    assert tensors(multi["inputs"]) == [("input-0", "FP32", [-1, 4])]
    assert tensors(multi["outputs"]) == [
        ("predict", "INT64", [-1]),
        ("predict_proba", "FP32", [-1, 3]),
    ]
    binary = metadata(triton, "xgb-binary")
    assert tensors(binary["outputs"])[1] == ("predict_proba", "FP32", [-1, 2])
    regressor = metadata(triton, "xgb-regressor")
    assert tensors(regressor["outputs"]) == [("predict", "FP32", [-1])]


def test_xgboost_wrong_feature_count(
    runtimes: Runtimes, triton: httpclient.InferenceServerClient
) -> None:
    pytest.importorskip("xgboost")
    feature_count_error(triton, "xgb-multi", "input-0", np.float32)


# -- LightGBM ----------------------------------------------------------------------------------


def test_lightgbm_classifier_predictions(
    runtimes: Runtimes, triton: httpclient.InferenceServerClient
) -> None:
    pytest.importorskip("lightgbm")
    features, _ = data(seed=9)
    for name in ("lgb-multi", "lgb-binary"):
        model = runtimes.models[name]
        out = infer(triton, name, {"input-0": features}, ("predict", "predict_proba"))
        np.testing.assert_array_equal(out["predict"], model.predict(features))
        np.testing.assert_allclose(out["predict_proba"], model.predict_proba(features))
        single = infer(triton, name, {"input-0": features[:1]})
        np.testing.assert_array_equal(single["predict"], model.predict(features[:1]))


def test_lightgbm_regressor_predictions(
    runtimes: Runtimes, triton: httpclient.InferenceServerClient
) -> None:
    pytest.importorskip("lightgbm")
    features, _ = data(seed=10)
    regressor = runtimes.models["lgb-regressor"]
    out = infer(triton, "lgb-regressor", {"input-0": features})
    np.testing.assert_allclose(out["predict"], regressor.predict(features))


def test_lightgbm_metadata(runtimes: Runtimes, triton: httpclient.InferenceServerClient) -> None:
    pytest.importorskip("lightgbm")
    multi = metadata(triton, "lgb-multi")
    assert multi["platform"] == "lightgbm"
    assert tensors(multi["inputs"]) == [("input-0", "FP64", [-1, 4])]
    assert tensors(multi["outputs"]) == [
        ("predict", "INT64", [-1]),
        ("predict_proba", "FP64", [-1, 3]),
    ]
    assert tensors(metadata(triton, "lgb-regressor")["outputs"]) == [("predict", "FP64", [-1])]


def test_lightgbm_wrong_feature_count(
    runtimes: Runtimes, triton: httpclient.InferenceServerClient
) -> None:
    pytest.importorskip("lightgbm")
    feature_count_error(triton, "lgb-multi", "input-0", np.float64)


# -- ONNX Runtime ------------------------------------------------------------------------------


def test_onnx_predictions(runtimes: Runtimes, triton: httpclient.InferenceServerClient) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    session = ort.InferenceSession(
        str(runtimes.models["onnx-linear"]), providers=["CPUExecutionProvider"]
    )
    features, _ = data(seed=11)
    x = features.astype(np.float32)
    scores, label = session.run(None, {"X": x})
    out = infer(triton, "onnx-linear", {"X": x})
    assert set(out) == {"scores", "label"}
    np.testing.assert_allclose(out["scores"], scores, rtol=1e-6)
    np.testing.assert_array_equal(out["label"], label)
    only = infer(triton, "onnx-linear", {"X": x[:1]}, ("label",))
    assert list(only) == ["label"]
    np.testing.assert_array_equal(only["label"], label[:1])


def test_onnx_metadata(runtimes: Runtimes, triton: httpclient.InferenceServerClient) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    meta = metadata(triton, "onnx-linear")
    assert meta["platform"] == "onnxruntime_onnx"
    assert tensors(meta["inputs"]) == [("X", "FP32", [-1, 4])]
    assert tensors(meta["outputs"]) == [("scores", "FP32", [-1, 3]), ("label", "INT64", [-1])]


def test_onnx_zipmap_probabilities(
    runtimes: Runtimes, triton: httpclient.InferenceServerClient
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(
        str(runtimes.models["onnx-zipmap"]), providers=["CPUExecutionProvider"]
    )
    features, _ = data(seed=12)
    x = features.astype(np.float32)
    labels, maps = session.run(None, {"X": x})
    out = infer(triton, "onnx-zipmap", {"X": x})
    np.testing.assert_array_equal(out["output_label"], labels)
    expected = np.array([[row[k] for k in sorted(row)] for row in maps], dtype=np.float32)
    np.testing.assert_allclose(out["output_probability"], expected, rtol=1e-6)
    outputs = tensors(metadata(triton, "onnx-zipmap")["outputs"])
    assert outputs == [("output_label", "INT64", [-1]), ("output_probability", "FP32", [-1, -1])]


def test_onnx_wrong_feature_count(
    runtimes: Runtimes, triton: httpclient.InferenceServerClient
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    feature_count_error(triton, "onnx-linear", "X", np.float32)


# -- PyTorch -----------------------------------------------------------------------------------


def _torch_expected(net: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch

    with torch.inference_mode():
        probabilities, label = net(torch.from_numpy(x))
    return probabilities.numpy(), label.numpy()


def test_torch_export_predictions(
    runtimes: Runtimes, triton: httpclient.InferenceServerClient
) -> None:
    pytest.importorskip("torch")
    features, _ = data(seed=13)
    x = features.astype(np.float32)
    probabilities, label = _torch_expected(runtimes.models["torch-export"], x)
    out = infer(triton, "torch-export", {"x": x})
    np.testing.assert_allclose(out["output-0"], probabilities, rtol=1e-5)
    np.testing.assert_array_equal(out["output-1"], label)
    single = infer(triton, "torch-export", {"x": x[:1]}, ("output-1",))
    np.testing.assert_array_equal(single["output-1"], label[:1])


def test_torchscript_predictions(
    runtimes: Runtimes, triton: httpclient.InferenceServerClient
) -> None:
    pytest.importorskip("torch")
    features, _ = data(seed=14)
    x = features.astype(np.float32)
    probabilities, label = _torch_expected(runtimes.models["torch-script"], x)
    out = infer(triton, "torch-script", {"input-0": x})
    np.testing.assert_allclose(out["output-0"], probabilities, rtol=1e-5)
    np.testing.assert_array_equal(out["output-1"], label)
    with pytest.raises(InferenceServerException, match="input-0") as info:
        infer(triton, "torch-script", {"features": x})
    assert info.value.status() == "400"


def test_torch_metadata(runtimes: Runtimes, triton: httpclient.InferenceServerClient) -> None:
    pytest.importorskip("torch")
    exported = metadata(triton, "torch-export")
    assert exported["platform"] == "pytorch_export"
    assert tensors(exported["inputs"]) == [("x", "FP32", [-1, 4])]
    assert tensors(exported["outputs"]) == [
        ("output-0", "FP32", [-1, 3]),
        ("output-1", "INT64", [-1]),
    ]
    scripted = metadata(triton, "torch-script")
    assert scripted["platform"] == "pytorch_libtorch"
    assert scripted.get("inputs", []) == [] and scripted.get("outputs", []) == []


def test_torch_export_wrong_feature_count(
    runtimes: Runtimes, triton: httpclient.InferenceServerClient
) -> None:
    pytest.importorskip("torch")
    feature_count_error(triton, "torch-export", "x", np.float32)


# -- corrupt files: that model is not ready, with its reason; the others serve ------------------


@pytest.mark.parametrize(
    ("model", "framework"),
    [
        ("bad-xgboost", "xgboost"),
        ("bad-lightgbm", "lightgbm"),
        ("bad-onnx", "onnxruntime"),
        ("bad-torch", "torch"),
        ("bad-torchscript", "torch"),
    ],
)
def test_a_corrupt_model_file_fails_alone(
    runtimes: Runtimes, triton: httpclient.InferenceServerClient, model: str, framework: str
) -> None:
    pytest.importorskip(framework)
    if framework == "onnxruntime":
        pytest.importorskip("onnx")
    with httpx.Client(base_url=runtimes.server.base_url, timeout=10.0) as client:
        ready = client.get(f"/v2/models/{model}/ready")
        assert ready.status_code == 503
        health = client.get("/v2/health/ready")
        assert health.status_code == 503
        reason = health.json()["error"]
        assert f"{model}/1 (cannot " in reason
    assert f"model '{model}' version 1 failed to load: cannot " in runtimes.server.log()
    echo = infer(triton, "echo", {"v": np.arange(3, dtype=np.int64)})
    np.testing.assert_array_equal(echo["v"], np.arange(3))


# -- a missing extra ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "module", "extra", "filename"),
    [
        ("xgboost", "xgboost", "xgboost", "model.ubj"),
        ("lightgbm", "lightgbm", "lightgbm", "model.txt"),
        ("onnxruntime", "onnxruntime", "onnx", "model.onnx"),
        ("pytorch", "torch", "torch", "model.pt"),
    ],
)
def test_a_missing_framework_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    backend: str,
    module: str,
    extra: str,
    filename: str,
) -> None:
    assert BUILTIN[backend][2] == extra
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    module_name, class_name, _ = BUILTIN[backend]
    runtime = getattr(importlib.import_module(module_name), class_name)()
    ctx = LoadContext("m", "1", tmp_path, ModelConfig(), tmp_path / filename)
    with pytest.raises(ModelLoadError, match=rf"pip install 'oipserve\[{extra}\]'"):
        runtime.load(ctx)


def test_import_framework_names_the_extra() -> None:
    with pytest.raises(ModelLoadError, match=r"pip install 'oipserve\[onnx\]'"):
        import_framework("oipserve_no_such_framework", "onnx")


def test_a_missing_extra_through_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a stand-in package that fails to import, ahead of the real one on the path
    shadow = tmp_path / "shadow" / "xgboost"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'xgboost'\")\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "shadow"))
    repository = tmp_path / "models"
    (repository / "boosted").mkdir(parents=True)
    (repository / "boosted" / "model.ubj").write_bytes(b"{}")
    (repository / "echo").mkdir()
    (repository / "echo" / "model.py").write_text(ECHO_MODEL)
    with (
        serve(repository, tmp_dir=tmp_path) as server,
        httpx.Client(base_url=server.base_url, timeout=10.0) as client,
    ):
        assert client.get("/v2/models/boosted/ready").status_code == 503
        assert client.get("/v2/models/echo/ready").status_code == 200
        reason = client.get("/v2/health/ready").json()["error"]
        assert "pip install 'oipserve[xgboost]'" in reason
    assert "pip install 'oipserve[xgboost]'" in server.log()


# -- the runtimes in-process: messages and parameters --------------------------------------------


def _context(path: Path, toml: str = "") -> LoadContext:
    return LoadContext("m", "1", path.parent, parse_toml(toml), path)


def test_tabular_runtimes_say_expected_and_got(runtimes: Runtimes) -> None:
    cases: list[tuple[str, str, str, type[np.floating[Any]]]] = []
    if has("xgboost"):
        cases.append(("xgboost", "xgb-multi", "model.ubj", np.float32))
    if has("lightgbm"):
        cases.append(("lightgbm", "lgb-multi", "model.txt", np.float64))
    if not cases:
        pytest.skip("neither xgboost nor lightgbm is installed")
    for backend, folder, filename, dtype in cases:
        module_name, class_name, _ = BUILTIN[backend]
        runtime = getattr(importlib.import_module(module_name), class_name)()
        source = runtimes.file(folder, filename)
        runtime.load(_context(source))
        with pytest.raises(InvalidArgument, match="expected 4 features per row, got 3"):
            runtime.predict({"input-0": np.ones((2, 3), dtype)}, ())
        batched = getattr(importlib.import_module(module_name), class_name)()
        batched.load(_context(source, "max_batch_size = 8\n"))
        signature = batched.signature()
        assert signature is not None
        assert signature.inputs[0].shape == (FEATURES,)


def test_onnx_session_parameters() -> None:
    ort = pytest.importorskip("onnxruntime")
    from oipserve.runtimes.onnx import execution_providers, session_options

    options = session_options(
        ort,
        {
            "intra_op_num_threads": "2",
            "inter_op_thread_count": "1",
            "graph_optimization_level": "basic",
            "execution_mode": "sequential",
        },
    )
    assert options.intra_op_num_threads == 2
    assert options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert session_options(ort, {"graph_optimization_level": "0"}).graph_optimization_level == (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    assert execution_providers(ort, "") == ["CPUExecutionProvider"]
    assert execution_providers(ort, "cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ModelLoadError, match=r"NoSuchExecutionProvider.*available: "):
        execution_providers(ort, "NoSuchExecutionProvider")
    with pytest.raises(ModelLoadError, match="intra_op_num_threads"):
        session_options(ort, {"intra_op_num_threads": "many"})
    with pytest.raises(ModelLoadError, match="graph_optimization_level"):
        session_options(ort, {"graph_optimization_level": "maximal"})


def test_onnx_batched_config_drops_the_leading_dim(runtimes: Runtimes) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from oipserve.runtimes.onnx import OnnxModel

    model = OnnxModel()
    model.load(_context(runtimes.models["onnx-linear"], "max_batch_size = 16\n"))
    signature = model.signature()
    assert signature is not None
    assert [(s.name, s.shape) for s in signature.inputs] == [("X", (FEATURES,))]
    assert [(s.name, s.shape) for s in signature.outputs] == [("scores", (3,)), ("label", ())]
    with pytest.raises(InvalidArgument, match="expected 4 features per row, got 3"):
        model.predict({"X": np.ones((1, 3), np.float32)}, ())
    with pytest.raises(ModelLoadError, match="execution provider 'gpu'"):
        OnnxModel().load(
            _context(runtimes.models["onnx-linear"], '[parameters]\nexecution_providers = "gpu"\n')
        )


def test_onnx_config_listing_fewer_outputs_narrows_the_default(runtimes: Runtimes) -> None:
    """A request naming no output gets the metadata's outputs: the config's list, if it has one."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from oipserve.runtimes.onnx import OnnxModel

    every = OnnxModel()
    every.load(_context(runtimes.models["onnx-linear"], ""))
    assert every.default_outputs == ("scores", "label")
    narrowed = OnnxModel()
    config = '[[output]]\nname = "label"\ndata_type = "TYPE_INT64"\ndims = [-1]\n'
    narrowed.load(_context(runtimes.models["onnx-linear"], config))
    assert narrowed.default_outputs == ("label",)
    (result,) = narrowed.infer([InferRequest({"X": np.ones((2, FEATURES), np.float32)})])
    assert isinstance(result, InferResponse)
    assert list(result.outputs) == ["label"]


def test_torch_device_parameter(runtimes: Runtimes) -> None:
    torch = pytest.importorskip("torch")
    from oipserve.runtimes.torch import TorchModel

    path = runtimes.file("torch-export", "model.pt2")
    with pytest.raises(ModelLoadError, match="parameter device"):
        TorchModel().load(_context(path, '[parameters]\ndevice = "toaster"\n'))
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="not available"):
            TorchModel().load(_context(path, '[parameters]\ndevice = "cuda"\n'))
    model = TorchModel()
    model.load(_context(path, '[parameters]\ndevice = "cpu"\n'))
    out = model.predict({"x": np.ones((2, FEATURES), np.float32)}, ())
    assert out["output-0"].shape == (2, 3)


# -- a third-party runtime through the entry-point group ---------------------------------------

SCALE_RUNTIME = """
from __future__ import annotations

import numpy as np

from oipserve import LoadContext, Signature, TensorSpec
from oipserve.runtimes.base import BatchedModel


class ScaleModel(BatchedModel):
    default_outputs = ("scaled",)

    def load(self, ctx: LoadContext) -> None:
        assert ctx.model_file is not None and ctx.model_file.name == "model.npy"
        self.factor = np.load(ctx.model_file)
        self.offset = float(ctx.parameters.get("offset", "0"))

    def signature(self) -> Signature:
        return Signature(
            inputs=(TensorSpec("x", "FP64", (-1, self.factor.shape[0])),),
            outputs=(TensorSpec("scaled", "FP64", (-1, self.factor.shape[0])),),
            platform="scale",
        )

    def predict(self, inputs, outputs):
        return {"scaled": inputs["x"] * self.factor + self.offset}
"""


def test_a_third_party_runtime_from_an_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    (site / "oipserve_scale-0.1.dist-info").mkdir(parents=True)
    (site / "oipserve_scale.py").write_text(SCALE_RUNTIME)
    (site / "oipserve_scale-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: oipserve-scale\nVersion: 0.1\n"
    )
    (site / "oipserve_scale-0.1.dist-info" / "entry_points.txt").write_text(
        "[oipserve.runtimes]\nscale = oipserve_scale:ScaleModel\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    repository = tmp_path / "models"
    (repository / "scaled").mkdir(parents=True)
    np.save(repository / "scaled" / "model.npy", np.array([1.0, 2.0, 3.0]))
    (repository / "scaled" / "model.toml").write_text(
        'backend = "scale"\n[parameters]\noffset = "0.5"\n'
    )
    with serve(repository, tmp_dir=tmp_path) as server:
        client = httpclient.InferenceServerClient(server.http_url)
        try:
            meta = metadata(client, "scaled")
            assert meta["platform"] == "scale"
            assert tensors(meta["inputs"]) == [("x", "FP64", [-1, 3])]
            x = np.arange(6, dtype=np.float64).reshape(2, 3)
            out = infer(client, "scaled", {"x": x})
            np.testing.assert_allclose(out["scaled"], x * np.array([1.0, 2.0, 3.0]) + 0.5)
        finally:
            client.close()
