"""oipserve's ``triton_python_backend_utils``: the helpers models call, checked against what
Triton's python_backend does (src/resources/triton_python_backend_utils.py, src/pb_tensor.cc)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from oipserve.compat import triton_python_backend_utils as pb_utils
from oipserve.errors import InvalidArgument, NotFound
from oipserve.model import InferRequest, InferResponse


def test_datatype_tables() -> None:
    assert pb_utils.triton_string_to_numpy("TYPE_FP32") is np.float32
    assert pb_utils.triton_string_to_numpy("TYPE_STRING") is np.object_
    assert pb_utils.numpy_to_triton_type(np.float32) == 11
    assert pb_utils.numpy_to_triton_type(np.bytes_) == 13
    assert pb_utils.triton_to_numpy_type(8) is np.int32
    with pytest.raises(KeyError):
        pb_utils.triton_string_to_numpy("TYPE_NOPE")


def test_byte_tensor_round_trip() -> None:
    values = np.array([b"a", b"", "caf\u00e9".encode()], dtype=np.object_)
    encoded = pb_utils.serialize_byte_tensor(values)
    assert encoded is not None
    assert list(pb_utils.deserialize_bytes_tensor(encoded.tobytes())) == list(values)


def test_tensor() -> None:
    tensor = pb_utils.Tensor("X", np.arange(6, dtype=np.int32).reshape(2, 3))
    assert tensor.name() == "X"
    assert tensor.shape() == [2, 3]
    assert tensor.is_cpu()
    assert tensor.triton_dtype() == 8
    with pytest.raises(pb_utils.TritonModelException, match=r"np\.object_"):
        pb_utils.Tensor("S", np.array(["text"]))
    assert pb_utils.Tensor("B", np.array([b"x"])).as_numpy().dtype == np.object_


def test_dlpack_round_trip_shares_memory() -> None:
    array = np.arange(4, dtype=np.float32)
    tensor = pb_utils.Tensor.from_dlpack("Y", pb_utils.Tensor("X", array).to_dlpack())
    assert tensor.name() == "Y"
    np.testing.assert_array_equal(tensor.as_numpy(), array)
    array[0] = 42.0
    assert tensor.as_numpy()[0] == 42.0
    torch = pytest.importorskip("torch")
    from_torch = pb_utils.Tensor.from_dlpack("T", torch.arange(3, dtype=torch.int64))
    np.testing.assert_array_equal(from_torch.as_numpy(), [0, 1, 2])
    assert torch.from_dlpack(from_torch).tolist() == [0, 1, 2]


def test_config_lookups() -> None:
    config = {
        "input": [{"name": "IN", "data_type": "TYPE_INT32", "dims": [1]}],
        "output": [{"name": "OUT", "data_type": "TYPE_FP32", "dims": [2]}],
        "model_transaction_policy": {"decoupled": True},
    }
    assert pb_utils.get_input_config_by_name(config, "IN")["dims"] == [1]
    assert pb_utils.get_output_config_by_name(config, "OUT")["data_type"] == "TYPE_FP32"
    assert pb_utils.get_input_config_by_name(config, "NOPE") is None
    assert pb_utils.using_decoupled_model_transaction_policy(config)
    assert not pb_utils.using_decoupled_model_transaction_policy({})


def test_model_config_auto_complete_helpers() -> None:
    config = pb_utils.ModelConfig(
        {
            "name": "m",
            "max_batch_size": 0,
            "input": [{"name": "A", "data_type": "TYPE_FP32", "dims": [4]}],
            "output": [],
        }
    )
    config.set_max_batch_size(8)
    config.set_dynamic_batching()
    config.add_input({"name": "A", "data_type": "TYPE_FP32", "dims": [4]})  # the same: kept
    config.add_output({"name": "B", "data_type": "TYPE_INT64", "dims": [-1]})
    config.set_model_transaction_policy({"decoupled": True})
    data = config.as_dict()
    assert data["max_batch_size"] == 8
    assert data["dynamic_batching"] == {}
    assert [i["name"] for i in data["input"]] == ["A"]
    assert data["output"] == [{"name": "B", "data_type": "TYPE_INT64", "dims": [-1]}]
    assert data["model_transaction_policy"] == {"decoupled": True}
    with pytest.raises(ValueError, match="max_batch_size"):
        config.set_max_batch_size(4)
    with pytest.raises(ValueError, match="configuration expects dims"):
        config.add_input({"name": "A", "data_type": "TYPE_FP32", "dims": [5]})
    with pytest.raises(ValueError, match="missing 'dims'"):
        config.add_input({"name": "C", "data_type": "TYPE_FP32"})
    with pytest.raises(ValueError, match="decoupled"):
        config.set_model_transaction_policy({"decoupled": False})
    sequence = pb_utils.ModelConfig({"name": "s", "sequence_batching": {"max": 1}})
    with pytest.raises(ValueError, match="sequence_batching"):
        sequence.set_dynamic_batching()


def test_request_and_response_wrappers() -> None:
    request = InferRequest(
        inputs={"X": np.array([1, 2], dtype=np.int32)},
        parameters={"k": 3},
        outputs=("Y",),
        id="abc",
    )
    wrapped = pb_utils.InferenceRequest.wrap(request, "m", decoupled=False)
    assert wrapped.request_id() == "abc"
    assert wrapped.requested_output_names() == ["Y"]
    assert json.loads(wrapped.parameters()) == {"k": 3}
    assert not wrapped.is_cancelled()
    x = pb_utils.get_input_tensor_by_name(wrapped, "X")
    assert x is not None
    np.testing.assert_array_equal(x.as_numpy(), [1, 2])
    with pytest.raises(pb_utils.TritonModelException, match="decoupled"):
        wrapped.get_response_sender()
    response = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("Y", x.as_numpy())])
    assert not response.has_error()
    converted = pb_utils.to_model_response(response, "m")
    assert isinstance(converted, InferResponse)
    assert list(converted.outputs) == ["Y"]
    failed = pb_utils.InferenceResponse(
        error=pb_utils.TritonError("nope", pb_utils.TritonError.INVALID_ARG)
    )
    assert failed.has_error()
    assert isinstance(pb_utils.to_model_response(failed, "m"), InvalidArgument)
    assert isinstance(pb_utils.triton_to_error(pb_utils.TritonError("x", 2), "m"), NotFound)
    assert isinstance(pb_utils.to_model_response("oops", "m"), pb_utils.TritonModelException)


def test_errors_and_unknown_names() -> None:
    error = pb_utils.TritonError("boom")
    assert error.message() == "boom"
    assert error.code() == pb_utils.TritonError.INTERNAL
    assert str(pb_utils.TritonModelException("bad")) == "bad"
    with pytest.raises(AttributeError, match="get_model_dir is not provided by oipserve"):
        _ = pb_utils.get_model_dir
    assert pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL == 1
    assert pb_utils.TRITONSERVER_REQUEST_FLAG_SEQUENCE_END == 2


def test_bls_outside_a_model_is_refused() -> None:
    request = pb_utils.InferenceRequest(model_name="m", inputs=[], requested_output_names=[])
    response = request.exec()
    assert response.has_error()
    assert "inside a model served by oipserve" in response.error().message()
