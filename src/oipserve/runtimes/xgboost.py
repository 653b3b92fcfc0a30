"""XGBoost runtime: ``model.ubj``, ``model.json`` or ``model.bst``.

The file is what ``Booster.save_model`` (or ``XGBClassifier``/``XGBRegressor.save_model``, the same
format) writes; it is read from memory, so its format is told by its content, not its extension.
Pickled scikit-learn-API models (``model.pkl``/``model.joblib``) serve with the ``sklearn``
runtime instead.

Input ``input-0`` (or the config's one input): FP32, as many columns as the booster has features
(XGBoost computes in float32). Without ``input`` in the config the model takes any numeric datatype
(BOOL, INT*, UINT*, FP16/32/64) and converts it to float32 as XGBoost does (an integer above 2**24
in magnitude, which float32 cannot hold exactly, is refused); a declared datatype is strict.
Outputs (a request that names none gets all of them, unless the config lists fewer):

- classifiers (objective ``binary:*`` or ``multi:*``): ``predict`` the class index as INT64 (what
  ``XGBClassifier.predict`` returns), and ``predict_proba`` the class probabilities, FP32,
  ``[batch, classes]`` (``[1 - p, p]`` for binary).
  ``binary:hinge`` has no probabilities, so no ``predict_proba``.
- every other objective (``reg:*``, ``count:*``, ``survival:*``, ``rank:*``): ``predict``, what
  ``Booster.predict`` returns, FP32 (``[batch, targets]`` for multi-target models).

Parameters: ``nthread`` (or ``num_threads``), the threads per prediction.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from oipserve.errors import InvalidArgument, ModelLoadError
from oipserve.model import LoadContext, Signature, TensorSpec
from oipserve.runtimes import import_framework
from oipserve.runtimes.base import (
    BatchedModel,
    default_output_names,
    feature_matrix,
    first_line,
)

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"


class XGBoostModel(BatchedModel):
    def __init__(self) -> None:
        self._booster: Any = None
        self._input_name = "input-0"
        self._features = 0
        self._objective = ""
        self._classes = 0
        self._targets = 1
        self._signature: Signature | None = None

    @property
    def objective(self) -> str:
        return self._objective

    @property
    def is_classifier(self) -> bool:
        return self._objective.startswith(("binary:", "multi:"))

    @property
    def has_proba(self) -> bool:
        return self.is_classifier and self._objective != "binary:hinge"

    def load(self, ctx: LoadContext) -> None:
        if ctx.model_file is None:
            raise ModelLoadError(f"model '{ctx.name}' has no model.ubj, model.json or model.bst")
        xgb: Any = import_framework("xgboost", "xgboost")
        try:
            data = bytearray(ctx.model_file.read_bytes())
            booster = xgb.Booster()
            booster.load_model(data)
            config = json.loads(booster.save_config())
            self._features = int(booster.num_features())
        except Exception as exc:
            raise ModelLoadError(
                f"cannot read {ctx.model_file.name} as an XGBoost model: {first_line(exc)}"
            ) from exc
        learner = config.get("learner", {})
        self._objective = str(learner.get("objective", {}).get("name", ""))
        params = learner.get("learner_model_param", {})
        self._classes = int(params.get("num_class", "0") or 0)
        self._targets = int(params.get("num_target", "1") or 1)
        threads = ctx.parameters.get("nthread") or ctx.parameters.get("num_threads")
        if threads:
            try:
                booster.set_param({"nthread": int(threads)})
            except ValueError:
                raise ModelLoadError(
                    f"parameter nthread must be an integer, got {threads!r}"
                ) from None
        self._booster = booster
        declared = ctx.config.input_specs()
        if declared:
            self._input_name = declared[0].name
        else:
            self.converts = {self._input_name: np.dtype(np.float32)}
        self._signature = self._describe(ctx.config.max_batch_size)
        self.default_outputs = default_output_names(ctx, self._signature)

    def _describe(self, max_batch_size: int) -> Signature:
        lead = () if max_batch_size > 0 else (-1,)
        outputs: list[TensorSpec] = []
        if self.is_classifier:
            outputs.append(TensorSpec(PREDICT, "INT64", lead))
            if self.has_proba:
                outputs.append(TensorSpec(PREDICT_PROBA, "FP32", (*lead, self._class_count())))
        else:
            shape = lead if self._targets <= 1 else (*lead, self._targets)
            outputs.append(TensorSpec(PREDICT, "FP32", shape))
        spec = TensorSpec(self._input_name, "FP32", (*lead, self._features))
        inputs = (spec.converting() if self.converts else spec,)
        return Signature(inputs=inputs, outputs=tuple(outputs), platform="xgboost")

    def _class_count(self) -> int:
        return 2 if self._objective.startswith("binary:") else max(self._classes, 1)

    def signature(self) -> Signature | None:
        return self._signature

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        features = feature_matrix(inputs, self._input_name, self._features, "XGBoost")
        wanted = outputs or self.default_outputs
        for name in wanted:
            if name not in (PREDICT, PREDICT_PROBA) or (
                name == PREDICT_PROBA and not self.has_proba
            ):
                raise InvalidArgument(f"unknown output '{name}' for this XGBoost model")
        if not self.is_classifier:
            return {PREDICT: self._run(features)}
        result: dict[str, np.ndarray] = {}
        if self._objective.startswith("binary:"):
            raw = self._run(features)
            if self._objective == "binary:logitraw":
                raw = (1.0 / (1.0 + np.exp(-raw))).astype(np.float32)
            if PREDICT in wanted:
                result[PREDICT] = (raw > 0.5).astype(np.int64)
            if PREDICT_PROBA in wanted:
                result[PREDICT_PROBA] = np.stack([1.0 - raw, raw], axis=-1)
            return result
        if self._objective == "multi:softprob":
            probabilities = self._run(features)
        elif PREDICT_PROBA in wanted:
            probabilities = _softmax(self._run(features, "margin"))
        else:  # multi:softmax, labels only
            return {PREDICT: self._run(features).astype(np.int64)}
        if PREDICT in wanted:
            result[PREDICT] = np.argmax(probabilities, axis=-1).astype(np.int64)
        if PREDICT_PROBA in wanted:
            result[PREDICT_PROBA] = probabilities
        return result

    def _run(self, features: np.ndarray, predict_type: str = "value") -> np.ndarray:
        return np.asarray(
            self._booster.inplace_predict(
                features, predict_type=predict_type, validate_features=False
            )
        )


def _softmax(margins: np.ndarray) -> np.ndarray:
    shifted = np.exp(margins - margins.max(axis=-1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True), dtype=np.float32)
