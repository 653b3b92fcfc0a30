"""Log records in Triton's two formats or as JSON lines, and Triton's logging extension.

Formats (``--log-format``; Triton server ``docs/protocol/extension_logging.md``, "Logging
Formats"):

* ``default`` — ``I1202 10:31:05.123456 4242 registry.py:211] "message"``: level letter, month
  and day, time with microseconds, process id, source file and line, the message JSON-escaped as
  Triton escapes it by default;
* ``ISO8601`` — ``2026-12-02T10:31:05Z I 4242 registry.py:211] "message"``;
* ``json`` (ours) — one object a line: ``time`` (RFC 3339, UTC, microseconds), ``level``,
  ``logger``, ``message``, and where known ``model``, ``version``, ``request_id``, ``trace_id``
  (from the record's ``extra`` or the request being served, see :func:`request_context`), any
  other ``extra`` attribute (the access log's fields), and ``exception`` with the traceback.

Every Python logger goes through the one handler installed on the root logger — oipserve's,
uvicorn's (``uvicorn.error``; the access log is oipserve's own) and grpcio's — so one format holds
for the whole process.

The logging extension (``GET/POST /v2/logging``, gRPC ``LogSettings``; PROTOCOL.md §3.7, Triton
server ``src/http_server.cc`` ``HandleLogging``) reads and changes :class:`LogControl`:
``log_info``, ``log_warning``, ``log_error`` switch those levels, ``log_verbose_level`` > 0 lets
debug records through, ``log_format`` switches the format; ``log_file`` is read-only. An update
is checked whole before anything changes (stricter than Triton, which applies keys one by one).
``--log-level`` maps onto the same switches (:meth:`LogSettings.from_level`).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal, TextIO

from oipserve.errors import InvalidArgument, Unsupported

LogFormat = Literal["default", "ISO8601", "json"]
LOG_FORMATS: Final[tuple[LogFormat, ...]] = ("default", "ISO8601", "json")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")

_LETTER: Final = {
    logging.DEBUG: "V",  # Triton's verbose records
    logging.INFO: "I",
    logging.WARNING: "W",
    logging.ERROR: "E",
    logging.CRITICAL: "E",
}

# -- what the request being served adds to each record -----------------------------------------

_CONTEXT: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "oipserve_log_context", default=None
)
CONTEXT_KEYS: Final = ("model", "version", "request_id", "trace_id")


@contextlib.contextmanager
def request_context(**fields: str) -> Iterator[None]:
    """Within the block, records logged by this task carry these fields (``model``,
    ``version``, ``request_id``, ``trace_id``) in the ``json`` format."""
    current = _CONTEXT.get()
    merged = {**current, **fields} if current else dict(fields)
    token = _CONTEXT.set(merged)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def context_fields() -> Mapping[str, str]:
    return _CONTEXT.get() or {}


# -- formatters ----------------------------------------------------------------------------------


def _quoted(message: str) -> str:
    return json.dumps(message, ensure_ascii=False)


class TritonFormatter(logging.Formatter):
    """Triton's ``default`` or ``ISO8601`` single-line entry."""

    def __init__(self, iso8601: bool = False) -> None:
        super().__init__()
        self.iso8601 = iso8601
        self.pid = os.getpid()

    def format(self, record: logging.LogRecord) -> str:
        letter = _LETTER.get(record.levelno, "I")
        seconds = int(record.created)
        if self.iso8601:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
            head = f"{stamp} {letter} {self.pid} {record.filename}:{record.lineno}]"
        else:
            micros = int((record.created - seconds) * 1_000_000)
            local = time.localtime(seconds)
            stamp = time.strftime("%m%d %H:%M:%S", local)
            head = f"{letter}{stamp}.{micros:06d} {self.pid} {record.filename}:{record.lineno}]"
        text = f"{head} {_quoted(record.getMessage())}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


_STANDARD_ATTRIBUTES: Final = frozenset(
    {*logging.LogRecord("", 0, "", 0, "", None, None).__dict__, "message", "asctime"}
)


