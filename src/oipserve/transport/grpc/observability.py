"""Triton's ``LogSettings`` and ``TraceSetting`` rpcs: protobuf ↔ the dataplane's plain values
(PROTOCOL.md §3.6, §3.7, §4).

``LogSettings``: each ``SettingValue`` is a oneof of ``bool_param``, ``uint32_param`` and
``string_param``; an unset one is a null (ignored). ``TraceSetting``: each value is a list of
strings; an empty list clears the setting (back to the global one), one string is the value, and
``trace_level`` takes the whole list.
"""

from __future__ import annotations

from typing import Any

from oipserve.dataplane import DataPlane
from oipserve.errors import InvalidArgument
from oipserve.protocol.messages import pb


def log_settings(dataplane: DataPlane, request: pb.LogSettingsRequest) -> pb.LogSettingsResponse:
    changes: dict[str, Any] = {}
    for key, value in request.settings.items():
        choice = value.WhichOneof("parameter_choice")
        changes[key] = None if choice is None else getattr(value, choice)
    current = dataplane.update_log_settings(changes) if changes else dataplane.log_settings()
    response = pb.LogSettingsResponse()
    for key, setting in current.items():
        target = response.settings[key]
        if isinstance(setting, bool):
            target.bool_param = setting
        elif isinstance(setting, int):
            target.uint32_param = setting
        else:
            target.string_param = str(setting)
    return response


def trace_setting(dataplane: DataPlane, request: pb.TraceSettingRequest) -> pb.TraceSettingResponse:
    changes: dict[str, Any] = {}
    for key, value in request.settings.items():
        values = list(value.value)
        if key == "trace_level" or not values:
            changes[key] = values or None
        elif len(values) == 1:
            changes[key] = values[0]
        else:
            raise InvalidArgument(f"'{key}' takes one value, got {len(values)}")
    model = request.model_name
    if changes:
        current = dataplane.update_trace_settings(model, changes)
    else:
        current = dataplane.trace_settings(model)
    response = pb.TraceSettingResponse()
    for key, setting in current.items():
        response.settings[key].value.extend(setting if isinstance(setting, list) else [setting])
    return response


__all__ = ["log_settings", "trace_setting"]
