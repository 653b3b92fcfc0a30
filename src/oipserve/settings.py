"""Server settings: one inert value, built by the CLI (flags = ``OIPSERVE_*`` env vars) or by code.

Nothing is read at import time; ``Settings(...)`` is all a test needs to build a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeAlias, get_args

ControlMode: TypeAlias = Literal["explicit", "poll", "none"]
"""``--model-control-mode``, as Triton's: ``explicit`` (the repository API loads and unloads),
``poll`` (follow the repository folder) or ``none`` (the start-up models, no changes)."""
CONTROL_MODES: Final[tuple[ControlMode, ...]] = get_args(ControlMode)


@dataclass(frozen=True, slots=True)
class Settings:
    model_repository: Path
    host: str = "0.0.0.0"
    http_port: int = 8080
    grpc_port: int = 8081
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
    # -- ------------------------------------------------------------------------------------------
    strict_readiness: bool = True
    model_control_mode: ControlMode = "explicit"
    """``explicit`` (repository API load / unload allowed), ``poll`` (follow the folder) or
    ``none`` (the models loaded at start-up, no changes)."""
    load_models: tuple[str, ...] = ()
    """Models to load at start-up in ``explicit`` mode; empty or ``*`` means every model in the
    repository (``poll`` and ``none`` always load every model)."""
    repository_poll_secs: float = 15
    """How often ``poll`` mode looks for changes in the repository folder."""
    log_level: str = "info"
    server_name: str = "oipserve"
    model_threads: int = 4
    allow_console: bool = True
    """Serve the web console at ``/`` on the HTTP port."""
    access_log: bool = False
    """Log one line per HTTP request on the ``oipserve.access`` logger."""

    @property
    def http_max_request_bytes(self) -> int:
        return int(self.http_max_request_mb * 1024 * 1024)

    @property
    def model_upload_max_bytes(self) -> int:
        return int(self.model_upload_max_mb * 1024 * 1024)

    @property
    def grpc_max_message_bytes(self) -> int:
        return int(self.grpc_max_message_mb * 1024 * 1024)
