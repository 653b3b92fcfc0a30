"""Write the example model files that are not committed (pickles depend on library versions).

    python examples/make_models.py [MODEL_REPOSITORY]

writes ``iris/1/model.joblib``: a scikit-learn LogisticRegression fitted on the iris data set that
scikit-learn ships (nothing is downloaded).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


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


def main(argv: list[str]) -> None:
    repository = Path(argv[1]) if len(argv) > 1 else HERE / "models"
    print(f"wrote {make_iris(repository)}")


if __name__ == "__main__":
    main(sys.argv)
