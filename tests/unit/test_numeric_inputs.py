"""Zero-config tabular inputs: which datatypes convert, how, and where exactness ends."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import pytest

from oipserve.errors import InvalidArgument
from oipserve.model import InferRequest, InferResponse, InferResult, TensorSpec
from oipserve.protocol.datatypes import DTYPES, NUMERIC_DATATYPES
from oipserve.runtimes.base import BatchedModel, to_float

F64 = np.dtype(np.float64)
F32 = np.dtype(np.float32)


def test_numeric_datatypes_are_all_but_bytes_and_bf16() -> None:
    assert set(DTYPES) - NUMERIC_DATATYPES == {"BYTES", "BF16"}


@pytest.mark.parametrize("datatype", sorted(NUMERIC_DATATYPES))
@pytest.mark.parametrize("target", [F64, F32])
def test_every_numeric_datatype_converts(datatype: str, target: np.dtype[Any]) -> None:
    source = np.array([[0, 1, 1, 0], [1, 0, 1, 1]]).astype(DTYPES[datatype])
    converted = to_float(source, target, "x")
    assert converted.dtype == target
    np.testing.assert_array_equal(converted, source.astype(np.float64))


def test_the_target_dtype_is_returned_as_is() -> None:
    array = np.ones((2, 3))
    assert to_float(array, F64, "x") is array


@pytest.mark.parametrize(
    ("dtype", "target", "limit"),
    [
        (np.int64, F64, 2**53),
        (np.uint64, F64, 2**53),
        (np.int32, F32, 2**24),
        (np.int64, F32, 2**24),
        (np.uint32, F32, 2**24),
    ],
)
def test_integers_convert_exactly_up_to_the_mantissa(
    dtype: Any, target: np.dtype[Any], limit: int
) -> None:
    edge = np.array([limit, 0, 1], dtype=dtype)
    assert to_float(edge, target, "x").tolist() == [float(limit), 0.0, 1.0]
    with pytest.raises(InvalidArgument) as info:
        to_float(np.array([0, limit + 1], dtype=dtype), target, "feature")
    message = str(info.value)
    assert f"input 'feature' holds {limit + 1}" in message
    assert "cannot hold exactly" in message
    if np.iinfo(dtype).min < 0:
        assert to_float(np.array([-limit], dtype=dtype), target, "x").tolist() == [-float(limit)]
        with pytest.raises(InvalidArgument, match=f"holds {-limit - 1}"):
            to_float(np.array([-limit - 1], dtype=dtype), target, "x")


def test_narrow_integers_are_not_even_scanned() -> None:
    """INT32 always fits FP64 and INT16 FP32: no min/max needed (and none can fail)."""
    assert to_float(np.array([np.iinfo(np.int32).max]), F64, "x").item() == 2**31 - 1
    assert to_float(np.array([np.iinfo(np.uint16).max], np.uint16), F32, "x").item() == 65535.0


def test_an_empty_integer_array_converts() -> None:
    assert to_float(np.empty((0, 4), dtype=np.int64), F64, "x").shape == (0, 4)


def test_fp64_to_fp32_rounds_as_xgboost_does() -> None:
    value = np.array([0.1], dtype=np.float64)
    assert to_float(value, F32, "x").item() == np.float32(0.1).item()


@pytest.mark.parametrize(
    "array",
    [np.array([b"a", b"b"], dtype=object), np.array([1.0, 2.0], dtype=ml_dtypes.bfloat16)],
)
def test_bytes_and_bf16_are_refused(array: np.ndarray) -> None:
    with pytest.raises(InvalidArgument, match="cannot be converted to FP64"):
        to_float(array, F64, "x")


def test_a_converting_spec_takes_every_numeric_datatype_and_says_so() -> None:
    strict = TensorSpec("input-0", "FP64", (-1, 4))
    assert strict.takes("FP64") and not strict.takes("FP32")
    assert strict.expected() == "FP64"
    wide = strict.converting()
    assert wide.datatype == "FP64"
    assert all(wide.takes(d) for d in NUMERIC_DATATYPES)
    assert not wide.takes("BYTES") and not wide.takes("BF16")
    assert wide.expected() == (
        "FP64 (or BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, "
        "converted to FP64)"
    )


class Doubler(BatchedModel):
    """Records the dtype ``predict`` saw; doubles its one input."""

    def __init__(self) -> None:
        self.converts = {"x": F64}
        self.default_outputs = ("y",)
        self.seen: list[np.dtype[Any]] = []
        self.calls = 0

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        self.calls += 1
        self.seen.append(inputs["x"].dtype)
        return {"y": inputs["x"] * 2}


def _request(array: np.ndarray) -> InferRequest:
    return InferRequest(inputs={"x": array})


def _outputs(result: InferResult) -> np.ndarray:
    assert isinstance(result, InferResponse), result
    return result.outputs["y"]


def test_requests_of_different_datatypes_batch_together_once_converted() -> None:
    model = Doubler()
    results = model.infer(
        [
            _request(np.array([[1, 2]], dtype=np.int8)),
            _request(np.array([[True, False]])),
            _request(np.array([[0.5, 1.5]], dtype=np.float32)),
        ]
    )
    assert model.calls == 1 and model.seen == [F64]
    assert [_outputs(r).tolist() for r in results] == [[[2.0, 4.0]], [[2.0, 0.0]], [[1.0, 3.0]]]


def test_a_value_that_cannot_convert_fails_only_its_request() -> None:
    model = Doubler()
    results = model.infer(
        [
            _request(np.array([[1, 2]], dtype=np.int64)),
            _request(np.array([[2**60, 2]], dtype=np.int64)),
            _request(np.array([[3, 4]], dtype=np.int64)),
        ]
    )
    assert isinstance(results[1], InvalidArgument)
    assert "cannot hold exactly" in str(results[1])
    assert _outputs(results[0]).tolist() == [[2.0, 4.0]]
    assert _outputs(results[2]).tolist() == [[6.0, 8.0]]
    assert model.calls == 1
    only_bad = model.infer([_request(np.array([[2**60, 2]], dtype=np.int64))])
    assert isinstance(only_bad[0], InvalidArgument) and model.calls == 1


def test_a_model_without_conversions_sees_what_was_sent() -> None:
    model = Doubler()
    model.converts = {}
    model.infer([_request(np.array([[1, 2]], dtype=np.int32))])
    assert model.seen == [np.dtype(np.int32)]
