"""The ``serve`` options of issue 14 (worker processes), one decorator.

Each is a :class:`~oipserve.settings.Settings` field of the same name and an ``OIPSERVE_*``
environment variable, derived from the field like every other option (``cli/_settings.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from oipserve.cli._settings import setting_option

F = TypeVar("F", bound=Callable[..., Any])


class WorkerCount(click.ParamType[int]):
    """A positive number of workers, or ``auto``: the cores this process may use (CPU affinity
    and the cgroup quota, :func:`oipserve.workers.cores.available_cores`)."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip().lower()
            if text == "auto":
                from oipserve.workers.cores import available_cores

                return available_cores()
            try:
                number = int(text)
            except ValueError:
                self.fail(f"'{value}' is not a number of workers (a whole number ≥ 1, or auto)")
        if number < 1:
            self.fail(f"{number} workers: give at least 1 (or auto)")
        return number


_OPTIONS: list[Callable[[F], F]] = [
    setting_option(
        "workers",
        "Serving processes sharing the ports (SO_REUSEPORT) under a supervisor that restarts "
        "them; auto: the cores this process may use (CPU affinity and cgroup quota). Each "
        "worker loads every model.",
        type=WorkerCount(),
    ),
    setting_option(
        "worker_restarts",
        "Worker restarts allowed within --worker-restart-window-secs; one more ends the "
        "server with exit code 1.",
        type=click.IntRange(min=0),
    ),
    setting_option(
        "worker_restart_window_secs",
        "The window --worker-restarts counts in, in seconds.",
        type=click.FloatRange(min=0, min_open=True),
    ),
    setting_option(
        "worker_startup_secs",
        "A worker that has not finished start-up (ports bound, start-up models tried) within "
        "this many seconds ends the server with exit code 1.",
        type=click.FloatRange(min=0, min_open=True),
    ),
]


def workers_options(command: F) -> F:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command
