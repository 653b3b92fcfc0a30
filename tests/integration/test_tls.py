"""TLS and mutual TLS on both listeners, through tritonclient.http (``ssl=True``) and
tritonclient.grpc (``ssl=True`` with root certificates), with a CA made in the test (issue 13)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tritonclient.utils import InferenceServerException

from tests.integration.test_repository import write_model
from tests.serving import RunningServer, free_port, run_command

TIMEOUT_S = 30.0


@dataclass
class PKI:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_client_cert: Path
    other_client_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert, key


def _leaf(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: str, *, server: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    folder = tmp_path_factory.mktemp("pki")
    ca, ca_key = _ca("oipserve test CA")
    server, server_key = _leaf(ca, ca_key, "localhost", server=True)
    client, client_key = _leaf(ca, ca_key, "client", server=False)
    other_ca, other_ca_key = _ca("another CA")
    other, other_key = _leaf(other_ca, other_ca_key, "intruder", server=False)
    return PKI(
        ca=_write_cert(ca, folder / "ca.pem"),
        server_cert=_write_cert(server, folder / "server.pem"),
        server_key=_write_key(server_key, folder / "server.key"),
        client_cert=_write_cert(client, folder / "client.pem"),
        client_key=_write_key(client_key, folder / "client.key"),
        other_client_cert=_write_cert(other, folder / "other.pem"),
        other_client_key=_write_key(other_key, folder / "other.key"),
    )


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tls-repo")
    write_model(root, "plain")
    return root


def _client_context(pki: PKI, *, with_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if with_cert:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


@pytest.fixture
def tls_server(pki: PKI, repository: Path, tmp_path: Path) -> Iterator[RunningServer]:
    yield from _serve(repository, tmp_path, pki, mutual=False)


@pytest.fixture
def mtls_server(pki: PKI, repository: Path, tmp_path: Path) -> Iterator[RunningServer]:
    yield from _serve(repository, tmp_path, pki, mutual=True)


def _serve(repository: Path, tmp_path: Path, pki: PKI, *, mutual: bool) -> Iterator[RunningServer]:
    http_port, grpc_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "oipserve", "serve", str(repository), "--host", "127.0.0.1",
        "--http-port", str(http_port), "--grpc-port", str(grpc_port),
        "--ssl-certfile", str(pki.server_cert), "--ssl-keyfile", str(pki.server_key),
    ]  # fmt: skip
    if mutual:  # Triton's spellings for the CA and the mutual switch
        command += ["--grpc-root-cert", str(pki.ca), "--grpc-use-ssl-mutual=true"]
    context = _client_context(pki, with_cert=mutual)
    with run_command(command, http_port, grpc_port, tmp_dir=tmp_path, tls=context) as server:
        yield server


def _inputs_http() -> list[httpclient.InferInput]:
    inputs = [httpclient.InferInput("x", [1], "INT32")]
    inputs[0].set_data_from_numpy(np.array([0], dtype=np.int32))
    return inputs


def _inputs_grpc() -> list[grpcclient.InferInput]:
    inputs = [grpcclient.InferInput("x", [1], "INT32")]
    inputs[0].set_data_from_numpy(np.array([0], dtype=np.int32))
    return inputs


def test_tls_through_both_tritonclients(tls_server: RunningServer, pki: PKI) -> None:
    http = httpclient.InferenceServerClient(
        tls_server.http_url, ssl=True, ssl_options={"ca_certs": str(pki.ca)},
        network_timeout=TIMEOUT_S,
    )  # fmt: skip
    try:
        assert http.is_server_ready()
        result = http.infer("plain", _inputs_http())
        assert result.as_numpy("tag").tolist() == [1]
    finally:
        http.close()
    grpc_client = grpcclient.InferenceServerClient(
        tls_server.grpc_url, ssl=True, root_certificates=str(pki.ca)
    )
    try:
        assert grpc_client.is_server_ready()
        assert grpc_client.infer("plain", _inputs_grpc()).as_numpy("tag").tolist() == [1]
    finally:
        grpc_client.close()
    # plain text is not served on either port
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{tls_server.http_port}/v2/health/live", timeout=5.0)
    plain = grpcclient.InferenceServerClient(tls_server.grpc_url)
    try:
        with pytest.raises(InferenceServerException):
            plain.is_server_live(client_timeout=5.0)
    finally:
        plain.close()


def test_mutual_tls_through_both_tritonclients(mtls_server: RunningServer, pki: PKI) -> None:
    http = httpclient.InferenceServerClient(
        mtls_server.http_url,
        ssl=True,
        ssl_options={
            "ca_certs": str(pki.ca), "certfile": str(pki.client_cert),
            "keyfile": str(pki.client_key),
        },
        network_timeout=TIMEOUT_S,
    )  # fmt: skip
    try:
        assert http.infer("plain", _inputs_http()).as_numpy("tag").tolist() == [1]
    finally:
        http.close()
    grpc_client = grpcclient.InferenceServerClient(
        mtls_server.grpc_url,
        ssl=True,
        root_certificates=str(pki.ca),
        private_key=str(pki.client_key),
        certificate_chain=str(pki.client_cert),
    )
    try:
        assert grpc_client.infer("plain", _inputs_grpc()).as_numpy("tag").tolist() == [1]
    finally:
        grpc_client.close()


def test_mutual_tls_refuses_clients_without_a_trusted_certificate(
    mtls_server: RunningServer, pki: PKI
) -> None:
    url = f"https://127.0.0.1:{mtls_server.http_port}/v2/health/live"
    no_cert = _client_context(pki, with_cert=False)
    stranger = ssl.create_default_context(cafile=str(pki.ca))
    stranger.load_cert_chain(str(pki.other_client_cert), str(pki.other_client_key))
    for context in (no_cert, stranger):
        with pytest.raises((httpx.TransportError, ssl.SSLError)):
            httpx.get(url, verify=context, timeout=5.0)
    for key, chain in ((None, None), (pki.other_client_key, pki.other_client_cert)):
        client = grpcclient.InferenceServerClient(
            mtls_server.grpc_url,
            ssl=True,
            root_certificates=str(pki.ca),
            private_key=str(key) if key else None,
            certificate_chain=str(chain) if chain else None,
        )
        try:
            with pytest.raises(InferenceServerException):
                client.is_server_live(client_timeout=5.0)
        finally:
            client.close()
    # the server still serves trusted clients
    assert httpx.get(url, verify=_client_context(pki, with_cert=True)).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ssl-certfile", "cert.pem"], "both --ssl-certfile and --ssl-keyfile"),
        (["--ssl-client-auth", "required"], "need TLS"),
        (["--grpc-use-ssl=true"], "both --ssl-certfile and --ssl-keyfile"),
    ],
)
def test_incomplete_tls_settings_stop_the_start_up(
    repository: Path, args: list[str], message: str
) -> None:
    command = [sys.executable, "-m", "oipserve", "serve", str(repository)]
    command += ["--http-port", str(free_port()), "--grpc-port", str(free_port()), *args]
    result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    output = " ".join((result.stdout + result.stderr).decode().split())
    assert result.returncode != 0, output
    assert message in output
