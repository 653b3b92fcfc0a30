"""The container image, as far as it can be checked without a container engine.

The Dockerfile is parsed with the ``dockerfile`` package (Docker's own Go parser) and its
properties checked; then the image's ENTRYPOINT and ENV are run as the image would run them —
only the repository (``/mnt/models``) and the ports swapped for a temporary folder and free ports —
and the HEALTHCHECK's own command is run against that server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import dockerfile
import numpy as np
import tritonclient.http as httpclient

from tests.serving import ROOT, free_port, run_command

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> tuple[dockerfile.Command, ...]:
    parsed: tuple[dockerfile.Command, ...] = dockerfile.parse_file(str(DOCKERFILE))
    return parsed


def _stages() -> list[list[dockerfile.Command]]:
    """The instructions of each ``FROM`` stage, in order (global ``ARG``s before the first)."""
    stages: list[list[dockerfile.Command]] = []
    for instruction in _instructions():
        if instruction.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _global_args() -> dict[str, str]:
    args: dict[str, str] = {}
    for instruction in _instructions():
        if instruction.cmd == "FROM":
            break
        if instruction.cmd == "ARG":
            key, _, value = instruction.value[0].partition("=")
            args[key] = value
    return args


def _one(stage: list[dockerfile.Command], cmd: str) -> dockerfile.Command:
    found = [instruction for instruction in stage if instruction.cmd == cmd]
    assert len(found) == 1, f"expected one {cmd} in the stage, found {len(found)}"
    return found[0]


def _env(stage: list[dockerfile.Command]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.cmd == "ENV":
            values = instruction.value
            env.update(zip(values[::2], values[1::2], strict=True))
    return env


def _base_image(stage: list[dockerfile.Command]) -> str:
    image: str = stage[0].value[0]
    for key, value in _global_args().items():
        image = image.replace("${" + key + "}", value)
    return image


def test_multi_stage_on_slim_python_311() -> None:
    stages = _stages()
    assert len(stages) >= 2
    for stage in stages:
        assert _base_image(stage) == "python:3.11-slim"
    runtime = stages[-1]
    copies = [i for i in runtime if i.cmd == "COPY"]
    assert copies and all("--from=build" in i.flags for i in copies), (
        "the final stage copies only the built environment"
    )
    assert not any(i.cmd == "RUN" and "pip install" in i.value[0] for i in runtime)


def test_extras_from_a_build_argument_and_torch_from_the_cpu_index() -> None:
    build = _stages()[0]
    args = dict(i.value[0].partition("=")[::2] for i in build if i.cmd == "ARG")
    extras = args["EXTRAS"].split(",")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extras and all(extra in declared for extra in extras)
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    installs = [i.value[0] for i in build if i.cmd == "RUN" and "pip install" in i.value[0]]
    assert len(installs) == 1
    assert '--extra-index-url "${TORCH_INDEX_URL}"' in installs[0]
    assert '".[${EXTRAS}]"' in installs[0]


def test_runs_as_a_numeric_non_root_user() -> None:
    user = _one(_stages()[-1], "USER").value[0]
    uid = user.split(":")[0]
    assert uid.isdigit(), "a numeric uid lets Kubernetes' runAsNonRoot check it"
    assert int(uid) != 0


def test_entrypoint_ports_and_default_repository() -> None:
    runtime = _stages()[-1]
    entrypoint = _one(runtime, "ENTRYPOINT")
    assert entrypoint.json, "exec form: signals reach oipserve itself, not a shell"
    assert entrypoint.value == ("oipserve", "serve")
    assert not any(i.cmd == "CMD" for i in runtime)
    assert _one(runtime, "EXPOSE").value == ("8080", "8081")
    assert _env(runtime)["OIPSERVE_MODEL_REPOSITORY"] == "/mnt/models"


def test_healthcheck_is_python_on_health_live() -> None:
    healthcheck = _one(_stages()[-1], "HEALTHCHECK")
    assert healthcheck.json
    assert healthcheck.value[:3] == ("CMD", "python", "-c")
    assert "/v2/health/live" in healthcheck.value[3]


def test_dockerignore_keeps_only_the_sources() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        source.rstrip("/")
        for stage in _stages()
        for i in stage
        if i.cmd == "COPY" and not i.flags
        for source in i.value[:-1]
    }
    assert copied <= kept, "every file the build copies is in the build context"


def _run_healthcheck(http_port: int) -> subprocess.CompletedProcess[bytes]:
    """Run the HEALTHCHECK's command, this interpreter standing in for the image's ``python``."""
    command = list(_one(_stages()[-1], "HEALTHCHECK").value[1:])
    assert command[0] == "python"
    return subprocess.run(
        [sys.executable, *command[1:]],
        check=False,
        env={"OIPSERVE_HTTP_PORT": str(http_port)},
        capture_output=True,
        timeout=30,
    )


def test_entrypoint_serves_the_default_repository_and_healthcheck_passes(
    examples_repository: Path, tmp_path: Path
) -> None:
    """The image's ENTRYPOINT with no arguments, its ENV (the repository swapped for a temporary
    folder, the ports moved with the environment variables), then its HEALTHCHECK."""
    repository = tmp_path / "mnt-models"
    shutil.copytree(examples_repository / "iris", repository / "iris")
    runtime = _stages()[-1]
    env = {key: value for key, value in _env(runtime).items() if key != "PATH"}
    env["OIPSERVE_MODEL_REPOSITORY"] = str(repository)
    http_port, grpc_port = free_port(), free_port()
    env |= {"OIPSERVE_HTTP_PORT": str(http_port), "OIPSERVE_GRPC_PORT": str(grpc_port)}
    entrypoint = list(_one(runtime, "ENTRYPOINT").value)
    scripts = Path(sys.executable).parent
    command = [str(scripts / entrypoint[0]), *entrypoint[1:]]
    with run_command(command, http_port, grpc_port, tmp_dir=tmp_path, env=env) as running:
        client = httpclient.InferenceServerClient(running.http_url)
        features = httpclient.InferInput("input-0", [1, 4], "FP32")
        features.set_data_from_numpy(np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32))
        result = client.infer("iris", [features])
        assert result.as_numpy("predict").tolist() == [0]
        check = _run_healthcheck(http_port)
        assert check.returncode == 0, check.stderr.decode()
    check = _run_healthcheck(http_port)
    assert check.returncode != 0, "the health check fails once the server is gone"


def test_entrypoint_without_a_repository_folder_fails_clearly(tmp_path: Path) -> None:
    scripts = Path(sys.executable).parent
    env = {**os.environ, "OIPSERVE_MODEL_REPOSITORY": str(tmp_path / "mnt-models")}
    result = subprocess.run(
        [str(scripts / "oipserve"), "serve"], check=False, env=env, capture_output=True, timeout=60
    )
    assert result.returncode != 0
    assert "is not a folder" in result.stderr.decode()
