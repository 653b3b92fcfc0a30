"""The container's command as KServe's ServingRuntime spells it, against ``/mnt/models`` as
KServe's storage initializer leaves it.

The command is the image's ENTRYPOINT (``oipserve serve``) followed by the runtime's ``args`` from
``deploy/kserve/cluster-serving-runtime.yaml``, ``{{.Name}}`` filled in as KServe fills it with the
InferenceService's name; only ``/mnt/models`` and the ports are swapped for a temporary folder and
free ports (the gRPC port, which the args leave at the image's default, through
``OIPSERVE_GRPC_PORT``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
import yaml
from tritonclient.utils import np_to_triton_dtype

from tests.integration.test_runtimes import (
    build_lightgbm,
    build_onnx,
    build_sklearn,
    build_xgboost,
    data,
)
from tests.serving import ROOT, RunningServer, free_port, run_command

RUNTIME_FILE = ROOT / "deploy" / "kserve" / "cluster-serving-runtime.yaml"


def _runtime_args() -> list[str]:
    runtime = yaml.safe_load(RUNTIME_FILE.read_text())
    (container,) = runtime["spec"]["containers"]
    args: list[str] = container["args"]
    return args


@contextmanager
def serve_as_kserve(mnt_models: Path, service_name: str, tmp_dir: Path) -> Iterator[RunningServer]:
    http_port, grpc_port = free_port(), free_port()
    args = [
        arg.replace("{{.Name}}", service_name)
        .replace("/mnt/models", str(mnt_models))
        .replace("=8080", f"={http_port}")
        for arg in _runtime_args()
    ]
    command = [str(Path(sys.executable).parent / "oipserve"), "serve", *args]
    env = {"OIPSERVE_GRPC_PORT": str(grpc_port), "OIPSERVE_HOST": "127.0.0.1"}
    with run_command(command, http_port, grpc_port, tmp_dir=tmp_dir, env=env) as running:
        yield running


def _iris_request() -> list[httpclient.InferInput]:
    features = httpclient.InferInput("input-0", [2, 4], "FP32")
    features.set_data_from_numpy(
        np.array([[5.1, 3.5, 1.4, 0.2], [6.8, 2.8, 4.8, 1.4]], dtype=np.float32)
    )
    return [features]


def test_args_are_kserve_spellings() -> None:
    assert _runtime_args() == [
        "--model_name={{.Name}}",
        "--model_dir=/mnt/models",
        "--http_port=8080",
    ]


def test_repository_of_model_folders_ignores_the_service_name(
    examples_repository: Path, tmp_path: Path
) -> None:
    """The ``triton`` format: /mnt/models holds model folders, each served under its own name;
    the InferenceService's name is arbitrary and only logged."""
    mnt_models = tmp_path / "mnt" / "models"
    shutil.copytree(examples_repository / "iris", mnt_models / "iris")
    shutil.copytree(examples_repository / "simple", mnt_models / "simple")
    with serve_as_kserve(mnt_models, "triton-repository", tmp_path) as running:
        client = httpclient.InferenceServerClient(running.http_url)
        assert client.is_server_ready()
        assert client.is_model_ready("iris")
        assert client.is_model_ready("simple")
        assert not client.is_model_ready("triton-repository")
        result = client.infer("iris", _iris_request())
        assert result.as_numpy("predict").tolist() == [0, 1]
        assert "--model-name triton-repository ignored" in running.log()
        # the prometheus.kserve.io annotations: port 8080 (here the swapped one), /metrics
        metrics = httpx.get(f"{running.base_url}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert 'nv_inference_request_success{model="iris",version="1"}' in metrics.text


# -- /mnt/models as the storage initializer leaves one model -------------------------------------


@dataclass
class Layout:
    """A model built by a framework, then laid out in /mnt/models under KServe's file names."""

    build: Callable[[Path], dict[str, Any]]
    built_folder: str
    built_file: str
    kserve_file: str
    inputs: Callable[[np.ndarray], dict[str, np.ndarray]]
    expected: Callable[[Any, np.ndarray], np.ndarray]
    extra_files: dict[str, str] = field(default_factory=dict)
    needs: tuple[str, ...] = ()


def _onnx_expected(path: Any, features: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    label: np.ndarray = session.run(["label"], {"X": features.astype(np.float32)})[0]
    return label


#: what KServe's storage initializer leaves for each format, beside the files that never count
LAYOUTS = {
    # a pickle under its own name, with MLServer's settings and a labels file beside it
    "sklearn": Layout(
        build_sklearn,
        "sk-classifier",
        "model.joblib",
        "iris-classifier.joblib",
        lambda x: {"input-0": x},
        lambda model, x: model.predict(x),
        {
            "settings.json": '{"debug": false}',  # MLServer's server settings
            "labels.txt": "setosa\nversicolor\nvirginica\n",
        },
        ("sklearn", "joblib"),
    ),
    "sklearn-pickle": Layout(
        build_sklearn,
        "sk-regressor",
        "model.pkl",
        "regressor.pickle",
        lambda x: {"input-0": x},
        lambda model, x: model.predict(x),
        needs=("sklearn", "joblib"),
    ),
    # XGBoost's format under .bst, as KServe's xgbserver examples name it
    "xgboost": Layout(
        build_xgboost,
        "xgb-regressor",
        "model.bst",
        "model.bst",
        lambda x: {"input-0": x.astype(np.float32)},
        lambda model, x: model.predict(x.astype(np.float32)),
        {"settings.json": '{"debug": false}'},
        ("xgboost",),
    ),
    # a LightGBM text model under .bst, as KServe's lgbserver examples name it
    "lightgbm": Layout(
        build_lightgbm,
        "lgb-multi",
        "model.txt",
        "model.bst",
        lambda x: {"input-0": x},
        lambda model, x: model.predict(x),
        {"config.json": '{"architectures": ["none"]}', "vocab.txt": "a\nb\n"},
        ("lightgbm",),
    ),
    "onnx": Layout(
        build_onnx,
        "onnx-linear",
        "model.onnx",
        "style.onnx",
        lambda x: {"X": x.astype(np.float32)},
        _onnx_expected,
        {"tokenizer.json": "{}"},
        ("onnxruntime", "onnx"),
    ),
}


@pytest.mark.parametrize("layout_name", list(LAYOUTS))
def test_one_model_folder_served_under_the_service_name(layout_name: str, tmp_path: Path) -> None:
    layout = LAYOUTS[layout_name]
    for module in layout.needs:
        pytest.importorskip(module)
    staging = tmp_path / "staging"
    staging.mkdir()
    models = layout.build(staging)
    mnt_models = tmp_path / "mnt" / "models"
    mnt_models.mkdir(parents=True)
    shutil.copy(staging / layout.built_folder / layout.built_file, mnt_models / layout.kserve_file)
    for name, content in layout.extra_files.items():
        (mnt_models / name).write_text(content)
    service = f"{layout_name}-iris"
    features, _ = data(seed=3)
    with serve_as_kserve(mnt_models, service, tmp_path) as running:
        client = httpclient.InferenceServerClient(running.http_url)
        assert client.is_server_ready()
        assert client.is_model_ready(service)
        assert client.get_model_repository_index() == [
            {"name": service, "version": "1", "state": "READY"}
        ]
        tensors = []
        for name, array in layout.inputs(features).items():
            tensor = httpclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        output = "label" if layout_name == "onnx" else "predict"
        result = client.infer(service, tensors, outputs=[httpclient.InferRequestedOutput(output)])
        built = models[layout.built_folder]
        np.testing.assert_allclose(
            result.as_numpy(output), layout.expected(built, features), rtol=1e-6
        )
        assert f"serving it as model '{service}'" in running.log()


def test_neither_a_model_nor_a_repository_says_what_was_looked_for(tmp_path: Path) -> None:
    mnt_models = tmp_path / "mnt" / "models"
    mnt_models.mkdir(parents=True)
    (mnt_models / "saved_model.pb").write_bytes(b"\x08\x01")
    (mnt_models / "labels.txt").write_text("a\nb\n")
    args = [
        arg.replace("{{.Name}}", "tf-model").replace("/mnt/models", str(mnt_models))
        for arg in _runtime_args()
    ]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "oipserve"), "serve", *args, "--http_port=0"],
        check=False,
        capture_output=True,
        timeout=60,
        env={**os.environ, "OIPSERVE_GRPC_PORT": "0", "OIPSERVE_HOST": "127.0.0.1"},
    )
    assert result.returncode == 1
    output = result.stdout.decode() + result.stderr.decode()
    assert "Traceback" not in output
    message = " ".join(output.split())  # the log wraps lines
    assert "is neither a model repository nor one model's folder" in message
    for looked_for in ("model folders", "model.toml", "*.joblib", "*.bst", "*.onnx", "*.pt"):
        assert looked_for in message
    assert "saved_model.pb" in message
