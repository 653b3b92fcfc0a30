"""Log formats and the logging extension's state, in memory."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from oipserve.errors import InvalidArgument, Unsupported
from oipserve.observability.logging import (
    LogControl,
    LogSettings,
    checked_update,
    formatter,
    request_context,
)


def _record(message: str, level: int = logging.INFO, **extra: str) -> logging.LogRecord:
    record = logging.LogRecord("oipserve.test", level, __file__, 42, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_default_format_is_tritons() -> None:
    line = formatter("default").format(_record('model "iris" is READY'))
    assert re.fullmatch(
        r'I\d{4} \d\d:\d\d:\d\d\.\d{6} \d+ test_logging\.py:42\] "model \\"iris\\" is READY"', line
    ), line


def test_iso8601_format_is_tritons() -> None:
    line = formatter("ISO8601").format(_record("stopping", logging.WARNING))
    assert re.fullmatch(
        r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ W \d+ test_logging\.py:42\] "stopping"', line
    ), line


def test_json_format_carries_the_request_context() -> None:
    with request_context(model="iris", version="1", request_id="r-7"):
        line = formatter("json").format(_record("model raised", logging.ERROR, trace_id="abc"))
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "oipserve.test"
    assert entry["message"] == "model raised"
    assert (entry["model"], entry["version"], entry["request_id"]) == ("iris", "1", "r-7")
    assert entry["trace_id"] == "abc"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", entry["time"])
    outside = json.loads(formatter("json").format(_record("no context")))
    assert "model" not in outside


def test_json_format_includes_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record("failed", logging.ERROR)
        record.exc_info = sys.exc_info()
    entry = json.loads(formatter("json").format(record))
    assert "ValueError: boom" in entry["exception"]


@pytest.mark.parametrize(
    ("level", "info", "warning", "verbose"),
    [("debug", True, True, 1), ("info", True, True, 0), ("warning", False, True, 0),
     ("error", False, False, 0)],
)  # fmt: skip
def test_log_level_maps_onto_tritons_switches(
    level: str, info: bool, warning: bool, verbose: int
) -> None:
    settings = LogSettings.from_level(level)
    assert (settings.log_info, settings.log_warning, settings.log_verbose_level) == (
        info,
        warning,
        verbose,
    )
    assert settings.log_error


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"log_info": "yes"}, InvalidArgument, "log_info"),
        ({"log_warning": 1}, InvalidArgument, "log_warning"),
        ({"log_verbose_level": -1}, InvalidArgument, "log_verbose_level"),
        ({"log_verbose_level": True}, InvalidArgument, "log_verbose_level"),
        ({"log_verbose_level": 1.5}, InvalidArgument, "log_verbose_level"),
        ({"log_format": "xml"}, InvalidArgument, "log_format"),
        ({"log_error": False, "log_format": 3}, InvalidArgument, "log_format"),
        ({"log_file": "/tmp/x.log"}, Unsupported, "log file"),
    ],
)
def test_bad_updates_are_refused_whole(
    changes: dict[str, object], error: type[Exception], field: str
) -> None:
    current = LogSettings()
    with pytest.raises(error, match=field):
        checked_update(current, changes)


def test_updates_ignore_nulls_and_unknown_keys() -> None:
    updated = checked_update(
        LogSettings(),
        {"log_info": False, "log_verbose_level": 2, "log_file": None, "colour": "red",
         "log_format": "json"},
    )  # fmt: skip
    assert updated == LogSettings(log_info=False, log_verbose_level=2, log_format="json")


@pytest.fixture
def control() -> Iterator[tuple[LogControl, io.StringIO]]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    log_control = LogControl(LogSettings(), stream)
    log_control.install()
    yield log_control, stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def test_control_switches_levels_and_format_at_run_time(
    control: tuple[LogControl, io.StringIO],
) -> None:
    log_control, stream = control
    logger = logging.getLogger("oipserve.example")
    logger.debug("hidden debug")
    logger.info("shown info")
    log_control.update({"log_info": False, "log_format": "json"})
    logger.info("hidden info")
    logger.warning("shown warning")
    log_control.update({"log_verbose_level": 1, "log_info": True})
    logger.debug("shown debug")
    logging.getLogger("uvicorn.error").info("from uvicorn")
    lines = stream.getvalue().splitlines()
    assert "shown info" in lines[0] and lines[0].startswith("I")
    assert [json.loads(line)["message"] for line in lines[1:]] == [
        "shown warning",
        "shown debug",
        "from uvicorn",
    ]
    assert "hidden" not in stream.getvalue()


def test_json_format_keeps_extra_attributes() -> None:
    record = _record("GET /v2 200", method="GET", path="/v2", status="200")
    record.duration_ms = 0.5  # what the access log adds, typed
    entry = json.loads(formatter("json").format(record))
    assert (entry["method"], entry["path"], entry["status"], entry["duration_ms"]) == (
        "GET",
        "/v2",
        "200",
        0.5,
    )
    assert "args" not in entry and "levelno" not in entry
