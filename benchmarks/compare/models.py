"""Write the benchmark's model repositories, for oipserve or for MLServer.

    python models.py oipserve DEST
    python models.py mlserver DEST

Runs with the Python of the server that will read the pickles (oipserve's ``.venv`` or
MLServer's own virtualenv), so each server loads models written by its own scikit-learn. It
imports only numpy, scikit-learn and joblib. Written under DEST:

    main/           iris (LogisticRegression), identity (echo), forest (RandomForest, 20 features)
    main-batching/  MLServer only: the same with adaptive batching on for iris
    one/            iris alone
    ten/            iris-0 ... iris-9, copies of iris
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent.parent / "examples" / "models"

FOREST_FEATURES = 20
FOREST_TREES = 100
#: MLServer's adaptive batching when on: the same limits as oipserve's iris (64 rows, 200 µs)
MLSERVER_MAX_BATCH_SIZE = 64
MLSERVER_MAX_BATCH_TIME_S = 0.0002

FOREST_TOML = f"""\
backend = "sklearn"

[[input]]
name = "input-0"
data_type = "TYPE_FP32"
dims = [-1, {FOREST_FEATURES}]

[[output]]
name = "predict"
data_type = "TYPE_INT64"
dims = [-1]
"""

#: MLServer's echo runtime: every INPUTk comes back unchanged as OUTPUTk (as oipserve's identity)
ECHO_RUNTIME = '''\
"""Echo runtime for MLServer: each input INPUTk comes back unchanged as OUTPUTk."""

from mlserver import MLModel
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


class EchoRuntime(MLModel):
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                ResponseOutput(
                    name=tensor.name.replace("INPUT", "OUTPUT", 1),
                    shape=tensor.shape,
                    datatype=tensor.datatype,
                    data=tensor.data,
                )
                for tensor in payload.inputs
            ],
        )
'''


def iris_model() -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=1000).fit(features, labels)


def forest_model() -> Any:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    features, labels = make_classification(
        n_samples=2000, n_features=FOREST_FEATURES, n_informative=10, random_state=0
    )
    model = RandomForestClassifier(n_estimators=FOREST_TREES, n_jobs=1, random_state=0)
    return model.fit(features.astype(np.float32), labels)


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def write_oipserve(dest: Path) -> None:
    iris, forest = iris_model(), forest_model()

    def add_iris(repository: Path, name: str) -> None:
        folder = repository / name
        (folder / "1").mkdir(parents=True)
        shutil.copy(EXAMPLES / "iris" / "model.toml", folder / "model.toml")
        joblib.dump(iris, folder / "1" / "model.joblib")

    main = _fresh(dest / "main")
    add_iris(main, "iris")
    shutil.copytree(EXAMPLES / "identity", main / "identity")
    (main / "forest" / "1").mkdir(parents=True)
    (main / "forest" / "model.toml").write_text(FOREST_TOML)
    joblib.dump(forest, main / "forest" / "1" / "model.joblib")
    add_iris(_fresh(dest / "one"), "iris")
    ten = _fresh(dest / "ten")
    for k in range(10):
        add_iris(ten, f"iris-{k}")


def _settings(folder: Path, settings: dict[str, Any]) -> None:
    folder.mkdir(parents=True)
    (folder / "model-settings.json").write_text(json.dumps(settings, indent=2) + "\n")


def write_mlserver(dest: Path) -> None:
    iris, forest = iris_model(), forest_model()

    def add_sklearn(repository: Path, name: str, model: Any, **extra: Any) -> None:
        settings = {
            "name": name,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "1"},
            **extra,
        }
        _settings(repository / name, settings)
        joblib.dump(model, repository / name / "model.joblib")

    batching = {
        "max_batch_size": MLSERVER_MAX_BATCH_SIZE,
        "max_batch_time": MLSERVER_MAX_BATCH_TIME_S,
    }
    for variant, extra in (("main", {}), ("main-batching", batching)):
        repository = _fresh(dest / variant)
        add_sklearn(repository, "iris", iris, **extra)
        add_sklearn(repository, "forest", forest)
        _settings(
            repository / "identity",
            {"name": "identity", "implementation": "echo_runtime.EchoRuntime"},
        )
        (repository / "identity" / "echo_runtime.py").write_text(ECHO_RUNTIME)
    add_sklearn(_fresh(dest / "one"), "iris", iris)
    ten = _fresh(dest / "ten")
    for k in range(10):
        add_sklearn(ten, f"iris-{k}", iris)


def main(argv: list[str]) -> None:
    if len(argv) != 3 or argv[1] not in {"oipserve", "mlserver"}:
        raise SystemExit("usage: models.py oipserve|mlserver DEST")
    dest = Path(argv[2])
    (write_oipserve if argv[1] == "oipserve" else write_mlserver)(dest)


if __name__ == "__main__":
    main(sys.argv)
