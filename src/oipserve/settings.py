"""Server settings: one inert value, built by the CLI (flags = ``OIPSERVE_*`` env vars) or by code.

Nothing is read at import time; ``Settings(...)`` is all a test needs to build a server.

Each field is one setting, and the field is where it is defined: its name gives the CLI flag
(``http_port`` → ``--http-port``) and the environment variable (``OIPSERVE_HTTP_PORT``), its type
and default give the option's (``cli/_settings.py`` derives them; a ``bool`` is a switch taking
an optional value, ``--allow-grpc`` / ``--allow-grpc=false``, a ``Literal`` a choice). Adding a
setting is adding a field here and one ``setting_option("field", help)`` line in ``cli``;
``tests/unit/test_settings_cli.py`` fails when a field has no option, an option no field, or a
name breaks the rule. Checks that hold for every way of building settings live in
``__post_init__`` (the CLI shows their message as a usage error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeAlias, get_args

ENV_PREFIX: Final = "OIPSERVE_"
"""Every setting's environment variable is this prefix and the field name in capitals."""
PORT_RANGE: Final = range(65536)
"""Ports a listener may take; 0 asks the system for a free one (the log says which)."""

LogLevel: TypeAlias = Literal["debug", "info", "warning", "error"]
"""``--log-level``: the least severe messages logged."""
LogFormat: TypeAlias = Literal["default", "ISO8601", "json"]
"""``--log-format``: Triton's two formats, and JSON lines."""

ClientAuth: TypeAlias = Literal["none", "optional", "required"]
"""``--ssl-client-auth``: whether clients must show a certificate (``required``: mutual TLS)."""

ControlMode: TypeAlias = Literal["explicit", "poll", "none"]
"""``--model-control-mode``, as Triton's: ``explicit`` (the repository API loads and unloads),
``poll`` (follow the repository folder) or ``none`` (the start-up models, no changes)."""
CONTROL_MODES: Final[tuple[ControlMode, ...]] = get_args(ControlMode)


