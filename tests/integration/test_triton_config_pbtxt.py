"""Triton model repositories with ``config.pbtxt``, served as they are, through tritonclient.

Every model is built here (skl2onnx, torch.jit, xgboost, lightgbm) into a folder laid out as
Triton wants it; the refused platforms and every kind of bad ``config.pbtxt`` sit beside them and
must fail alone, each with a reason naming what is wrong.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from tests.serving import RunningServer, serve

ROWS = 30


def has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def features() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    x = rng.rand(ROWS, 4).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 1.0).astype(np.int64)
    return x, y


def write(folder: Path, config: str, files: dict[str, bytes] | None = None) -> None:
    folder.mkdir(parents=True)
    (folder / "config.pbtxt").write_text(config)
    for name, content in (files or {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def build_onnx(root: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y = features()
    model = LogisticRegression().fit(x, y)
    onnx = to_onnx(model, x[:1], options={"zipmap": False}).SerializeToString()
    write(
        root / "onnx_lr",
        """
name: "onnx_lr"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [
  { name: "label" data_type: TYPE_INT64 dims: [ 1 ] },
  { name: "probabilities" data_type: TYPE_FP32 dims: [ 2 ] }
]
dynamic_batching { preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 100 }
parameters: { key: "where" value: { string_value: "$$TRITON_MODEL_DIRECTORY/extra" } }
optimization { execution_accelerators { gpu_execution_accelerator : [ { name : "tensorrt" } ] } }
""",
        {"1/model.onnx": onnx},
    )


def onnx_bytes(repo: Path) -> bytes:
    return (repo / "onnx_lr" / "1" / "model.onnx").read_bytes()


def build_torch(root: Path) -> None:
    import io

    import torch

    class AddSub(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return a + b, a - b

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        script: Any = torch.jit.script  # untyped in PyTorch's stubs
        torch.jit.save(script(AddSub()), buffer)
    # listed out of order: the __INDEX decides the position, as in Triton's PyTorch backend
    write(
        root / "torch_addsub",
        """
backend: "pytorch"
max_batch_size: 4
input [
  { name: "INPUT__1" data_type: TYPE_FP32 dims: [ 3 ] },
  { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 3 ] }
]
output [
  { name: "OUTPUT__1" data_type: TYPE_FP32 dims: [ 3 ] },
  { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 3 ] }
]
instance_group [ { kind: KIND_CPU } ]
""",
        {"1/model.pt": buffer.getvalue()},
    )


def build_fil(root: Path, scratch: Path) -> dict[str, object]:
    import lightgbm
    import xgboost

    x, y = features()
    classifier = xgboost.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1).fit(x, y)
    booster = classifier.get_booster()
    booster.save_model(str(scratch / "xgb.json"))
    fil = """
