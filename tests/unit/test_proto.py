"""Our generated gRPC messages: coexistence with tritonclient, wire compatibility, drift."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tritonclient.grpc.model_config_pb2 as triton_config_pb
import tritonclient.grpc.service_pb2 as triton_pb
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from oipserve.protocol import messages
from oipserve.protocol.messages import config_pb, pb

ROOT = Path(__file__).resolve().parents[2]
GENERATED = "oipserve.protocol._generated.oipserve.grpc.v2"

# §4.1, in order.
RPCS = [
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
    "ModelStreamInfer",
    "ModelConfig",
    "ModelStatistics",
    "RepositoryIndex",
    "RepositoryModelLoad",
    "RepositoryModelUnload",
    "SystemSharedMemoryStatus",
    "SystemSharedMemoryRegister",
    "SystemSharedMemoryUnregister",
    "CudaSharedMemoryStatus",
    "CudaSharedMemoryRegister",
    "CudaSharedMemoryUnregister",
    "TraceSetting",
    "LogSettings",
]


def _env() -> dict[str, str]:
    """Environment for a child interpreter that can import oipserve from src/."""
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def _as_dict(msg: Message) -> dict[str, Any]:
    return MessageToDict(msg, preserving_proto_field_name=True)


def _assert_wire_compatible(ours: Message, theirs_cls: Callable[[], Message]) -> None:
    """Ours -> bytes -> theirs, and back, keeps every field.

    A field that the other side did not know would land in its unknown-field set
    and so be missing from its dict.
    """
    data = ours.SerializeToString(deterministic=True)
    theirs = theirs_cls()
    theirs.ParseFromString(data)
    assert _as_dict(theirs) == _as_dict(ours)

    back = type(ours)()
    back.ParseFromString(theirs.SerializeToString(deterministic=True))
    assert back == ours


# ---------------------------------------------------------------- (a) coexistence


def test_packages_do_not_clash_with_tritonclient() -> None:
    assert pb.DESCRIPTOR.package == "oipserve.grpc.v2"
    assert config_pb.DESCRIPTOR.package == "oipserve.grpc.v2"
    assert triton_pb.DESCRIPTOR.package == "inference"
    pool = descriptor_pool.Default()
    assert pool.FindMessageTypeByName("inference.ModelInferRequest") is not None
    assert pool.FindMessageTypeByName("oipserve.grpc.v2.ModelInferRequest") is not None
    assert pool.FindMessageTypeByName("oipserve.grpc.v2.ModelConfig") is not None


@pytest.mark.parametrize("ours_first", [True, False], ids=["ours-first", "triton-first"])
def test_import_order_does_not_matter(ours_first: bool) -> None:
    ours = "from oipserve.protocol.messages import pb, config_pb"
    theirs = "import tritonclient.grpc.service_pb2, tritonclient.grpc.model_config_pb2"
    code = "\n".join([ours, theirs] if ours_first else [theirs, ours])
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, env=_env())


def test_messages_module() -> None:
    assert messages.__all__ == ["SERVICE_NAME", "config_pb", "int64_as_numbers", "pb"]
    assert messages.SERVICE_NAME == "inference.GRPCInferenceService"
    assert pb.__name__ == f"{GENERATED}.grpc_service_pb2"
    assert config_pb.__name__ == f"{GENERATED}.model_config_pb2"
    assert pb.ModelConfigResponse.DESCRIPTOR.fields_by_name["config"].message_type is (
        config_pb.ModelConfig.DESCRIPTOR
    )


def test_generated_classes_name_their_real_module() -> None:
    assert pb.ModelInferRequest.__module__ == f"{GENERATED}.grpc_service_pb2"
    request = pb.ModelInferRequest(model_name="m", id="1")
    assert pickle.loads(pickle.dumps(request)) == request


def test_service_declares_all_rpcs() -> None:
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert [m.name for m in service.methods] == RPCS
    streaming = [m.name for m in service.methods if m.client_streaming or m.server_streaming]
    assert streaming == ["ModelStreamInfer"]
    stream = service.methods_by_name["ModelStreamInfer"]
    assert stream.client_streaming
    assert stream.server_streaming
    assert stream.output_type is pb.ModelStreamInferResponse.DESCRIPTOR


def test_model_metadata_response_has_no_field_6() -> None:
    assert [f.number for f in pb.ModelMetadataResponse.DESCRIPTOR.fields] == [1, 2, 3, 4, 5]


# ---------------------------------------------------------------- (b) wire compatibility


def _field_shape(field: FieldDescriptor) -> tuple[object, ...]:
    ref = field.message_type or field.enum_type
    oneof = field.containing_oneof
    return (
        field.name,
        field.number,
        field.type,
        ref.name if ref is not None else None,
        field.is_repeated,
        oneof.name if oneof is not None else None,
    )


def _assert_superset(ours: Descriptor, theirs: Descriptor) -> None:
    """Every field, nested message and enum value tritonclient knows is in ours, identically."""
    ours_fields = {f.number: f for f in ours.fields}
    for field in theirs.fields:
        assert field.number in ours_fields, f"{theirs.full_name}.{field.name} missing"
        assert _field_shape(ours_fields[field.number]) == _field_shape(field)
    ours_nested = {n.name: n for n in ours.nested_types}
    for nested in theirs.nested_types:
        _assert_superset(ours_nested[nested.name], nested)
    ours_enums = {e.name: e for e in ours.enum_types}
    for enum in theirs.enum_types:
        ours_values = {(v.name, v.number) for v in ours_enums[enum.name].values}
        assert {(v.name, v.number) for v in enum.values} <= ours_values


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(pb, triton_pb), (config_pb, triton_config_pb)],
    ids=["grpc_service", "model_config"],
)
def test_descriptors_cover_tritonclient(ours: Any, theirs: Any) -> None:
    ours_messages = ours.DESCRIPTOR.message_types_by_name
    for name, descriptor in theirs.DESCRIPTOR.message_types_by_name.items():
        _assert_superset(ours_messages[name], descriptor)
    for name, enum in theirs.DESCRIPTOR.enum_types_by_name.items():
        ours_enum = ours.DESCRIPTOR.enum_types_by_name[name]
        assert [(v.name, v.number) for v in ours_enum.values] == [
            (v.name, v.number) for v in enum.values
        ]


def _params() -> dict[str, pb.InferParameter]:
    return {
        "bool": pb.InferParameter(bool_param=True),
        "int64": pb.InferParameter(int64_param=-(2**40)),
        "string": pb.InferParameter(string_param="s"),
        "double": pb.InferParameter(double_param=0.25),
        "uint64": pb.InferParameter(uint64_param=2**63 + 1),
    }


def test_model_infer_request_typed_contents() -> None:
    tensor = pb.ModelInferRequest.InferInputTensor
    request = pb.ModelInferRequest(
        model_name="m",
        model_version="2",
        id="req-1",
        parameters=_params(),
        inputs=[
            tensor(
                name="b",
                datatype="BOOL",
                shape=[2],
                parameters={"binary_data_size": pb.InferParameter(int64_param=2)},
                contents=pb.InferTensorContents(bool_contents=[True, False]),
            ),
            tensor(
                name="i8",
                datatype="INT8",
                shape=[2],
                contents=pb.InferTensorContents(int_contents=[-128, 127]),
            ),
            tensor(
                name="i64",
                datatype="INT64",
                shape=[1],
                contents=pb.InferTensorContents(int64_contents=[-(2**62)]),
            ),
            tensor(
                name="u16",
                datatype="UINT16",
                shape=[1],
                contents=pb.InferTensorContents(uint_contents=[65535]),
            ),
            tensor(
                name="u64",
                datatype="UINT64",
                shape=[1],
                contents=pb.InferTensorContents(uint64_contents=[2**64 - 1]),
            ),
            tensor(
                name="f32",
                datatype="FP32",
                shape=[2],
                contents=pb.InferTensorContents(fp32_contents=[1.5, -2.25]),
            ),
            tensor(
                name="f64",
                datatype="FP64",
                shape=[1],
                contents=pb.InferTensorContents(fp64_contents=[0.1]),
            ),
            tensor(
                name="s",
                datatype="BYTES",
                shape=[2],
                contents=pb.InferTensorContents(bytes_contents=[b"ab", b"\x00\xff"]),
            ),
        ],
        outputs=[
            pb.ModelInferRequest.InferRequestedOutputTensor(
                name="out", parameters={"classification": pb.InferParameter(int64_param=3)}
            )
        ],
    )
    _assert_wire_compatible(request, triton_pb.ModelInferRequest)


def test_model_infer_request_raw_contents() -> None:
    request = pb.ModelInferRequest(
        model_name="m",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 2]),
            pb.ModelInferRequest.InferInputTensor(name="s", datatype="BYTES", shape=[1]),
        ],
        raw_input_contents=[b"\x00\x00\xc0?\x00\x00\x10\xc0", b"\x02\x00\x00\x00hi"],
    )
    _assert_wire_compatible(request, triton_pb.ModelInferRequest)

    # And what tritonclient itself builds parses into ours.
    theirs = triton_pb.ModelInferRequest(model_name="m", id="x")
    theirs.parameters["sequence_id"].uint64_param = 7
    theirs.parameters["priority"].int64_param = 1
    theirs.raw_input_contents.append(b"\x01\x02")
    ours = pb.ModelInferRequest.FromString(theirs.SerializeToString())
    assert ours.parameters["sequence_id"].WhichOneof("parameter_choice") == "uint64_param"
    assert ours.parameters["sequence_id"].uint64_param == 7
    assert list(ours.raw_input_contents) == [b"\x01\x02"]


def _infer_response() -> pb.ModelInferResponse:
    return pb.ModelInferResponse(
        model_name="m",
        model_version="1",
        id="req-1",
        parameters={"triton_final_response": pb.InferParameter(bool_param=True)},
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(
                name="y",
                datatype="FP32",
                shape=[1, 2],
                parameters={"binary_data_size": pb.InferParameter(int64_param=8)},
            ),
            pb.ModelInferResponse.InferOutputTensor(name="empty", datatype="INT32", shape=[0]),
        ],
        raw_output_contents=[b"\x00\x00\xc0?\x00\x00\x10\xc0", b""],
    )


def test_model_infer_response() -> None:
    _assert_wire_compatible(_infer_response(), triton_pb.ModelInferResponse)


def test_model_stream_infer_response() -> None:
    ok = pb.ModelStreamInferResponse(infer_response=_infer_response())
    _assert_wire_compatible(ok, triton_pb.ModelStreamInferResponse)
    failed = pb.ModelStreamInferResponse(
        error_message="boom", infer_response=pb.ModelInferResponse(id="req-2")
    )
    _assert_wire_compatible(failed, triton_pb.ModelStreamInferResponse)


def test_model_metadata_response() -> None:
    meta = pb.ModelMetadataResponse.TensorMetadata
    response = pb.ModelMetadataResponse(
        name="m",
        versions=["1", "2"],
        platform="sklearn",
        inputs=[meta(name="x", datatype="FP32", shape=[-1, 4])],
        outputs=[meta(name="y", datatype="INT64", shape=[-1])],
    )
    _assert_wire_compatible(response, triton_pb.ModelMetadataResponse)


def test_model_statistics_response() -> None:
    def duration(count: int) -> pb.StatisticDuration:
        return pb.StatisticDuration(count=count, ns=count * 1000)

    stats = pb.ModelStatistics(
        name="m",
        version="1",
        last_inference=1_700_000_000_000,
        inference_count=10,
        execution_count=4,
        inference_stats=pb.InferStatistics(
            success=duration(10),
            fail=duration(1),
            queue=duration(10),
            compute_input=duration(4),
            compute_infer=duration(4),
            compute_output=duration(4),
            cache_hit=duration(0),
            cache_miss=duration(2),
        ),
        batch_stats=[
            pb.InferBatchStatistics(
                batch_size=2,
                compute_input=duration(2),
                compute_infer=duration(2),
                compute_output=duration(2),
            )
        ],
        memory_usage=[pb.MemoryUsage(type="CPU", id=0, byte_size=4096)],
    )
    response = pb.ModelStatisticsResponse(model_stats=[stats])
    _assert_wire_compatible(response, triton_pb.ModelStatisticsResponse)


def test_repository_index_response() -> None:
    index = pb.RepositoryIndexResponse.ModelIndex
    response = pb.RepositoryIndexResponse(
        models=[
            index(name="a", version="1", state="READY"),
            index(name="b", version="3", state="UNAVAILABLE", reason="load failed"),
        ]
    )
    _assert_wire_compatible(response, triton_pb.RepositoryIndexResponse)


def test_repository_model_load_request() -> None:
    param = pb.ModelRepositoryParameter
    request = pb.RepositoryModelLoadRequest(
        repository_name="",
        model_name="m",
        parameters={
            "config": param(string_param='{"max_batch_size": 8}'),
            "file:1/model.onnx": param(bytes_param=b"\x08\x07onnx"),
            "unload_dependents": param(bool_param=True),
            "n": param(int64_param=-1),
        },
    )
    _assert_wire_compatible(request, triton_pb.RepositoryModelLoadRequest)


def _model_config() -> config_pb.ModelConfig:
    cfg = config_pb
    return cfg.ModelConfig(
        name="m",
        platform="onnxruntime_onnx",
        backend="onnxruntime",
        version_policy=cfg.ModelVersionPolicy(
            specific=cfg.ModelVersionPolicy.Specific(versions=[1, 3])
        ),
        max_batch_size=8,
        input=[
            cfg.ModelInput(
                name="x",
                data_type=cfg.TYPE_FP32,
                format=cfg.ModelInput.FORMAT_NCHW,
                dims=[3, -1, -1],
                reshape=cfg.ModelTensorReshape(shape=[3, 224, 224]),
                optional=True,
            ),
            cfg.ModelInput(name="s", data_type=cfg.TYPE_STRING, dims=[1]),
        ],
        output=[
            cfg.ModelOutput(
                name="y", data_type=cfg.TYPE_BF16, dims=[1000], label_filename="labels.txt"
            )
        ],
        dynamic_batching=cfg.ModelDynamicBatching(
            preferred_batch_size=[4, 8],
            max_queue_delay_microseconds=100,
            preserve_ordering=True,
            priority_levels=2,
            default_priority_level=1,
            default_queue_policy=cfg.ModelQueuePolicy(
                timeout_action=cfg.ModelQueuePolicy.DELAY,
                default_timeout_microseconds=5000,
                allow_timeout_override=True,
                max_queue_size=64,
            ),
            priority_queue_policy={2: cfg.ModelQueuePolicy(max_queue_size=8)},
        ),
        instance_group=[
            cfg.ModelInstanceGroup(
                name="cpu", kind=cfg.ModelInstanceGroup.KIND_CPU, count=2, host_policy="cpu"
            ),
            cfg.ModelInstanceGroup(kind=cfg.ModelInstanceGroup.KIND_GPU, count=1, gpus=[0, 1]),
        ],
        parameters={"threads": cfg.ModelParameter(string_value="4")},
        metric_tags={"team": "ml"},
        model_transaction_policy=cfg.ModelTransactionPolicy(decoupled=True),
        response_cache=cfg.ModelResponseCache(enable=True),
    )


def test_model_config_response() -> None:
    response = pb.ModelConfigResponse(config=_model_config())
    _assert_wire_compatible(response, triton_pb.ModelConfigResponse)
    triton_config = triton_pb.ModelConfigResponse.FromString(response.SerializeToString()).config
    assert triton_config.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert triton_config.input[0].data_type == triton_config_pb.TYPE_FP32


def test_model_config_sequence_batching() -> None:
    seq = config_pb.ModelSequenceBatching
    control = seq.Control
    config = config_pb.ModelConfig(
        name="s",
        sequence_batching=seq(
            oldest=seq.StrategyOldest(max_candidate_sequences=4, preferred_batch_size=[2]),
            max_sequence_idle_microseconds=1_000_000,
            control_input=[
                seq.ControlInput(
                    name="START",
                    control=[control(kind=control.CONTROL_SEQUENCE_START, int32_false_true=[0, 1])],
                ),
                seq.ControlInput(
                    name="CORRID",
                    control=[
                        control(
                            kind=control.CONTROL_SEQUENCE_CORRID, data_type=config_pb.TYPE_UINT64
                        )
                    ],
                ),
            ],
            state=[
                seq.State(
                    input_name="in",
                    output_name="out",
                    data_type=config_pb.TYPE_FP32,
                    dims=[4],
                    initial_state=[seq.InitialState(name="z", zero_data=True, dims=[4])],
                )
            ],
        ),
    )
    _assert_wire_compatible(config, triton_config_pb.ModelConfig)


def test_triton_model_config_parses_into_ours() -> None:
    theirs = triton_config_pb.ModelConfig(name="t", max_batch_size=4)
    theirs.version_policy.latest.num_versions = 2
    theirs.ensemble_scheduling.step.add(model_name="a", model_version=-1).input_map["x"] = "X"
    theirs.optimization.execution_accelerators.cpu_execution_accelerator.add(name="openvino")
    warmup = theirs.model_warmup.add(name="w", batch_size=1)
    warmup.inputs["x"].random_data = True
    theirs.batch_input.add(kind=1, target_name=["n"], data_type=8, source_input=["x"])
    ours = config_pb.ModelConfig.FromString(theirs.SerializeToString())
    assert _as_dict(ours) == _as_dict(theirs)
    assert ours.WhichOneof("scheduling_choice") == "ensemble_scheduling"
    assert ours.ensemble_scheduling.step[0].model_version == -1


# ---------------------------------------------------------------- (c) drift


def test_generated_code_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_proto.py"), "--check"],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
