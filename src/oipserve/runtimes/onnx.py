"""ONNX Runtime: ``model.onnx`` in an ``onnxruntime.InferenceSession``.

Signature: the graph's inputs and outputs, by name, with their datatypes and dims (symbolic or
unknown dims are ``-1``). With ``max_batch_size = 0`` (the default, and so every folder without a
config) the dims are the graph's full dims, the leading batch dim included (``[-1, 4]`` for an
``[N, 4]`` input); with ``max_batch_size > 0`` the leading dim is taken to be the batch and left
out, as Triton does.

Outputs: every graph output by default; a request that names outputs gets only those, and only
those are computed. A ``seq(map(key, tensor(float)))`` output, the ``output_probability`` that
skl2onnx's ZipMap adds to classifiers, is answered as an FP32 ``[batch, classes]`` tensor whose
columns are the map's keys in ascending order (converting with ``options={"zipmap": False}``
avoids that per-row step). Other sequence or map outputs are not offered.

Parameters (all optional): ``intra_op_num_threads`` and ``inter_op_num_threads`` (Triton's
``intra_op_thread_count`` / ``inter_op_thread_count`` too), ``graph_optimization_level``
(``disable`` | ``basic`` | ``extended`` | ``all``, or ONNX Runtime's ``ORT_*`` names),
``execution_mode`` (``sequential`` | ``parallel``) and ``execution_providers``, a comma list in
priority order (``CUDAExecutionProvider,CPUExecutionProvider``; ``cuda,cpu`` works too). The
default is the CPU provider alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from oipserve.errors import InvalidArgument, ModelLoadError
from oipserve.model import LoadContext, Signature, TensorSpec
from oipserve.protocol.datatypes import dtype_of
from oipserve.runtimes import import_framework
from oipserve.runtimes.base import BatchedModel, first_line

#: ONNX Runtime's type strings → protocol datatypes
TENSOR_TYPES: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(bfloat16)": "BF16",
    "tensor(string)": "BYTES",
}

DEFAULT_MAX_BATCH_SIZE = 4
"""Triton's ``--backend-config=default-max-batch-size`` default, used by auto-complete."""

_THREAD_PARAMETERS = {
    "intra_op_num_threads": "intra_op_num_threads",
    "intra_op_thread_count": "intra_op_num_threads",
    "inter_op_num_threads": "inter_op_num_threads",
    "inter_op_thread_count": "inter_op_num_threads",
}


@dataclass(frozen=True, slots=True)
class _Port:
    """A graph input or output as the runtime uses it."""

    name: str
    datatype: str
    dims: tuple[int, ...] | None
    """Full dims, ``-1`` where symbolic; ``None`` when the graph leaves the rank open."""
    zipmap: bool = False
    """A sequence of maps (skl2onnx's ``output_probability``), answered as a 2-D tensor."""