backend: "fil"
max_batch_size: 16
input [ { name: "input__0" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "output__0" data_type: TYPE_FP32 dims: [ %s ] } ]
instance_group [ { kind: KIND_AUTO } ]
parameters [
  { key: "model_type" value: { string_value: "%s" } },
  { key: "output_class" value: { string_value: "%s" } },
  { key: "predict_proba" value: { string_value: "%s" } },
  { key: "threshold" value: { string_value: "0.5" } }
]
"""
    json_bytes = (scratch / "xgb.json").read_bytes()
    write(
        root / "fil_xgb_class",
        fil % (1, "xgboost_json", "true", "false"),
        {"1/xgboost.json": json_bytes},
    )
    write(
        root / "fil_xgb_proba",
        fil % (2, "xgboost_json", "true", "true"),
        {"1/xgboost.json": json_bytes},
    )
    booster.save_model(str(scratch / "xgb.ubj"))
    write(
        root / "fil_xgb_ubj",
        fil % (1, "xgboost_ubj", "false", "false"),
        {"1/xgboost.ubj": (scratch / "xgb.ubj").read_bytes()},
    )
    regressor = lightgbm.LGBMRegressor(
        n_estimators=4, num_leaves=4, min_child_samples=2, verbose=-1
    ).fit(x, x[:, 2])
    text = regressor.booster_.model_to_string().encode()
    write(root / "fil_lgb", fil % (1, "lightgbm", "false", "false"), {"1/model.txt": text})
    return {"xgb": booster, "lgb": regressor}


BAD: dict[str, tuple[str, str]] = {
    "trt": ('platform: "tensorrt_plan"', "platform 'tensorrt_plan' (TensorRT)"),
    "tf": ('backend: "tensorflow"', "backend 'tensorflow' (TensorFlow)"),
    "tfsaved": ('platform: "tensorflow_savedmodel"', "(TensorFlow)"),
    "openvino": ('backend: "openvino"', "(OpenVINO)"),
    "dali": ('backend: "dali"', "(DALI)"),
    "vllm": ('backend: "vllm"', "(vLLM)"),
    "trtllm": ('backend: "tensorrtllm"', "(TensorRT-LLM)"),
    "conda": (
        'backend: "python"\nparameters: { key: "EXECUTION_ENV_PATH" '
        'value: { string_value: "$$TRITON_MODEL_DIRECTORY/env.tar.gz" } }',
        "EXECUTION_ENV_PATH",
    ),
    "sequence": (
        'backend: "onnxruntime"\nsequence_batching { max_sequence_idle_microseconds: 5000 }',
        "sequence_batching",
    ),
    "syntax": ('backend: "onnxruntime"\nmax_batch_size: 8\ninput [ { name: "x" ', "line 3"),
    "unknown_field": ('backend: "onnxruntime"\nmax_batch_sise: 8', "max_batch_sise"),
    "wrong_name": ('name: "other"\nbackend: "onnxruntime"', "'other'"),
    "escape": (
        'backend: "onnxruntime"\ndefault_model_filename: "../onnx_lr/1/model.onnx"',
        "default_model_filename",
    ),
    "absolute": ('backend: "onnxruntime"\ndefault_model_filename: "/etc/passwd"', "/etc/passwd"),
}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningServer, dict[str, object]]]:
    if not has("onnxruntime", "skl2onnx", "torch", "xgboost", "lightgbm"):
        pytest.skip("needs onnxruntime, skl2onnx, torch, xgboost and lightgbm")
    root = tmp_path_factory.mktemp("triton")
    repo = root / "models"
    repo.mkdir()
    build_onnx(repo)
    auto = repo / "onnx_auto"
    write(auto, 'platform: "onnxruntime_onnx"\n', {"1/model.onnx": onnx_bytes(repo)})
    build_torch(repo)
    built = build_fil(repo, root)
    for name, (config, _) in BAD.items():
        write(repo / name, config + "\n")
    both = repo / "both"
    write(both, 'backend: "onnxruntime"\n')
    (both / "model.toml").write_text('backend = "onnxruntime"\n')
    with serve(repo, tmp_dir=root) as running:
        yield running, built


def reasons(running: RunningServer) -> dict[str, str]:
    client = httpclient.InferenceServerClient(running.http_url)
    return {m["name"]: m.get("reason", "") for m in client.get_model_repository_index()}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_config_fails_alone_naming_it(server: tuple[RunningServer, object], name: str) -> None:
    running, _ = server
    reason = reasons(running)[name]
    assert BAD[name][1] in reason, reason
    if name in {"trt", "tf", "vllm", "conda"}:
        assert "is not supported by oipserve" in reason
        assert "onnxruntime_onnx" in reason and "'fil'" in reason
    if name == "syntax":
        assert "column" in reason
    assert not httpclient.InferenceServerClient(running.http_url).is_model_ready(name)


def test_both_config_files_named(server: tuple[RunningServer, object]) -> None:
    reason = reasons(server[0])["both"]
    assert "model.toml" in reason and "config.pbtxt" in reason


def test_onnx_serves_with_triton_defaults(server: tuple[RunningServer, object]) -> None:
    running, _ = server
    client = httpclient.InferenceServerClient(running.http_url)
    config = client.get_model_config("onnx_lr")
    assert config["max_batch_size"] == 8
    assert config["backend"] == "onnxruntime"
    assert config["dynamic_batching"]["preferred_batch_size"] == [4]
    assert [g["count"] for g in config["instance_group"]] == [2]  # Triton's ONNX CPU default
    where = config["parameters"]["where"]["string_value"]
    assert where.endswith("onnx_lr/extra") and "$$" not in where
    x, _ = features()
    inputs = [httpclient.InferInput("X", [3, 4], "FP32")]
    inputs[0].set_data_from_numpy(x[:3])
    result = client.infer("onnx_lr", inputs)
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert "optimization" in running.log() and "ignored" in running.log()


def test_torchscript_binds_name_index(server: tuple[RunningServer, object]) -> None:
    running, _ = server
    client = grpcclient.InferenceServerClient(running.grpc_url)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((2, 3), dtype=np.float32) * 10
    inputs = [
        grpcclient.InferInput("INPUT__0", [2, 3], "FP32"),
        grpcclient.InferInput("INPUT__1", [2, 3], "FP32"),
    ]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    result = client.infer("torch_addsub", inputs)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT__0"), a + b)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT__1"), a - b)
    config = client.get_model_config("torch_addsub", as_json=True)["config"]
    assert [g["count"] for g in config["instance_group"]] == [1]


@pytest.mark.parametrize(
    ("name", "width"),
    [("fil_xgb_class", 1), ("fil_xgb_proba", 2), ("fil_xgb_ubj", 1), ("fil_lgb", 1)],
)
def test_fil_models(server: tuple[RunningServer, dict[str, object]], name: str, width: int) -> None:
    import xgboost

    running, built = server
    x, _ = features()
    client = httpclient.InferenceServerClient(running.http_url)
    inputs = [httpclient.InferInput("input__0", [5, 4], "FP32")]
    inputs[0].set_data_from_numpy(x[:5])
    out = client.infer(name, inputs).as_numpy("output__0")
    assert out.dtype == np.float32 and out.shape == (5, width)
    if name == "fil_lgb":
        expected = built["lgb"].predict(x[:5])  # type: ignore[attr-defined]
        np.testing.assert_allclose(out[:, 0], expected, rtol=1e-5)
        return
    p = built["xgb"].predict(xgboost.DMatrix(x[:5]))  # type: ignore[attr-defined]
    if name == "fil_xgb_class":
        np.testing.assert_array_equal(out[:, 0], (p > 0.5).astype(np.float32))
    elif name == "fil_xgb_proba":
        np.testing.assert_allclose(out, np.stack([1 - p, p], axis=-1), rtol=1e-5)
    else:
        np.testing.assert_allclose(out[:, 0], p, rtol=1e-5)


def test_sequence_not_advertised(server: tuple[RunningServer, object]) -> None:
    metadata = httpclient.InferenceServerClient(server[0].http_url).get_server_metadata()
    assert "sequence" not in metadata["extensions"]
    assert "sequence_batching" in reasons(server[0])["sequence"]


def test_onnx_auto_complete_default_batch(server: tuple[RunningServer, object]) -> None:
    """Triton's ONNX Runtime auto-complete: a batchable graph gets max_batch_size 4 and the
    dynamic batcher; the tensors come from the graph without their batch dim."""
    running, _ = server
    client = httpclient.InferenceServerClient(running.http_url)
    config = client.get_model_config("onnx_auto")
    assert config["max_batch_size"] == 4
    assert "dynamic_batching" in config
    assert [i["dims"] for i in config["input"]] == [[4]]
    x, _ = features()
    inputs = [httpclient.InferInput("X", [2, 4], "FP32")]
    inputs[0].set_data_from_numpy(x[:2])
    assert client.infer("onnx_auto", inputs).as_numpy("probabilities").shape == (2, 2)


def test_disable_auto_complete_config(tmp_path: Path) -> None:
    if not has("onnxruntime", "skl2onnx"):
        pytest.skip("needs onnxruntime and skl2onnx")
    repo = tmp_path / "models"
    repo.mkdir()
    build_onnx(repo)
    write(repo / "onnx_auto", 'platform: "onnxruntime_onnx"\n', {"1/model.onnx": onnx_bytes(repo)})
    with serve(repo, "--disable-auto-complete-config", tmp_dir=tmp_path) as running:
        config = httpclient.InferenceServerClient(running.http_url).get_model_config("onnx_auto")
    assert config["max_batch_size"] == 0
    assert "dynamic_batching" not in config
