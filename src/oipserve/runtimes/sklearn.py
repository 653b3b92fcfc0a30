"""scikit-learn runtime: ``model.joblib`` or ``model.pkl``.

Default input ``input-0``, FP64 with ``n_features_in_`` columns. Without ``input`` in the config
the model takes any numeric datatype (BOOL, INT*, UINT*, FP16/32/64) and converts it to float64,
as scikit-learn's ``check_array`` does; a datatype the config declares is strict. Outputs:
``predict``, and ``predict_proba`` for estimators that have it; a request that names no output
gets every output of the model's metadata (both, unless the config lists fewer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from oipserve.errors import InvalidArgument, ModelLoadError
from oipserve.model import LoadContext, Signature, TensorSpec
from oipserve.protocol.datatypes import datatype_of
from oipserve.runtimes import import_framework
from oipserve.runtimes.base import BatchedModel, default_output_names, feature_matrix

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"


class SKLearnModel(BatchedModel):
    def __init__(self) -> None:
        self._model: Any = None
        self._input_name = "input-0"
        self._features: int | None = None
        self._signature: Signature | None = None

    def load(self, ctx: LoadContext) -> None:
        if ctx.model_file is None:
            raise ModelLoadError(f"model '{ctx.name}' has no model.joblib or model.pkl")
        self._model = _read(ctx.model_file)
        if not hasattr(self._model, "predict"):
            raise ModelLoadError(
                f"{ctx.model_file.name} holds a {type(self._model).__name__}, "
                "which has no predict()"
            )
        declared = ctx.config.input_specs()
        if declared:
            self._input_name = declared[0].name
        else:
            self.converts = {self._input_name: np.dtype(np.float64)}
        features = getattr(self._model, "n_features_in_", None)
        self._features = int(features) if features is not None else None
        # without a batch dimension in the config, shapes carry the rows dimension themselves
        self._signature = self._describe(rows=() if ctx.config.max_batch_size > 0 else (-1,))
        self.default_outputs = default_output_names(ctx, self._signature)

    def _describe(self, rows: tuple[int, ...]) -> Signature:
        outputs = [TensorSpec(PREDICT, self._predict_datatype(), rows)]
        if hasattr(self._model, "predict_proba"):
            classes = getattr(self._model, "classes_", None)
            width = len(classes) if classes is not None else -1
            outputs.append(TensorSpec(PREDICT_PROBA, "FP64", (*rows, width)))
        spec = TensorSpec(self._input_name, "FP64", (*rows, self._features or -1))
        inputs = (spec.converting() if self.converts else spec,)
        return Signature(inputs=inputs, outputs=tuple(outputs), platform="sklearn")

    def _predict_datatype(self) -> str:
        classes = getattr(self._model, "classes_", None)
        if classes is not None:
            return datatype_of(np.asarray(classes))
        return "FP64"

    def signature(self) -> Signature | None:
        return self._signature

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        features = feature_matrix(inputs, self._input_name, self._features, "scikit-learn")
        wanted = outputs or self.default_outputs
        result: dict[str, np.ndarray] = {}
        for name in wanted:
            if name == PREDICT:
                result[name] = np.asarray(self._model.predict(features))
            elif name == PREDICT_PROBA and hasattr(self._model, "predict_proba"):
                result[name] = np.asarray(self._model.predict_proba(features))
            else:
                raise InvalidArgument(f"unknown output '{name}' for a scikit-learn model")
        return result


def _read(path: Path) -> Any:
    joblib: Any = import_framework("joblib", "sklearn")
    import_framework("sklearn", "sklearn")
    try:
        return joblib.load(path)
    except Exception as exc:
        raise ModelLoadError(f"cannot read {path.name}: {type(exc).__name__}: {exc}") from exc