class OnnxModel(BatchedModel):
    def __init__(self) -> None:
        self._session: Any = None
        self._invalid_argument: type[Exception] = ValueError
        self._inputs: dict[str, _Port] = {}
        self._outputs: dict[str, _Port] = {}
        self._signature: Signature | None = None
        self.default_outputs = ()
        self.providers: list[str] = []

    def load(self, ctx: LoadContext) -> None:
        if ctx.model_file is None:
            raise ModelLoadError(f"model '{ctx.name}' has no model.onnx")
        ort: Any = import_framework("onnxruntime", "onnx")
        options = session_options(ort, ctx.parameters)
        providers = execution_providers(ort, ctx.parameters.get("execution_providers", ""))
        try:
            session = ort.InferenceSession(
                str(ctx.model_file), sess_options=options, providers=providers
            )
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load {ctx.model_file.name} into ONNX Runtime: {first_line(exc)}"
            ) from exc
        state = import_framework("onnxruntime.capi.onnxruntime_pybind11_state", "onnx")
        self._invalid_argument = getattr(state, "InvalidArgument", ValueError)
        self._session = session
        self.providers = list(session.get_providers())
        self._inputs = {}
        for arg in session.get_inputs():
            datatype = TENSOR_TYPES.get(arg.type)
            if datatype is None:
                raise ModelLoadError(
                    f"input '{arg.name}' of {ctx.model_file.name} has type {arg.type}, which "
                    "the protocol cannot carry"
                )
            self._inputs[arg.name] = _Port(arg.name, datatype, _dims(arg.shape))
        self._outputs = {}
        for arg in session.get_outputs():
            port = _output_port(arg.name, arg.type, arg.shape)
            if port is not None:
                self._outputs[arg.name] = port
        # a request naming no output gets every output of the metadata: the config's list, if any
        declared = tuple(spec.name for spec in ctx.config.output_specs())
        self.default_outputs = declared or tuple(self._outputs)
        completed = self._auto_complete(ctx)
        batched = ctx.config.max_batch_size > 0 or bool(completed)
        self._signature = dataclasses.replace(self._describe(batched), config=completed)

    def _auto_complete(self, ctx: LoadContext) -> dict[str, Any]:
        """Triton's ONNX Runtime auto-complete of the batch (onnxruntime_backend
        ``src/onnxruntime.cc``, ``AutoCompleteMaxBatch``; server docs "Default Max Batch Size and
        Dynamic Batcher"): a ``config.pbtxt`` with no ``max_batch_size`` and no tensors, for a
        graph whose every input and output has a variable first dim, gets
        ``max_batch_size: 4`` (Triton's ``default-max-batch-size``) and ``dynamic_batching {}``
        (added because the batch is above 1 and no scheduler is set)."""
        config = ctx.config
        if not ctx.auto_complete or config.max_batch_size > 0 or config.input or config.output:
            return {}
        ports = [*self._inputs.values(), *self._outputs.values()]
        if not ports or any(not port.dims or port.dims[0] != -1 for port in ports):
            return {}
        completed: dict[str, Any] = {"max_batch_size": DEFAULT_MAX_BATCH_SIZE}
        if config.dynamic_batching is None and config.sequence_batching is None:
            completed["dynamic_batching"] = {}
        return completed

    def _describe(self, batched: bool) -> Signature:
        def spec(port: _Port) -> TensorSpec | None:
            if port.dims is None:
                return None
            dims = port.dims[1:] if batched and port.dims else port.dims
            return TensorSpec(port.name, port.datatype, dims)

        inputs = [spec(port) for port in self._inputs.values()]
        outputs = [spec(port) for port in self._outputs.values()]
        return Signature(
            # a graph input of open rank cannot be declared: then declare none (accept any)
            inputs=() if None in inputs else tuple(s for s in inputs if s is not None),
            outputs=tuple(s for s in outputs if s is not None),
            platform="onnxruntime_onnx",
        )

    def signature(self) -> Signature | None:
        return self._signature

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        feed: dict[str, np.ndarray] = {}
        for name, array in inputs.items():
            port = self._inputs.get(name)
            if port is None:
                raise InvalidArgument(
                    f"unexpected input '{name}'; the model takes {', '.join(self._inputs)}"
                )
            feed[name] = _prepare(port, array)
        missing = [name for name in self._inputs if name not in feed]
        if missing:
            raise InvalidArgument(f"missing input '{missing[0]}'")
        names = outputs or self.default_outputs
        for name in names:
            if name not in self._outputs:
                raise InvalidArgument(
                    f"unknown output '{name}'; the model has {', '.join(self._outputs)}"
                )
        try:
            results = self._session.run(list(names), feed)
        except self._invalid_argument as exc:
            raise InvalidArgument(f"ONNX Runtime rejected the inputs: {first_line(exc)}") from None
        return {
            name: _answer(self._outputs[name], value)
            for name, value in zip(names, results, strict=True)
        }


def session_options(ort: Any, parameters: dict[str, str]) -> Any:
    """An ``ort.SessionOptions`` from the config's parameters."""
    options = ort.SessionOptions()
    for key, attribute in _THREAD_PARAMETERS.items():
        if key in parameters:
            setattr(options, attribute, _non_negative_int(key, parameters[key]))
    level = parameters.get("graph_optimization_level", "").strip()
    if level:
        options.graph_optimization_level = _optimization_level(ort, level)
    mode = parameters.get("execution_mode", "").strip().lower()
    if mode:
        modes = {
            "sequential": ort.ExecutionMode.ORT_SEQUENTIAL,
            "ort_sequential": ort.ExecutionMode.ORT_SEQUENTIAL,
            "parallel": ort.ExecutionMode.ORT_PARALLEL,
            "ort_parallel": ort.ExecutionMode.ORT_PARALLEL,
        }
        if mode not in modes:
            raise ModelLoadError(
                f"parameter execution_mode must be sequential or parallel, got {mode!r}"
            )
        options.execution_mode = modes[mode]
    return options