class JSONFormatter(logging.Formatter):
    """One JSON object a line; a record's ``extra`` attributes (the access log's ``method``,
    ``path``, ``status``, ``bytes``, ``duration_ms``, ``model``) become keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        micros = int((record.created - seconds) * 1_000_000)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = context_fields()
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None) or context.get(key)
            if value:
                entry[key] = str(value)
        for key, value in record.__dict__.items():  # what the record's ``extra`` added
            if key not in _STANDARD_ATTRIBUTES and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return JSONFormatter()
    return TritonFormatter(iso8601=log_format == "ISO8601")


# -- the logging extension's state ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogSettings:
    """Triton's log settings, as ``GET /v2/logging`` shows them."""

    log_file: str = ""
    log_info: bool = True
    log_warning: bool = True
    log_error: bool = True
    log_verbose_level: int = 0
    log_format: LogFormat = "default"

    @classmethod
    def from_level(
        cls, level: str, log_format: LogFormat = "default", log_file: str = ""
    ) -> LogSettings:
        """``--log-level`` as Triton's switches: ``debug`` is verbose level 1, ``warning``
        turns INFO off, ``error`` turns INFO and WARNING off."""
        level = level.lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
        return cls(
            log_file=log_file,
            log_info=level in ("debug", "info"),
            log_warning=level != "error",
            log_error=True,
            log_verbose_level=1 if level == "debug" else 0,
            log_format=log_format,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lowest_level(self) -> int:
        if self.log_verbose_level > 0:
            return logging.DEBUG
        for enabled, level in (
            (self.log_info, logging.INFO),
            (self.log_warning, logging.WARNING),
            (self.log_error, logging.ERROR),
        ):
            if enabled:
                return level
        return logging.CRITICAL + 1

    def allows(self, levelno: int) -> bool:
        if levelno >= logging.ERROR:
            return self.log_error
        if levelno >= logging.WARNING:
            return self.log_warning
        if levelno >= logging.INFO:
            return self.log_info
        return self.log_verbose_level > 0


_BOOLEAN_KEYS: Final = ("log_info", "log_warning", "log_error")


def checked_update(current: LogSettings, changes: Mapping[str, Any]) -> LogSettings:
    """``current`` with ``changes`` (a ``POST /v2/logging`` body, or gRPC ``LogSettings``
    decoded to Python values) applied; nothing is applied unless every key is valid.

    Null values are ignored and unknown keys too (Triton's behaviour); a non-null ``log_file``
    is :class:`Unsupported` (501, PROTOCOL.md §3.7); a wrong type or value is
    :class:`InvalidArgument` naming the field.
    """
    updates: dict[str, Any] = {}
    for key, value in changes.items():
        if value is None:
            continue
        if key == "log_file":
            raise Unsupported("log file location can not be updated through network protocol")
        if key in _BOOLEAN_KEYS:
            if not isinstance(value, bool):
                raise InvalidArgument(f"'{key}' must be a boolean, got {json.dumps(value)}")
            updates[key] = value
        elif key == "log_verbose_level":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgument(
                    f"'log_verbose_level' must be an integer >= 0, got {json.dumps(value)}"
                )
            updates[key] = value
        elif key == "log_format":
            if value not in LOG_FORMATS:
                raise InvalidArgument(
                    f"'log_format' must be one of {', '.join(LOG_FORMATS)}, got {json.dumps(value)}"
                )
            updates[key] = value
    return replace(current, **updates)


class _SettingsFilter(logging.Filter):
    def __init__(self, control: LogControl) -> None:
        super().__init__()
        self.control = control

    def filter(self, record: logging.LogRecord) -> bool:
        return self.control.settings.allows(record.levelno)


class LogControl:
    """The running process's logging: one handler on the root logger, switched by the logging
    extension."""

    def __init__(self, settings: LogSettings, stream: TextIO | None = None) -> None:
        self.settings = settings
        self._stream = stream
        self.handler: logging.Handler | None = None

    def install(self) -> None:
        """Route every logger through one handler with the configured format (idempotent)."""
        root = logging.getLogger()
        if self.handler is not None:
            root.removeHandler(self.handler)
        if self.settings.log_file:
            handler: logging.Handler = logging.FileHandler(self.settings.log_file, delay=True)
        else:
            handler = logging.StreamHandler(self._stream or sys.stderr)
        handler.addFilter(_SettingsFilter(self))
        for existing in list(root.handlers):
            root.removeHandler(existing)
        root.addHandler(handler)
        self.handler = handler
        self._apply()
        # uvicorn and grpcio loggers propagate to the root: no handlers of their own
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "grpc"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
            logger.setLevel(logging.NOTSET)

    def _apply(self) -> None:
        logging.getLogger().setLevel(self.settings.lowest_level())
        if self.handler is not None:
            self.handler.setFormatter(formatter(self.settings.log_format))

    def update(self, changes: Mapping[str, Any]) -> LogSettings:
        """Apply a logging-extension update; returns the settings now in force."""
        self.settings = checked_update(self.settings, changes)
        self._apply()
        return self.settings


__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JSONFormatter",
    "LogControl",
    "LogFormat",
    "LogSettings",
    "TritonFormatter",
    "checked_update",
    "context_fields",
    "formatter",
    "request_context",
]
