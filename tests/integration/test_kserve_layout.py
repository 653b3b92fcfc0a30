"""The container's command as KServe's ServingRuntime spells it, against ``/mnt/models`` as
KServe's storage initializer leaves it.

The command is the image's ENTRYPOINT (``oipserve serve``) followed by the runtime's ``args`` from
``deploy/kserve/cluster-serving-runtime.yaml``, ``{{.Name}}`` filled in as KServe fills it with the
InferenceService's name; only ``/mnt/models`` and the ports are swapped for a temporary folder and
free ports (the gRPC port, which the args leave at the image's default, through
``OIPSERVE_GRPC_PORT``).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient
import yaml

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
