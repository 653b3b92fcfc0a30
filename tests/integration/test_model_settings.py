"""An MLServer repository served by oipserve: ``model-settings.json`` folders written as
MLServer's documentation writes them (the scikit-learn example: ``implementation``,
``parameters.uri``, ``parameters.version``), through httpx and tritonclient.http.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient

from tests.serving import RunningServer, serve

pytest.importorskip("sklearn")

Served = tuple[RunningServer, np.ndarray, np.ndarray]


def _write_repository(root: Path) -> tuple[np.ndarray, np.ndarray]:
    import joblib
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    features = rng.normal(size=(60, 4))
    labels = (features[:, 0] > 0).astype(np.int64)
    model = LogisticRegression().fit(features, labels)
    # mlserver/docs/examples/sklearn: model-settings.json beside mnist-svm.joblib
    docs = root / "mnist-svm"
    docs.mkdir(parents=True)
    joblib.dump(model, docs / "mnist-svm.joblib")
    (docs / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "mnist-svm",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./mnist-svm.joblib", "version": "v0.1.0"},
            }
        )
    )
    batched = root / "batched"
    batched.mkdir()
    joblib.dump(model, batched / "model.joblib")
    (batched / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "batched",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "max_batch_size": 8,
                "max_batch_time": 0.002,
                "parallel_workers": 1,
            }
        )
    )
    custom = root / "custom"
    custom.mkdir()
    (custom / "model-settings.json").write_text(
        json.dumps({"name": "custom", "implementation": "models.MyCustomRuntime"})
    )
    broken = root / "broken"
    broken.mkdir()
    (broken / "model-settings.json").write_text('{"name": "broken",')
    predicted: np.ndarray = model.predict(features[:3])
    return features[:3], predicted


@pytest.fixture(scope="module")
def mlserver_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("mlserver-repo")
    rows, predicted = _write_repository(root)
    with serve(root, tmp_dir=tmp_path_factory.mktemp("log")) as server:
        yield server, rows, predicted


def _json_request(rows: np.ndarray) -> dict[str, object]:
    return {
        "inputs": [
            {
                "name": "input-0",
                "datatype": "FP64",
                "shape": list(rows.shape),
                "data": rows.ravel().tolist(),
            }
        ]
    }


def test_served_under_its_version_label(mlserver_repo: Served) -> None:
    server, rows, predicted = mlserver_repo
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        metadata = client.get("/v2/models/mnist-svm").json()
        assert metadata["versions"] == ["v0.1.0"]
        for path in ("/v2/models/mnist-svm/versions/v0.1.0/infer", "/v2/models/mnist-svm/infer"):
            response = client.post(path, json=_json_request(rows))
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["model_version"] == "v0.1.0"
            outputs = {o["name"]: o for o in body["outputs"]}
            assert outputs["predict"]["data"] == predicted.tolist()
        missing = client.post("/v2/models/mnist-svm/versions/v9/infer", json=_json_request(rows))
        assert missing.status_code == 404
        assert client.get("/v2/models/mnist-svm/versions/v0.1.0/ready").status_code == 200


def test_tritonclient_reaches_the_version_label(
    mlserver_repo: Served,
) -> None:
    server, rows, _ = mlserver_repo
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        infer_input = httpclient.InferInput("input-0", list(rows.shape), "FP64")
        infer_input.set_data_from_numpy(rows)
        result = client.infer(
            "mnist-svm",
            [infer_input],
            model_version="v0.1.0",
            outputs=[httpclient.InferRequestedOutput("predict_proba")],
        )
        probabilities = result.as_numpy("predict_proba")
        assert probabilities is not None and probabilities.shape == (3, 2)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
        assert client.is_model_ready("mnist-svm", "v0.1.0")
    finally:
        client.close()


def test_batching_settings_become_dynamic_batching(
    mlserver_repo: Served,
) -> None:
    server, rows, _ = mlserver_repo
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        config = client.get("/v2/models/batched/config").json()
        assert config["max_batch_size"] == 8
        assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 2000
        response = client.post("/v2/models/batched/infer", json=_json_request(rows))
        assert response.status_code == 200, response.text


def test_custom_runtimes_and_bad_json_fail_their_load_only(
    mlserver_repo: Served,
) -> None:
    server, rows, _ = mlserver_repo
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        index = {m["name"]: m for m in client.post("/v2/repository/index", json={}).json()}
        assert "custom MLServer runtime" in index["custom"]["reason"]
        assert "pip install mlserver" in index["custom"]["reason"]
        assert "not valid JSON" in index["broken"]["reason"]
        refused = client.post("/v2/models/custom/infer", json=_json_request(rows))
        assert refused.status_code in {400, 404, 503}
        assert "custom MLServer runtime" in refused.json()["error"]
        # the server keeps answering
        assert (
            client.post("/v2/models/mnist-svm/infer", json=_json_request(rows)).status_code == 200
        )
