"""``Client`` and ``AsyncClient``: one API over REST and gRPC, numpy in and numpy out.

Both are thin: each method asks the dialect of the URL's wire format for a call (``_rest.py``,
``_grpc.py``) and has the transport perform it (``_transports.py``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self

from oipserve.client._config import Cert, Verify, auth_headers, parse_url
from oipserve.client._errors import make_error
from oipserve.client._grpc import GrpcDialect, infer_request, infer_result
from oipserve.client._rest import RestDialect
from oipserve.client._tensors import Inputs, Outputs
from oipserve.client._transports import (
    AsyncGrpcTransport,
    AsyncRestTransport,
    GrpcTransport,
    RestTransport,
)
from oipserve.client._types import IndexEntry, InferResult, ModelMetadata, ServerMetadata
from oipserve.errors import ErrorKind, Unsupported
from oipserve.model import Parameter

BINARY_EXTENSION = "binary_tensor_data"
#: asks oipserve and Triton to end a stream with the error's status instead of an in-band message
_STREAM_ERRORS = ("triton_grpc_error", "true")


def _config_text(config: Mapping[str, Any] | str | None) -> str | None:
    if config is None or isinstance(config, str):
        return config
    return json.dumps(config)


def _stream_result(reply: Any) -> InferResult:
    if reply.error_message:
        raise make_error(ErrorKind.INTERNAL, reply.error_message)
    return infer_result(reply.infer_response)


class _Base:
    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        headers: Mapping[str, str] | None,
        binary: bool | None,
    ) -> None:
        self.endpoint = parse_url(url)
        extra = {k.lower(): v for k, v in (headers or {}).items()}
        extra.update(auth_headers(api_key))
        self._binary = binary
        self._dialect: RestDialect | GrpcDialect
        if self.endpoint.wire == "rest":
            self._dialect = RestDialect(extra)
        else:
            self._dialect = GrpcDialect(tuple(extra.items()))
        self._stream_metadata = (*tuple(extra.items()), _STREAM_ERRORS)

    @property
    def url(self) -> str:
        return str(self.endpoint)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class Client(_Base):
    """A blocking Open Inference Protocol client.

    ``url`` picks the wire format: ``http://`` / ``https://`` (REST) or ``grpc://`` / ``grpcs://``.
    ``binary=None`` sends binary tensor data over REST when the server advertises it.
    """

    def __init__(
        self,
        url: str = "http://localhost:8080",
        *,
        api_key: str | None = None,
        verify: Verify = True,
        cert: Cert | None = None,
        timeout: float | None = 60.0,
        headers: Mapping[str, str] | None = None,
        binary: bool | None = None,
        max_message_mb: float = 64,
    ) -> None:
        super().__init__(url, api_key=api_key, headers=headers, binary=binary)
        self._transport: RestTransport | GrpcTransport
        if self.endpoint.wire == "rest":
            self._transport = RestTransport(self.endpoint, verify, cert, timeout)
        else:
            size = int(max_message_mb * 1024 * 1024)
            self._transport = GrpcTransport(self.endpoint, verify, cert, timeout, size)

    def _run(self, call: Any) -> Any:
        return self._transport.run(call)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def is_server_live(self) -> bool:
        return bool(self._run(self._dialect.server_live()))

    def is_server_ready(self) -> bool:
        return bool(self._run(self._dialect.server_ready()))

    def is_model_ready(self, model: str, version: str = "") -> bool:
        return bool(self._run(self._dialect.model_ready(model, version)))

    def server_metadata(self) -> ServerMetadata:
        result: ServerMetadata = self._run(self._dialect.server_metadata())
        return result

    def model_metadata(self, model: str, version: str = "") -> ModelMetadata:
        result: ModelMetadata = self._run(self._dialect.model_metadata(model, version))
        return result

    def model_config(self, model: str, version: str = "") -> dict[str, Any]:
        result: dict[str, Any] = self._run(self._dialect.model_config(model, version))
        return result

    def statistics(self, model: str = "", version: str = "") -> dict[str, Any]:
        """The statistics extension's figures (all models when ``model`` is empty)."""
        result: dict[str, Any] = self._run(self._dialect.statistics(model, version))
        return result

    def repository_index(self, ready: bool = False) -> list[IndexEntry]:
        result: list[IndexEntry] = self._run(self._dialect.repository_index(ready))
        return result

    def load_model(
        self,
        model: str,
        config: Mapping[str, Any] | str | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> None:
        self._run(self._dialect.load(model, _config_text(config), dict(files or {})))

    def unload_model(self, model: str, unload_dependents: bool = False) -> None:
        self._run(self._dialect.unload(model, unload_dependents))

    def _use_binary(self) -> bool:
        if self._binary is None:
            self._binary = self.endpoint.wire == "rest" and (
                BINARY_EXTENSION in self.server_metadata().extensions
            )
        return self._binary

    def infer(
        self,
        model: str,
        inputs: Inputs,
        outputs: Outputs = None,
        *,
        version: str = "",
        id: str = "",
        parameters: dict[str, Parameter] | None = None,
    ) -> InferResult:
        """Run ``model`` on ``inputs`` (name → array); all outputs unless ``outputs`` names some."""
        call = self._dialect.infer(
            model,
            inputs,
            outputs,
            version=version,
            id=id,
            parameters=parameters,
            binary=self._use_binary() if self.endpoint.wire == "rest" else False,
        )
        result: InferResult = self._run(call)
        return result

    def stream_infer(
        self,
        model: str,
        requests: Iterable[Inputs],
        outputs: Outputs = None,
        *,
        version: str = "",
    ) -> Iterator[InferResult]:
        """gRPC ``ModelStreamInfer``: one result per request, in order; the first error raises."""
        if not isinstance(self._transport, GrpcTransport):
            raise Unsupported("streaming inference needs gRPC (a grpc:// or grpcs:// URL)")
        messages = (
            infer_request(model, inputs, outputs, version=version, id=str(i))
            for i, inputs in enumerate(requests)
        )
        return self._transport.stream(messages, self._stream_metadata, _stream_result)


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client`: the same methods, awaited."""

    def __init__(
        self,
        url: str = "http://localhost:8080",
        *,
        api_key: str | None = None,
        verify: Verify = True,
        cert: Cert | None = None,
        timeout: float | None = 60.0,
        headers: Mapping[str, str] | None = None,
        binary: bool | None = None,
        max_message_mb: float = 64,
    ) -> None:
        super().__init__(url, api_key=api_key, headers=headers, binary=binary)
        self._transport: AsyncRestTransport | AsyncGrpcTransport
        if self.endpoint.wire == "rest":
            self._transport = AsyncRestTransport(self.endpoint, verify, cert, timeout)
        else:
            size = int(max_message_mb * 1024 * 1024)
            self._transport = AsyncGrpcTransport(self.endpoint, verify, cert, timeout, size)

    async def _run(self, call: Any) -> Any:
        return await self._transport.run(call)

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def is_server_live(self) -> bool:
        return bool(await self._run(self._dialect.server_live()))

    async def is_server_ready(self) -> bool:
        return bool(await self._run(self._dialect.server_ready()))

    async def is_model_ready(self, model: str, version: str = "") -> bool:
        return bool(await self._run(self._dialect.model_ready(model, version)))

    async def server_metadata(self) -> ServerMetadata:
        result: ServerMetadata = await self._run(self._dialect.server_metadata())
        return result

    async def model_metadata(self, model: str, version: str = "") -> ModelMetadata:
        result: ModelMetadata = await self._run(self._dialect.model_metadata(model, version))
        return result

    async def model_config(self, model: str, version: str = "") -> dict[str, Any]:
        result: dict[str, Any] = await self._run(self._dialect.model_config(model, version))
        return result

    async def statistics(self, model: str = "", version: str = "") -> dict[str, Any]:
        result: dict[str, Any] = await self._run(self._dialect.statistics(model, version))
        return result

    async def repository_index(self, ready: bool = False) -> list[IndexEntry]:
        result: list[IndexEntry] = await self._run(self._dialect.repository_index(ready))
        return result

    async def load_model(
        self,
        model: str,
        config: Mapping[str, Any] | str | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> None:
        await self._run(self._dialect.load(model, _config_text(config), dict(files or {})))

    async def unload_model(self, model: str, unload_dependents: bool = False) -> None:
        await self._run(self._dialect.unload(model, unload_dependents))

    async def _use_binary(self) -> bool:
        if self._binary is None:
            metadata = await self.server_metadata()
            self._binary = self.endpoint.wire == "rest" and (
                BINARY_EXTENSION in metadata.extensions
            )
        return self._binary

    async def infer(
        self,
        model: str,
        inputs: Inputs,
        outputs: Outputs = None,
        *,
        version: str = "",
        id: str = "",
        parameters: dict[str, Parameter] | None = None,
    ) -> InferResult:
        binary = await self._use_binary() if self.endpoint.wire == "rest" else False
        call = self._dialect.infer(
            model, inputs, outputs, version=version, id=id, parameters=parameters, binary=binary
        )
        result: InferResult = await self._run(call)
        return result

    def stream_infer(
        self,
        model: str,
        requests: AsyncIterable[Inputs] | Iterable[Inputs],
        outputs: Outputs = None,
        *,
        version: str = "",
    ) -> AsyncIterator[InferResult]:
        """gRPC ``ModelStreamInfer``: ``async for result in client.stream_infer(...)``."""
        if not isinstance(self._transport, AsyncGrpcTransport):
            raise Unsupported("streaming inference needs gRPC (a grpc:// or grpcs:// URL)")

        async def messages() -> AsyncIterator[Any]:
            i = 0
            if isinstance(requests, AsyncIterable):
                async for inputs in requests:
                    yield infer_request(model, inputs, outputs, version=version, id=str(i))
                    i += 1
            else:
                for inputs in requests:
                    yield infer_request(model, inputs, outputs, version=version, id=str(i))
                    i += 1

        return self._transport.stream(messages(), self._stream_metadata, _stream_result)
