"""oipserve.client over TLS (``https://`` and ``grpcs://``) with a CA bundle, through a TLS proxy
in front of a real oipserve (the server itself speaks plain TCP; TLS is terminated in front of it,
as an ingress does). The certificate is made by ``openssl`` for 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from oipserve.client import AsyncClient, Client, ConnectError
from tests.serving import RunningServer

IRIS = np.array([[6.7, 3.0, 5.2, 2.3]], dtype=np.float32)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.contextmanager
def tls_proxy(upstream_port: int, cert: Path, key: Path) -> Iterator[int]:
    """Terminate TLS on a free port and pass the bytes to ``upstream_port`` (ALPN h2 and
    http/1.1, so gRPC and REST both work)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2", "http/1.1"])
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port: list[int] = []
    handlers: set[asyncio.Task[None]] = set()
    stop = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        port.append(server.sockets[0].getsockname()[1])
        started.set()
        await stop.wait()
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def test_https_and_grpcs_with_a_ca_bundle(
    server: RunningServer, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    with (
        tls_proxy(server.http_port, cert, key) as https_port,
        tls_proxy(server.grpc_port, cert, key) as grpcs_port,
    ):
        for url in (f"https://127.0.0.1:{https_port}", f"grpcs://127.0.0.1:{grpcs_port}"):
            with Client(url, verify=cert, api_key="k") as client:
                assert client.is_server_ready(), url
                np.testing.assert_array_equal(
                    client.infer("iris", {"input-0": IRIS})["predict"], [2]
                )

            async def scenario(url: str = url) -> None:
                async with AsyncClient(url, verify=cert) as client:
                    result = await client.infer("iris", {"input-0": IRIS})
                    np.testing.assert_array_equal(result["predict"], [2])

            asyncio.run(scenario())
        # the system's trust store does not know this certificate
        with (
            Client(f"https://127.0.0.1:{https_port}") as untrusting,
            pytest.raises(ConnectError, match="certificate"),
        ):
            untrusting.is_server_live()
        with Client(f"https://127.0.0.1:{https_port}", verify=False) as unverified:
            assert unverified.is_server_live()
