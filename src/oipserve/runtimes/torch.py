"""PyTorch runtime: ``model.pt`` (TorchScript) or ``model.pt2`` (a ``torch.export`` program).

- ``model.pt`` is read with ``torch.jit.load`` (what ``torch.jit.script(m).save`` or
  ``torch.jit.trace(m, x).save`` writes; a pickled ``nn.Module`` from ``torch.save`` is refused).
  TorchScript does not record datatypes or shapes, so its tensors come from the config: the
  ``[[input]]`` entries are the ``forward`` arguments in order, the ``[[output]]`` entries name its
  results in order. Without a config the inputs are ``input-0``, ``input-1``, … (positional) and
  the outputs ``output-0``, ``output-1``, …; the model then declares no tensors, so the metadata
  lists none and the server checks no shapes (write a ``model.toml`` to have them).
- ``model.pt2`` is read with ``torch.export.load``; its signature comes from the program: inputs
  named after the ``forward`` arguments, outputs ``output-0``, ``output-1``, …, datatypes and dims
  from the traced tensors (dynamic dims are ``-1``). With ``max_batch_size > 0`` the leading dim is
  the batch and left out of the dims, as for ONNX.

A ``forward`` may return a tensor, a tuple or list of tensors, or a dict of tensors (named by its
keys). Inference runs under ``torch.inference_mode()``; results come back as numpy arrays on the
CPU.

Parameters: ``device`` (default ``cpu``; ``cuda``, ``cuda:1``, …) and ``num_threads``
(``torch.set_num_threads``, which is process-wide).
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from oipserve.errors import InvalidArgument, ModelLoadError
from oipserve.model import LoadContext, Signature, TensorSpec
from oipserve.protocol.datatypes import BFLOAT16
from oipserve.runtimes import import_framework
from oipserve.runtimes.base import BatchedModel, first_line

#: torch dtype name → protocol datatype
DATATYPES: dict[str, str] = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "bfloat16": "BF16",
}


class TorchModel(BatchedModel):
    def __init__(self) -> None:
        self._torch: Any = None
        self._module: Any = None
        self._device: Any = None
        self._exported = False
        self._input_names: tuple[str, ...] = ()
        self._output_names: tuple[str, ...] = ()
        self._named_inputs = False
        """Whether the input names are known (config or program) rather than ``input-N``."""
        self._signature: Signature | None = None
        self.default_outputs = ()

    def load(self, ctx: LoadContext) -> None:
        if ctx.model_file is None:
            raise ModelLoadError(f"model '{ctx.name}' has no model.pt or model.pt2")
        torch: Any = import_framework("torch", "torch")
        self._torch = torch
        device_name = ctx.parameters.get("device", "cpu").strip() or "cpu"
        self._device = _device(torch, device_name)
        threads = ctx.parameters.get("num_threads", "").strip()
        if threads:
            try:
                torch.set_num_threads(int(threads))
            except (ValueError, RuntimeError):
                raise ModelLoadError(
                    f"parameter num_threads must be a positive integer, got {threads!r}"
                ) from None
        self._exported = ctx.model_file.suffix == ".pt2"
        if not zipfile.is_zipfile(ctx.model_file):
            # both formats are zip archives; this spares PyTorch's own traceback in the log
            kind = "torch.export program" if self._exported else "TorchScript archive"
            raise ModelLoadError(
                f"cannot read {ctx.model_file.name}: it is not a zip archive, so not a {kind} "
                "(is the file truncated?)"
            )
        batched = ctx.config.max_batch_size > 0
        if self._exported:
            self._module, signature = _load_exported(torch, ctx.model_file, self._device, batched)
        else:
            self._module = _load_script(torch, ctx.model_file, self._device)
            signature = Signature(platform="pytorch_libtorch")
        declared_in = by_index(spec.name for spec in ctx.config.input_specs())
        declared_out = by_index(spec.name for spec in ctx.config.output_specs())
        self._input_names = declared_in or tuple(s.name for s in signature.inputs)
        self._output_names = declared_out or tuple(s.name for s in signature.outputs)
        self._named_inputs = bool(self._input_names)
        self.default_outputs = self._output_names
        self._signature = signature

    def signature(self) -> Signature | None:
        return self._signature

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        torch = self._torch
        arguments = [self._tensor(name, array) for name, array in self._ordered(inputs)]
        with torch.inference_mode():
            try:
                result = self._module(*arguments)
            except AssertionError as exc:  # a torch.export guard: the inputs break the program
                raise InvalidArgument(f"the exported program rejected the inputs: {exc}") from None
        named = self._name_results(result)
        for name in outputs:
            if name not in named:
                raise InvalidArgument(f"unknown output '{name}'; the model has {', '.join(named)}")
        return {name: self._array(name, value) for name, value in named.items()}

    def _ordered(self, inputs: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        if self._named_inputs:
            unknown = [name for name in inputs if name not in self._input_names]
            if unknown:
                raise InvalidArgument(
                    f"unexpected input '{unknown[0]}'; the model takes "
                    f"{', '.join(self._input_names)}"
                )
            missing = [name for name in self._input_names if name not in inputs]
            if missing:
                raise InvalidArgument(f"missing input '{missing[0]}'")
            return [(name, inputs[name]) for name in self._input_names]
        expected = [f"input-{i}" for i in range(len(inputs))]
        if sorted(inputs) != sorted(expected):
            raise InvalidArgument(
                f"this TorchScript model takes positional inputs named {', '.join(expected)} "
                f"(got {', '.join(inputs)}); declare [[input]] in model.toml to name them"
            )
        return [(name, inputs[name]) for name in expected]

    def _tensor(self, name: str, array: np.ndarray) -> Any:
        torch = self._torch
        if array.dtype == np.object_:
            raise InvalidArgument(f"input '{name}': PyTorch models take no BYTES tensors")
        if not array.flags.writeable or not array.flags.c_contiguous:
            array = np.ascontiguousarray(array).copy()
        if array.dtype == BFLOAT16:
            tensor = torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
        else:
            tensor = torch.from_numpy(array)
        return tensor.to(self._device)

    def _name_results(self, result: Any) -> dict[str, Any]:
        if isinstance(result, Mapping):
            return {str(key): value for key, value in result.items()}
        values = list(result) if isinstance(result, Sequence) else [result]
        names = self._output_names or tuple(f"output-{i}" for i in range(len(values)))
        if len(names) != len(values):
            raise InvalidArgument(
                f"the model returned {len(values)} outputs, but {len(names)} are declared "
                f"({', '.join(names)})"
            )
        return dict(zip(names, values, strict=True))

    def _array(self, name: str, value: Any) -> np.ndarray:
        torch = self._torch
        if not isinstance(value, torch.Tensor):
            return np.asarray(value)
        value = value.detach().to("cpu")
        if value.dtype == torch.bfloat16:
            return np.asarray(value.view(torch.int16).numpy().view(BFLOAT16))
        return np.asarray(value.numpy())


def by_index(names: Iterable[str]) -> tuple[str, ...]:
    """Triton's PyTorch binding (pytorch_backend README, "Naming convention"): when every name is
    ``<name>__<index>`` (``INPUT__0``, ``OUTPUT__1``), the index is the position in ``forward``'s
    arguments or results, whatever the order the config lists them in; otherwise the config's
    order is the position."""
    listed = tuple(names)
    found = [_index(name) for name in listed]
    indexed = [index for index in found if index is not None]
    if not listed or len(indexed) != len(listed):
        return listed
    if sorted(indexed) != list(range(len(listed))):
        raise ModelLoadError(
            f"tensor names {', '.join(listed)} follow Triton's NAME__INDEX convention, so their "
            f"indexes must be 0 to {len(listed) - 1}, each once"
        )
    return tuple(name for _, name in sorted(zip(indexed, listed, strict=True)))


def _index(name: str) -> int | None:
    stem, separator, index = name.rpartition("__")
    return int(index) if separator and stem and index.isdigit() else None


def _device(torch: Any, name: str) -> Any:
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"parameter device: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device '{name}' is not available: this PyTorch sees no CUDA device")
    return device


def _load_script(torch: Any, path: Path, device: Any) -> Any:
    try:
        with warnings.catch_warnings():
            # PyTorch 2.13 deprecates TorchScript; loading still works and is what .pt means here
            warnings.filterwarnings(
                "ignore", message=r"`torch\.jit\.load` is deprecated", category=DeprecationWarning
            )
            module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot read {path.name} as TorchScript ({first_line(exc)}); model.pt must be "
            "written by torch.jit.script(...).save or torch.jit.trace(...).save, and a "
            "torch.export program goes in model.pt2"
        ) from exc
    module.eval()
    return module


def _load_exported(torch: Any, path: Path, device: Any, batched: bool) -> tuple[Any, Signature]:
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelLoadError(
            f"cannot read {path.name} as a torch.export program ({first_line(exc)}); "
            "model.pt2 must be written by torch.export.save"
        ) from exc
    if device.type != "cpu":
        from torch.export.passes import move_to_device_pass

        program = move_to_device_pass(program, device)
    signature = _exported_signature(program, batched)
    return program.module(), signature


def _exported_signature(program: Any, batched: bool) -> Signature:
    user_inputs = list(program.graph_signature.user_inputs)
    placeholders = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    inputs: list[TensorSpec] = []
    for name in user_inputs:
        node = placeholders.get(name)
        spec = _spec(name, node.meta.get("val") if node is not None else None, batched)
        if spec is None:  # a non-tensor argument: nothing the protocol can carry
            raise ModelLoadError(f"input '{name}' of the exported program is not a tensor")
        inputs.append(spec)
    outputs: list[TensorSpec] = []
    output_node = next(node for node in program.graph.nodes if node.op == "output")
    results = output_node.args[0]
    results = results if isinstance(results, list | tuple) else [results]
    for index, result in enumerate(results):
        meta = getattr(result, "meta", {})
        spec = _spec(f"output-{index}", meta.get("val"), batched)
        if spec is not None:
            outputs.append(spec)
    if len(outputs) != len(results):
        outputs = []  # results we cannot describe: name them at run time instead
    return Signature(inputs=tuple(inputs), outputs=tuple(outputs), platform="pytorch_export")


def _spec(name: str, value: Any, batched: bool) -> TensorSpec | None:
    if value is None or not hasattr(value, "dtype") or not hasattr(value, "shape"):
        return None
    datatype = DATATYPES.get(str(value.dtype).removeprefix("torch."))
    if datatype is None:
        return None
    dims = tuple(d if isinstance(d, int) else -1 for d in value.shape)
    if batched and dims:
        dims = dims[1:]
    return TensorSpec(name, datatype, dims)
