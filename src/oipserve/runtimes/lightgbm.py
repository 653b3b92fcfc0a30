"""LightGBM runtime: ``model.txt``, what ``Booster.save_model`` writes.

Input ``input-0`` (or the config's one input): FP64, as many columns as the booster has features
(LightGBM compares against double thresholds; FP32 works too when the config declares it).
Without ``input`` in the config the model takes any numeric datatype (BOOL, INT*, UINT*,
FP16/32/64) and converts it to float64, as ``Booster.predict`` does (an integer above 2**53 in
magnitude, which float64 cannot hold exactly, is refused); a declared datatype is strict.
A request that names no output gets every output below, unless the config lists fewer.
The objective in the file's header tells a classifier from a regressor:

- ``binary``, ``multiclass``, ``multiclassova``: ``predict`` the class index as INT64 (what
  ``LGBMClassifier.predict`` returns for labels ``0 … k-1``; a booster does not keep the original
  labels), and ``predict_proba`` the class probabilities, FP64, ``[batch, classes]`` (``[1 - p, p]``
  for binary).
- every other objective: ``predict``, what ``Booster.predict`` returns, FP64.

Parameters: ``num_threads``, the threads per prediction (LightGBM's default: all cores).
"""

from __future__ import annotations

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
CLASSIFIER_OBJECTIVES = frozenset({"binary", "multiclass", "multiclassova"})


class LightGBMModel(BatchedModel):
    def __init__(self) -> None:
        self._booster: Any = None
        self._input_name = "input-0"
        self._features = 0
        self._objective = ""
        self._classes = 0
        self._predict_kwargs: dict[str, Any] = {}
        self._signature: Signature | None = None

    @property
    def objective(self) -> str:
        return self._objective

    @property
    def is_classifier(self) -> bool:
        return self._objective in CLASSIFIER_OBJECTIVES

    def load(self, ctx: LoadContext) -> None:
        if ctx.model_file is None:
            raise ModelLoadError(f"model '{ctx.name}' has no model.txt")
        lgb: Any = import_framework("lightgbm", "lightgbm")
        try:
            data = ctx.model_file.read_bytes()
            check_complete(data)
            text = data.decode("utf-8")
            header = _header(text)
            booster = lgb.Booster(model_str=text)
            self._features = int(booster.num_feature())
        except Exception as exc:
            raise ModelLoadError(
                f"cannot read {ctx.model_file.name} as a LightGBM model: {first_line(exc)}"
            ) from exc
        self._objective = header.get("objective", "").split(" ")[0]
        self._classes = int(header.get("num_class", "1") or 1)
        threads = ctx.parameters.get("num_threads")
        if threads:
            try:
                self._predict_kwargs = {"num_threads": int(threads)}
            except ValueError:
                raise ModelLoadError(
                    f"parameter num_threads must be an integer, got {threads!r}"
                ) from None
        self._booster = booster
        declared = ctx.config.input_specs()
        if declared:
            self._input_name = declared[0].name
        else:
            self.converts = {self._input_name: np.dtype(np.float64)}
        self._signature = self._describe(ctx.config.max_batch_size)
        self.default_outputs = default_output_names(ctx, self._signature)

    def _describe(self, max_batch_size: int) -> Signature:
        lead = () if max_batch_size > 0 else (-1,)
        outputs: list[TensorSpec] = []
        if self.is_classifier:
            width = 2 if self._objective == "binary" else self._classes
            outputs.append(TensorSpec(PREDICT, "INT64", lead))
            outputs.append(TensorSpec(PREDICT_PROBA, "FP64", (*lead, width)))
        else:
            shape = lead if self._classes <= 1 else (*lead, self._classes)
            outputs.append(TensorSpec(PREDICT, "FP64", shape))
        spec = TensorSpec(self._input_name, "FP64", (*lead, self._features))
        inputs = (spec.converting() if self.converts else spec,)
        return Signature(inputs=inputs, outputs=tuple(outputs), platform="lightgbm")

    def signature(self) -> Signature | None:
        return self._signature

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        features = feature_matrix(inputs, self._input_name, self._features, "LightGBM")
        wanted = outputs or self.default_outputs
        for name in wanted:
            if name != PREDICT and not (name == PREDICT_PROBA and self.is_classifier):
                raise InvalidArgument(f"unknown output '{name}' for this LightGBM model")
        raw = np.asarray(self._booster.predict(features, **self._predict_kwargs))
        if not self.is_classifier:
            return {PREDICT: raw}
        probabilities = np.stack([1.0 - raw, raw], axis=-1) if raw.ndim == 1 else raw
        result: dict[str, np.ndarray] = {}
        if PREDICT in wanted:
            result[PREDICT] = np.argmax(probabilities, axis=-1).astype(np.int64)
        if PREDICT_PROBA in wanted:
            result[PREDICT_PROBA] = probabilities
        return result


def check_complete(data: bytes) -> None:
    """Refuse a truncated or cut-up model file before LightGBM sees it.

    LightGBM reads each tree at the offset its header's ``tree_sizes`` gives without checking it
    against the length of the text: a truncated file makes it read past the end and can crash the
    whole process (seen with LightGBM 4.7). So check that every tree starts where ``tree_sizes``
    says and that the ``end of trees`` line follows them.
    """
    start = data.find(b"\nTree=") + 1
    if start == 0:
        raise ValueError("the file holds no trees (is it truncated, or not a LightGBM model?)")
    sizes: list[int] | None = None
    for line in data[:start].splitlines():
        if line.startswith(b"tree_sizes="):
            try:
                sizes = [int(value) for value in line.removeprefix(b"tree_sizes=").split()]
            except ValueError:
                raise ValueError("the tree_sizes line is corrupt") from None
    end = data.find(b"end of trees", start)
    if end < 0:
        raise ValueError("the 'end of trees' line is missing: the file is truncated")
    if sizes is not None:
        offset = start
        for index, size in enumerate(sizes):
            if offset >= end or not data.startswith(b"Tree=", offset):
                raise ValueError(
                    f"tree {index} is not where tree_sizes says: the file is truncated or corrupt"
                )
            offset += size
        if offset > end:
            raise ValueError("the trees overrun 'end of trees': the file is truncated or corrupt")


def _header(text: str) -> dict[str, str]:
    """The ``key=value`` lines before the first tree (``objective``, ``num_class``, …)."""
    header: dict[str, str] = {}
    for line in text[:65536].splitlines():
        if not line.strip() or line.startswith("Tree="):
            if header:
                break
            continue
        key, sep, value = line.partition("=")
        if sep:
            header[key.strip()] = value.strip()
    return header