@dataclass(frozen=True, slots=True)
class Settings:
    model_repository: Path
    model_name: str = ""
    """The model's name when the repository folder is itself one model's folder (KServe's
    ``--model_name`` for ``/mnt/models``); ignored, with a log line, for a repository of model
    folders, whose models are named after their folders."""
    host: str = "0.0.0.0"
    http_port: int = 8080
    grpc_port: int = 8081
    allow_http: bool = True
    """Serve the REST API (and everything else on the HTTP port)."""
    allow_grpc: bool = True
    """Serve the gRPC API."""
    http_max_request_mb: float = 64
    grpc_max_message_mb: float = 64
    # -- security (issue 13; the options in cli/_security.py) -----------------------------------
    allow_model_upload: bool = False
    """Whether a repository ``load`` request may carry model files (``file:`` parameters).
    Off by default: model files are code (pickles, ``model.py``)."""
    model_upload_max_mb: float = 64
    """The total size of one load request's files, in MiB (with uploads allowed)."""
    http_restricted_api: tuple[str, ...] = ()
    """Triton's ``--http-restricted-api`` values, ``<categories>:<header>=<value>`` each."""
    grpc_restricted_protocol: tuple[str, ...] = ()
    """Triton's ``--grpc-restricted-protocol`` values (the metadata key gets Triton's prefix
    ``triton-grpc-protocol-``)."""
    api_key: str | None = field(default=None, repr=False)
    """Require ``Authorization: Bearer <api_key>`` on every API but health, metrics and the
    console's files."""
    ssl_certfile: Path | None = None
    """PEM certificate (chain) of both listeners; with ``ssl_keyfile``, TLS is on."""
    ssl_keyfile: Path | None = None
    ssl_ca_certs: Path | None = None
    """CAs that client certificates must chain to (mutual TLS)."""
    ssl_client_auth: ClientAuth = "none"
    """``none``, ``optional`` or ``required`` (mutual TLS: a client without a trusted
    certificate is refused at the handshake)."""
    grpc_use_ssl: bool = False
    """Triton's switch: TLS on (with ``ssl_certfile`` and ``ssl_keyfile``; oipserve secures both
    ports, so it only checks that they are given)."""
    grpc_use_ssl_mutual: bool = False
    """Triton's switch: mutual TLS, the same as ``ssl_client_auth = "required"``."""
    http_header_timeout_secs: float = 10
    """A request's line and headers must arrive within this many seconds (408 otherwise)."""
    http_body_timeout_secs: float = 60
    """A request's body must arrive within this many seconds of its headers (408 otherwise)."""
    http_keep_alive_secs: float = 30
    """How long an idle keep-alive connection stays open."""
    http_max_header_kb: float = 16
    """The request line and headers, in KiB (431 beyond)."""
    http_max_headers: int = 100
    """Headers per request (431 beyond)."""
    max_connections: int = 1000
    """Open HTTP connections; past it a new connection is closed at once."""
    max_in_flight: int = 2000
    """Requests being served at once over REST and gRPC together, health excluded (503 with
    ``Retry-After`` beyond); 0: no limit."""
    grpc_max_concurrent_streams: int = 256
    """Concurrent gRPC calls per connection (HTTP/2 ``SETTINGS_MAX_CONCURRENT_STREAMS``)."""
    max_tensor_elements: int = 1 << 24
    """Elements of one input tensor (413 / ``RESOURCE_EXHAUSTED`` beyond)."""
    max_tensor_mb: float = 64
    """Bytes of one fixed-size input tensor, in MiB (413 / ``RESOURCE_EXHAUSTED`` beyond)."""
    drain_grace_secs: float = 5
    """After SIGTERM: readiness is false at once, requests are still served this long."""
    shutdown_timeout_secs: float = 20
    """Then: new connections refused, requests queued and running get this long to finish."""
    # -- ------------------------------------------------------------------------------------------
    strict_readiness: bool = True
    disable_auto_complete_config: bool = False
    """Triton's ``--disable-auto-complete-config``: a ``config.pbtxt`` model's config is used as
    written, never completed from the model file (ONNX Runtime's default ``max_batch_size``)."""
    model_control_mode: ControlMode = "explicit"
    """``explicit`` (repository API load / unload allowed), ``poll`` (follow the folder) or
    ``none`` (the models loaded at start-up, no changes)."""
    load_models: tuple[str, ...] = ()
    """Models to load at start-up in ``explicit`` mode; empty or ``*`` means every model in the
    repository (``poll`` and ``none`` always load every model)."""
    repository_poll_secs: float = 15
    """How often ``poll`` mode looks for changes in the repository folder."""
    log_level: LogLevel = "info"
    server_name: str = "oipserve"
    model_threads: int = 4
    allow_console: bool = True
    """Serve the web console at ``/`` on the HTTP port."""
    access_log: bool = False
    """Log one line per HTTP request on the ``oipserve.access`` logger."""
    # -- observability (docs/metrics.md, docs/logging-and-tracing.md) -----------------------------
    log_format: LogFormat = "default"
    """``default`` and ``ISO8601`` (Triton's) or ``json`` (one object a line)."""
    log_file: str = ""
    """Write the log to this file instead of standard error."""
    allow_metrics: bool = True
    """``GET /metrics`` on the HTTP port (and on ``metrics_port``)."""
    metrics_port: int | None = None
    """Also serve ``/metrics`` on this port (Triton's 8002); None: the HTTP port only."""
    metrics_config: tuple[str, ...] = ()
    """Triton's ``--metrics-config <setting>=<value>`` settings."""
    trace_config: tuple[str, ...] = ()
    """Triton's ``--trace-config [<mode>,]<setting>=<value>`` settings."""
    # -- worker processes (issue 14; the options in cli/_workers.py) ----------------------------
    workers: int = 1
    """Serving processes sharing the ports (``SO_REUSEPORT``) under a supervisor; 1: this
    process serves alone, no supervisor."""
    worker_restarts: int = 5
    """Worker restarts allowed within ``worker_restart_window_secs``; one more ends the server."""
    worker_restart_window_secs: float = 60
    worker_startup_secs: float = 300
    """A worker that has not finished start-up (listening, start-up models tried) by then ends
    the server."""

    def __post_init__(self) -> None:
        for name in ("http_port", "grpc_port"):
            port = getattr(self, name)
            if port not in PORT_RANGE:
                raise ValueError(
                    f"{name} must be a port number from 0 to 65535 (0: any free port), not {port}"
                )
        if self.metrics_port is not None:
            if self.metrics_port not in PORT_RANGE:
                raise ValueError(
                    f"metrics_port must be a port number from 0 to 65535, not {self.metrics_port}"
                )
            for name in ("http_port", "grpc_port"):
                if self.metrics_port != 0 and self.metrics_port == getattr(self, name):
                    raise ValueError(
                        f"--metrics-port {self.metrics_port} is also the {name.split('_')[0]} "
                        f"port (--{name.replace('_', '-')})"
                    )
        if not (self.allow_http or self.allow_grpc):
            raise ValueError(
                "allow_http and allow_grpc are both false: nothing would be served "
                "(--allow-http=false --allow-grpc=false)"
            )

    @property
    def http_max_request_bytes(self) -> int:
        return int(self.http_max_request_mb * 1024 * 1024)

    @property
    def model_upload_max_bytes(self) -> int:
        return int(self.model_upload_max_mb * 1024 * 1024)

    @property
    def max_tensor_bytes(self) -> int:
        return int(self.max_tensor_mb * 1024 * 1024)

    @property
    def grpc_max_message_bytes(self) -> int:
        return int(self.grpc_max_message_mb * 1024 * 1024)
