"""Write the example model files that are not committed (pickles depend on library versions).

    python examples/make_models.py [MODEL_REPOSITORY]

writes ``iris/1/model.joblib``: a scikit-learn LogisticRegression fitted on the iris data set that
scikit-learn ships (nothing is downloaded).

    python examples/make_models.py --all-formats DIR

writes the iris classifier once per runtime, each in a model folder without a config, so that
``oipserve serve DIR`` serves every one by guessing its runtime from the file name:

    DIR/iris-sklearn/model.joblib       scikit-learn LogisticRegression
    DIR/iris-xgboost/model.ubj          XGBoost classifier (multi:softprob)
    DIR/iris-lightgbm/model.txt         LightGBM classifier (multiclass)
    DIR/iris-onnx/model.onnx            the LogisticRegression through skl2onnx (no ZipMap)
    DIR/iris-torch/model.pt2            a small PyTorch softmax classifier, torch.export
    DIR/iris-torchscript/model.pt       the same network as TorchScript

A format whose framework is not installed is skipped with a note saying which extra to install.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True)
    return np.asarray(features, dtype=np.float64), np.asarray(labels, dtype=np.int64)


def make_iris(repository: Path) -> Path:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, labels)
    path = repository / "iris" / "1" / "model.joblib"
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def _target(folder: Path, filename: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / filename


def make_sklearn(folder: Path) -> Path:
    import joblib
    from sklearn.linear_model import LogisticRegression

    features, labels = iris()
    path = _target(folder, "model.joblib")
    joblib.dump(LogisticRegression(max_iter=1000).fit(features, labels), path)
    return path


def make_xgboost(folder: Path) -> Path:
    import xgboost

    features, labels = iris()
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1)
    model.fit(features.astype(np.float32), labels)
    path = _target(folder, "model.ubj")
    model.save_model(path)
    return path


def make_lightgbm(folder: Path) -> Path:
    import lightgbm

    features, labels = iris()
    model = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, n_jobs=1)
    model.fit(features, labels)
    path = _target(folder, "model.txt")
    model.booster_.save_model(path)
    return path


def make_onnx(folder: Path) -> Path:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    features, labels = iris()
    features32 = features.astype(np.float32)
    model = LogisticRegression(max_iter=1000).fit(features32, labels)
    onnx_model = to_onnx(
        model, features32[:1], options={id(model): {"zipmap": False}}, target_opset=17
    )
    path = _target(folder, "model.onnx")
    path.write_bytes(onnx_model.SerializeToString())
    return path


def _torch_iris() -> tuple[Any, Any]:
    import torch

    torch.manual_seed(0)
    features, labels = iris()
    x = torch.from_numpy(features.astype(np.float32))
    y = torch.from_numpy(labels)
    mean, std = x.mean(dim=0), x.std(dim=0)

    class IrisNet(torch.nn.Module):
        mean: torch.Tensor
        std: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.linear((x - self.mean) / self.std), dim=-1)

    net = IrisNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    loss_fn = torch.nn.NLLLoss()
    for _ in range(200):
        optimizer.zero_grad()
        loss = loss_fn(torch.log(net(x)), y)
        loss.backward()
        optimizer.step()
    return net.eval(), x[:2]


def make_torch(folder: Path) -> Path:
    import torch

    net, example = _torch_iris()
    batch = torch.export.Dim("batch")
    program = torch.export.export(net, (example,), dynamic_shapes={"x": {0: batch}})
    path = _target(folder, "model.pt2")
    torch.export.save(program, path)
    return path


def make_torchscript(folder: Path) -> Path:
    import torch

    net, example = _torch_iris()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        warnings.filterwarnings("ignore", message=r"`torch\.jit\..*` is deprecated")
        trace: Any = torch.jit.trace  # untyped in PyTorch's stubs
        scripted = trace(net, example)
    path = _target(folder, "model.pt")
    scripted.save(str(path))
    return path


#: folder name → (writer, modules it needs, extra that provides them)
FORMATS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...], str]] = {
    "iris-sklearn": (make_sklearn, ("sklearn", "joblib"), "sklearn"),
    "iris-xgboost": (make_xgboost, ("sklearn", "xgboost"), "xgboost"),
    "iris-lightgbm": (make_lightgbm, ("sklearn", "lightgbm"), "lightgbm"),
    "iris-onnx": (make_onnx, ("sklearn", "skl2onnx"), "test"),
    "iris-torch": (make_torch, ("sklearn", "torch"), "torch"),
    "iris-torchscript": (make_torchscript, ("sklearn", "torch"), "torch"),
}


def make_all_formats(directory: Path) -> list[Path]:
    written: list[Path] = []
    for name, (writer, modules, extra) in FORMATS.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            print(
                f"skipped {name}: {', '.join(missing)} not installed "
                f"(pip install 'oipserve[{extra}]')"
            )
            continue
        path = writer(directory / name)
        print(f"wrote {path}")
        written.append(path)
    return written


def main(argv: list[str]) -> None:
    if len(argv) > 1 and argv[1] == "--all-formats":
        if len(argv) != 3:
            raise SystemExit("usage: make_models.py --all-formats DIR")
        make_all_formats(Path(argv[2]))
        return
    repository = Path(argv[1]) if len(argv) > 1 else HERE / "models"
    print(f"wrote {make_iris(repository)}")


if __name__ == "__main__":
    main(sys.argv)
