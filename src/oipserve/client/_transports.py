"""The I/O: perform a call over httpx (REST) or grpcio (gRPC), sync or async.

Every transport turns a failed call into an :mod:`oipserve.errors` instance (``_errors.py``) and a
connection failure into :class:`~oipserve.client.ConnectError`; grpc is imported here, only when a
gRPC client is built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from oipserve.client._calls import GrpcCall, RestCall, RestReply
from oipserve.client._config import Cert, Endpoint, Verify, grpc_credentials
from oipserve.client._errors import ConnectError, from_grpc, from_http
from oipserve.errors import DeadlineExceeded, OIPServeError

if TYPE_CHECKING:
    import grpc
    import grpc.aio

T = TypeVar("T")


def _rest_result(call: RestCall[T], response: httpx.Response) -> T:
    reply = RestReply(response.status_code, response.headers, response.content)
    if call.raise_for_status and response.status_code >= 400:
        raise from_http(response.status_code, response.content, response.headers)
    return call.parse(reply)


def _rest_failure(endpoint: Endpoint, exc: httpx.HTTPError) -> OIPServeError:
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return DeadlineExceeded(f"no answer from {endpoint} in time: {exc}")
    return ConnectError(f"cannot reach {endpoint}: {exc or type(exc).__name__}")


def _httpx_options(
    endpoint: Endpoint, verify: Verify, cert: Cert | None, timeout: float | None
) -> dict[str, Any]:
    options: dict[str, Any] = {"base_url": endpoint.base_url, "timeout": timeout}
    if endpoint.tls:
        import ssl

        cafile = None if isinstance(verify, bool) else str(verify)
        context = ssl.create_default_context(cafile=cafile)
        if verify is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if cert is not None:
            chain, key = (cert[0], cert[1]) if isinstance(cert, tuple) else (cert, None)
            context.load_cert_chain(str(chain), str(key) if key else None)
        options["verify"] = context
    return options


class RestTransport:
    def __init__(
        self, endpoint: Endpoint, verify: Verify, cert: Cert | None, timeout: float | None
    ) -> None:
        self.endpoint = endpoint
        self.http = httpx.Client(**_httpx_options(endpoint, verify, cert, timeout))

    def run(self, call: RestCall[T]) -> T:
        try:
            response = self.http.request(
                call.method, call.path, content=call.content, headers=call.headers
            )
        except httpx.HTTPError as exc:
            raise _rest_failure(self.endpoint, exc) from exc
        return _rest_result(call, response)

    def close(self) -> None:
        self.http.close()


class AsyncRestTransport:
    def __init__(
        self, endpoint: Endpoint, verify: Verify, cert: Cert | None, timeout: float | None
    ) -> None:
        self.endpoint = endpoint
        self.http = httpx.AsyncClient(**_httpx_options(endpoint, verify, cert, timeout))

    async def run(self, call: RestCall[T]) -> T:
        try:
            response = await self.http.request(
                call.method, call.path, content=call.content, headers=call.headers
            )
        except httpx.HTTPError as exc:
            raise _rest_failure(self.endpoint, exc) from exc
        return _rest_result(call, response)

    async def close(self) -> None:
        await self.http.aclose()


def _method(rpc: str) -> str:
    from oipserve.protocol.messages import SERVICE_NAME

    return f"/{SERVICE_NAME}/{rpc}"


def _channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]


def _credentials(verify: Verify, cert: Cert | None) -> grpc.ChannelCredentials:
    import grpc

    roots, key, chain = grpc_credentials(verify, cert)
    return grpc.ssl_channel_credentials(roots, key, chain)


class GrpcTransport:
    def __init__(
        self,
        endpoint: Endpoint,
        verify: Verify,
        cert: Cert | None,
        timeout: float | None,
        max_message_bytes: int,
    ) -> None:
        import grpc

        self.grpc = grpc
        self.endpoint = endpoint
        self.timeout = timeout
        options = _channel_options(max_message_bytes)
        if endpoint.tls:
            creds = _credentials(verify, cert)
            self.channel = grpc.secure_channel(endpoint.authority, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(endpoint.authority, options=options)
        self._stubs: dict[str, Any] = {}

    def _stub(self, call: GrpcCall[Any]) -> Any:
        stub = self._stubs.get(call.rpc)
        if stub is None:
            stub = self.channel.unary_unary(
                _method(call.rpc),
                request_serializer=type(call.request).SerializeToString,
                response_deserializer=call.response_type.FromString,
            )
            self._stubs[call.rpc] = stub
        return stub

    def run(self, call: GrpcCall[T]) -> T:
        try:
            reply = self._stub(call)(call.request, timeout=self.timeout, metadata=call.metadata)
        except self.grpc.RpcError as exc:
            error = from_grpc(exc.code(), exc.details(), str(self.endpoint))
            if call.false_on_error and not isinstance(error, ConnectError):
                return call.parse(None)
            raise error from None
        return call.parse(reply)

    def stream(
        self, requests: Iterator[Any], metadata: tuple[tuple[str, str], ...], parse: Any
    ) -> Iterator[Any]:
        from oipserve.protocol.messages import pb

        method = self.channel.stream_stream(
            _method("ModelStreamInfer"),
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelStreamInferResponse.FromString,
        )
        try:
            for reply in method(requests, metadata=metadata):
                yield parse(reply)
        except self.grpc.RpcError as exc:
            raise from_grpc(exc.code(), exc.details(), str(self.endpoint)) from None

    def close(self) -> None:
        self.channel.close()


class AsyncGrpcTransport:
    def __init__(
        self,
        endpoint: Endpoint,
        verify: Verify,
        cert: Cert | None,
        timeout: float | None,
        max_message_bytes: int,
    ) -> None:
        import grpc
        import grpc.aio

        self.grpc = grpc
        self.endpoint = endpoint
        self.timeout = timeout
        options = _channel_options(max_message_bytes)
        if endpoint.tls:
            creds = _credentials(verify, cert)
            self.channel = grpc.aio.secure_channel(endpoint.authority, creds, options=options)
        else:
            self.channel = grpc.aio.insecure_channel(endpoint.authority, options=options)
        self._stubs: dict[str, Any] = {}

    def _stub(self, call: GrpcCall[Any]) -> Any:
        stub = self._stubs.get(call.rpc)
        if stub is None:
            stub = self.channel.unary_unary(
                _method(call.rpc),
                request_serializer=type(call.request).SerializeToString,
                response_deserializer=call.response_type.FromString,
            )
            self._stubs[call.rpc] = stub
        return stub

    async def run(self, call: GrpcCall[T]) -> T:
        try:
            reply = await self._stub(call)(
                call.request, timeout=self.timeout, metadata=call.metadata
            )
        except self.grpc.RpcError as exc:
            error = from_grpc(exc.code(), exc.details(), str(self.endpoint))
            if call.false_on_error and not isinstance(error, ConnectError):
                return call.parse(None)
            raise error from None
        return call.parse(reply)

    async def stream(
        self, requests: AsyncIterator[Any], metadata: tuple[tuple[str, str], ...], parse: Any
    ) -> AsyncIterator[Any]:
        from oipserve.protocol.messages import pb

        method = self.channel.stream_stream(
            _method("ModelStreamInfer"),
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelStreamInferResponse.FromString,
        )
        try:
            async for reply in method(requests, metadata=metadata):
                yield parse(reply)
        except self.grpc.RpcError as exc:
            raise from_grpc(exc.code(), exc.details(), str(self.endpoint)) from None

    async def close(self) -> None:
        await self.channel.close(None)
