"""No code from the network by default (issue 13): a repository ``load`` carrying ``file:``
contents is refused unless the server runs with ``--allow-model-upload``; with it, uploads stay
inside their folder and are bounded; configuration fields naming files stay inside the model's
folder. Through real servers, over REST (httpx: tritonclient.http cannot send file contents as
base64) and gRPC (tritonclient.grpc).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tests.integration.test_repository import (
    config_json,
    index,
    load_request,
    post,
    rpc_error,
    tag_of,
    write_model,
)
from tests.serving import RunningServer, serve

EVIL = """\
from pathlib import Path
from typing import Any

Path({marker!r}).write_text("ran")

import oipserve


class Evil(oipserve.Model):
    def infer(self, requests):
        return []
"""


def _upload_body(marker: Path, extra: dict[str, str] | None = None) -> bytes:
    parameters = {
        "config": config_json(5),
        "file:1/model.py": base64.b64encode(EVIL.format(marker=str(marker)).encode()).decode(),
        **(extra or {}),
    }
    return json.dumps({"parameters": parameters}).encode()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("upload-repo")
    write_model(root, "plain")
    return root


@pytest.fixture(scope="module")
def default_server(
    repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with serve(repository, tmp_dir=tmp_path_factory.mktemp("upload-default")) as running:
        yield running


@pytest.fixture(scope="module")
def upload_server(
    repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with serve(
        repository,
        "--allow-model-upload",
        "--model-upload-max-mb",
        "0.01",
        tmp_dir=tmp_path_factory.mktemp("upload-allowed"),
    ) as running:
        yield running


def test_an_upload_is_refused_by_default_over_rest(
    default_server: RunningServer, tmp_path: Path
) -> None:
    marker = tmp_path / "ran.txt"
    response = post(default_server, "/v2/repository/models/evil/load", _upload_body(marker))
    assert response.status_code == 403
    assert "--allow-model-upload" in response.json()["error"]
    assert not marker.exists()  # the uploaded model.py never ran
    # the same model name without files is an ordinary 404, and the server keeps serving
    assert tag_of(default_server, "plain") == 1
    assert "evil" not in {entry["name"] for entry in index(default_server)}
    assert "--allow-model-upload" not in default_server.log()  # no start-up warning either


def test_an_upload_is_refused_by_default_over_grpc(
    default_server: RunningServer, tmp_path: Path
) -> None:
    marker = tmp_path / "ran.txt"
    client = grpcclient.InferenceServerClient(default_server.grpc_url)
    try:
        with pytest.raises(InferenceServerException) as info:
            client.load_model(
                "evil",
                config=config_json(5),
                files={"file:1/model.py": EVIL.format(marker=str(marker)).encode()},
            )
    finally:
        client.close()
    assert info.value.status() == "StatusCode.PERMISSION_DENIED"
    assert "--allow-model-upload" in info.value.message()
    assert not marker.exists()
    # an empty file is still a file: refused before anything else is looked at
    code, details = rpc_error(
        default_server,
        "RepositoryModelLoad",
        load_request("plain", **{"file:x": {"bytes_param": b""}}),
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "--allow-model-upload" in details
    assert tag_of(default_server, "plain") == 1


def test_a_config_only_load_still_works_by_default(default_server: RunningServer) -> None:
    body = json.dumps({"parameters": {"config": config_json(9)}}).encode()
    response = post(default_server, "/v2/repository/models/plain/load", body)
    assert response.status_code == 200, response.text
    assert tag_of(default_server, "plain") == 9


def test_with_the_flag_an_upload_runs_and_the_start_up_warns(
    upload_server: RunningServer, tmp_path: Path
) -> None:
    assert "--allow-model-upload" in upload_server.log()
    marker = tmp_path / "ran.txt"
    body = json.dumps(
        {"parameters": {"config": config_json(6), "file:1/model.py": _tagged_b64()}}
    ).encode()
    response = post(upload_server, "/v2/repository/models/uploaded/load", body)
    assert response.status_code == 200, response.text
    assert tag_of(upload_server, "uploaded") == 6
    assert not marker.exists()


def _tagged_b64() -> str:
    from tests.integration.test_repository import tagged_source

    return base64.b64encode(tagged_source(3).encode()).decode()


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("../escape.py", 400, "invalid file override path"),
        ("1/../../escape.py", 400, "invalid file override path"),
        ("/tmp/abs.py", 400, "invalid file override path"),
        ("1//model.py", 400, "invalid file override path"),
        ("1\\model.py", 400, "invalid file override path"),
        ("1/./model.py", 400, "invalid file override path"),
        ("/".join(["d"] * 40) + "/x", 400, "invalid file override path"),
    ],
)
def test_uploads_stay_inside_their_folder(
    upload_server: RunningServer, tmp_path: Path, path: str, status: int, message: str
) -> None:
    body = json.dumps(
        {"parameters": {"config": config_json(6), f"file:{path}": _tagged_b64()}}
    ).encode()
    response = post(upload_server, "/v2/repository/models/confined/load", body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert tag_of(upload_server, "plain") == 1


def test_a_file_and_a_folder_of_the_same_name_are_refused(upload_server: RunningServer) -> None:
    body = json.dumps(
        {
            "parameters": {
                "config": config_json(6),
                "file:1": _tagged_b64(),
                "file:1/model.py": _tagged_b64(),
            }
        }
    ).encode()
    response = post(upload_server, "/v2/repository/models/clash/load", body)
    assert response.status_code == 400
    assert "already uses this name" in response.json()["error"]


def test_the_upload_size_is_bounded(upload_server: RunningServer) -> None:
    big = base64.b64encode(b"#" * 20_000).decode()  # over --model-upload-max-mb 0.01
    body = json.dumps({"parameters": {"config": config_json(6), "file:1/model.py": big}}).encode()
    response = post(upload_server, "/v2/repository/models/big/load", body)
    assert response.status_code == 413
    assert "--model-upload-max-mb" in response.json()["error"]
    code, details = rpc_error(
        upload_server,
        "RepositoryModelLoad",
        load_request(
            "big",
            config={"string_param": config_json(6)},
            **{"file:1/model.py": {"bytes_param": b"#" * 20_000}},
        ),
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--model-upload-max-mb" in details


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"default_model_filename": "../../plain/1/model.py"}, "default_model_filename"),
        ({"default_model_filename": "/etc/passwd"}, "default_model_filename"),
        (
            {
                "output": [
                    {
                        "name": "tag",
                        "data_type": "TYPE_INT32",
                        "dims": [1],
                        "label_filename": "../../../etc/hostname",
                    }
                ]
            },
            "label_filename",
        ),
    ],
)
def test_config_fields_naming_files_stay_inside_the_model_folder(
    default_server: RunningServer, extra: dict[str, Any], field: str
) -> None:
    body = json.dumps({"parameters": {"config": config_json(4, **extra)}}).encode()
    response = post(default_server, "/v2/repository/models/plain/load", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert field in error
    assert "inside the model folder" in error
    # the old configuration keeps serving
    assert httpx.get(f"{default_server.base_url}/v2/models/plain/ready").status_code == 200


def test_a_repository_config_naming_a_file_outside_fails_that_model_only(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_model(root, "plain")
    folder = write_model(root, "outside")
    config = folder / "model.toml"
    config.write_text('default_model_filename = "../plain/1/model.py"\n' + config.read_text())
    with serve(root, "--strict-readiness", "false", tmp_dir=tmp_path) as server:
        assert tag_of(server, "plain") == 1
        ready = httpx.get(f"{server.base_url}/v2/models/outside/ready")
        assert ready.status_code == 503
        assert "default_model_filename" in ready.json()["error"]