def _optimization_level(ort: Any, value: str) -> Any:
    levels = ort.GraphOptimizationLevel
    named = {name.lower(): member for name, member in levels.__members__.items()}
    for name, member in list(named.items()):
        named[name.removeprefix("ort_").removeprefix("enable_")] = member
    named["disable"] = named["ort_disable_all"]
    numbers = {"0": "disable", "1": "basic", "2": "extended", "99": "all"}
    key = numbers.get(value, value).lower()
    if key not in named:
        raise ModelLoadError(
            f"parameter graph_optimization_level must be one of disable, basic, extended, all; "
            f"got {value!r}"
        )
    return named[key]


def execution_providers(ort: Any, value: str) -> list[str]:
    """The providers named in ``value`` (comma list), resolved against those available."""
    available: list[str] = list(ort.get_available_providers())
    wanted = [name.strip() for name in value.split(",") if name.strip()]
    if not wanted:
        return ["CPUExecutionProvider"]
    by_key = {name.lower(): name for name in available}
    by_key.update({name.lower().removesuffix("executionprovider"): name for name in available})
    resolved: list[str] = []
    for name in wanted:
        provider = by_key.get(name.lower())
        if provider is None:
            raise ModelLoadError(
                f"execution provider '{name}' is not available in this ONNX Runtime; "
                f"available: {', '.join(available)}"
            )
        resolved.append(provider)
    return resolved


def _non_negative_int(key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise ModelLoadError(f"parameter {key} must be a non-negative integer, got {value!r}")
    return number


def _dims(shape: Any) -> tuple[int, ...] | None:
    if shape is None:
        return None
    return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape)


def _output_port(name: str, type_name: str, shape: Any) -> _Port | None:
    datatype = TENSOR_TYPES.get(type_name)
    if datatype is not None:
        return _Port(name, datatype, _dims(shape))
    if type_name.startswith("seq(map(") and type_name.endswith(",tensor(float)))"):
        return _Port(name, "FP32", (-1, -1), zipmap=True)
    return None


def _prepare(port: _Port, array: np.ndarray) -> np.ndarray:
    """Check ``array`` against the graph's dims and give it the graph's element type."""
    if port.dims is not None:
        _check_shape(port.name, port.dims, array.shape)
    if port.datatype == "BYTES":
        if array.dtype != np.object_:
            return array
        flat = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.ravel()]
        return np.array(flat, dtype=object).reshape(array.shape)
    expected = dtype_of(port.datatype)
    if array.dtype != expected:
        if array.dtype == np.object_:
            raise InvalidArgument(f"input '{port.name}' must be {port.datatype}, not BYTES")
        array = array.astype(expected)
    return array


def _check_shape(name: str, dims: tuple[int, ...], shape: tuple[int, ...]) -> None:
    if len(dims) != len(shape):
        raise InvalidArgument(
            f"input '{name}' has shape {list(shape)}, expected {list(dims)} "
            f"({len(dims)} dimensions, got {len(shape)})"
        )
    for axis, (want, got) in enumerate(zip(dims, shape, strict=True)):
        if want not in (-1, got):
            if len(dims) == 2 and axis == 1:
                raise InvalidArgument(
                    f"input '{name}': expected {want} features per row, got {got}"
                )
            raise InvalidArgument(f"input '{name}' has shape {list(shape)}, expected {list(dims)}")


def _answer(port: _Port, value: Any) -> np.ndarray:
    if port.zipmap:
        return np.array([list(row.values()) for row in value], dtype=np.float32)
    array = np.asarray(value)
    if array.dtype == np.object_ or array.dtype.kind == "U":
        flat = [v.encode("utf-8") if isinstance(v, str) else v for v in array.ravel()]
        return np.array(flat, dtype=object).reshape(array.shape)
    return array
