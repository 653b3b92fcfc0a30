"""Triton's FIL backend (``backend: "fil"``): XGBoost and LightGBM models as FIL serves them.

Triton's Forest Inference Library backend serves tree models with one FP32 input
(``input__0``, ``[rows, features]``) and one FP32 output (``output__0``); what the output holds is
set by ``config.pbtxt`` parameters (triton-inference-server/fil_backend ``docs/model_config.md``):

- ``model_type``: ``xgboost`` (``xgboost.model``, XGBoost's binary format), ``xgboost_json``
  (``xgboost.json``), ``xgboost_ubj`` (``xgboost.ubj``), ``lightgbm`` (``model.txt``);
  ``treelite_checkpoint`` is refused by the reader. The file is found by
  :mod:`oipserve.repository.readers.config_pbtxt`.
- ``output_class`` (default ``false``): ``false`` answers the model's score (a regression value,
  or the positive class's probability); ``true`` answers the class, for classifiers.
- ``predict_proba`` (default ``false``): with ``output_class``, every class's probability
  (``[1 - p, p]`` for a binary model) instead of the class.
- ``threshold`` (default ``0.5``): a binary classifier's class is 1 when the probability is above
  it; multi-class models answer the most probable class.

The tensor names are the config's (FIL's are ``input__0`` / ``output__0``); XGBoost and LightGBM do
the arithmetic, on the CPU (FIL's GPU-only parameters, ``storage_type``, ``algo``,
``use_experimental_optimizations``, ``threads_per_tree``, are accepted and have no effect).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from oipserve.errors import InvalidArgument, ModelLoadError
from oipserve.model import LoadContext, Signature, TensorSpec
from oipserve.runtimes import import_framework
from oipserve.runtimes.base import BatchedModel, feature_matrix, first_line

INPUT = "input__0"
OUTPUT = "output__0"

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


def _flag(ctx: LoadContext, name: str) -> bool:
    value = ctx.parameters.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ModelLoadError(f"parameter {name} must be true or false, got {value!r}")


class FilModel(BatchedModel):
    def __init__(self) -> None:
        self._framework = ""
        self._booster: Any = None
        self._xgb: Any = None
        self._features = 0
        self._classes = 0
        self._input_name = INPUT
        self._output_name = OUTPUT
        self._output_class = False
        self._predict_proba = False
        self._threshold = 0.5
        self._signature: Signature | None = None

    def load(self, ctx: LoadContext) -> None:
        if ctx.model_file is None:
            raise ModelLoadError(f"model '{ctx.name}' has no model file for its model_type")
        model_type = ctx.parameters.get("model_type", "xgboost")
        self._framework = "lightgbm" if model_type == "lightgbm" else "xgboost"
        self._output_class = _flag(ctx, "output_class")
        self._predict_proba = _flag(ctx, "predict_proba")
        threshold = ctx.parameters.get("threshold", "").strip() or "0.5"
        try:
            self._threshold = float(threshold)
        except ValueError:
            raise ModelLoadError(
                f"parameter threshold must be a number, got {threshold!r}"
            ) from None
        try:
            if self._framework == "lightgbm":
                self._load_lightgbm(ctx)
            else:
                self._load_xgboost(ctx)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(
                f"cannot read {ctx.model_file.name} as a {model_type} model: {first_line(exc)}"
            ) from exc
        declared_in = ctx.config.input_specs()
        declared_out = ctx.config.output_specs()
        self._input_name = declared_in[0].name if declared_in else INPUT
        self._output_name = declared_out[0].name if declared_out else OUTPUT
        lead = () if ctx.config.max_batch_size > 0 else (-1,)
        width = self._classes if self._output_class and self._predict_proba else 1
        self._signature = Signature(
            inputs=(TensorSpec(self._input_name, "FP32", (*lead, self._features)),),
            outputs=(TensorSpec(self._output_name, "FP32", (*lead, width)),),
            platform="fil",
        )
        self.default_outputs = (self._output_name,)

    def _load_xgboost(self, ctx: LoadContext) -> None:
        assert ctx.model_file is not None
        xgb: Any = import_framework("xgboost", "xgboost")
        booster = xgb.Booster()
        booster.load_model(bytearray(ctx.model_file.read_bytes()))
        self._features = int(booster.num_features())
        import json

        params = json.loads(booster.save_config())["learner"]["learner_model_param"]
        classes = int(params.get("num_class", "0") or 0)
        self._classes = classes if classes > 1 else 2
        self._booster, self._xgb = booster, xgb

    def _load_lightgbm(self, ctx: LoadContext) -> None:
        assert ctx.model_file is not None
        lgb: Any = import_framework("lightgbm", "lightgbm")
        booster = lgb.Booster(model_str=ctx.model_file.read_text(encoding="utf-8"))
        self._features = int(booster.num_feature())
        classes = int(booster.num_model_per_iteration())
        self._classes = classes if classes > 1 else 2
        self._booster = booster

    def signature(self) -> Signature | None:
        return self._signature

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        for name in outputs:
            if name != self._output_name:
                raise InvalidArgument(f"unknown output '{name}'; the model has {self._output_name}")
        features = feature_matrix(inputs, self._input_name, self._features, "FIL")
        features = np.asarray(features, dtype=np.float32)
        if self._framework == "lightgbm":
            scores = np.asarray(self._booster.predict(features))
        else:
            scores = np.asarray(self._booster.predict(self._xgb.DMatrix(features)))
        return {self._output_name: self._answer(scores).astype(np.float32)}

    def _answer(self, scores: np.ndarray) -> np.ndarray:
        rows = scores.shape[0]
        if not self._output_class:
            return scores.reshape(rows, -1)
        probabilities = np.stack([1.0 - scores, scores], axis=-1) if scores.ndim == 1 else scores
        if self._predict_proba:
            return probabilities
        if scores.ndim == 1:
            return (scores > self._threshold).astype(np.float32).reshape(rows, 1)
        classes: np.ndarray = np.argmax(probabilities, axis=-1)
        return classes.astype(np.float32).reshape(rows, 1)
