"""A small writer of the Prometheus text exposition format (version 0.0.4), for names we must not
change.

Why not prometheus-client for everything: its exposition renames every counter to ``…_total``
(custom collectors included), adds ``…_created`` samples, and its ``Summary`` has no quantiles.
Triton's families (``nv_inference_request_success``, a counter without ``_total``;
``nv_inference_queue_summary_us`` with ``quantile`` samples) and the families models publish
through the model API must appear exactly as named, as Triton's own prometheus-cpp serializer
writes them (triton-inference-server/core ``src/metrics.cc``). This module writes them, and the
``oipserve_*`` families too (named by Prometheus' conventions, ``_total`` counters included):
prometheus-client's writer was too slow for the scrape budget (see ``metrics.oipserve_families``).
prometheus-client's parser is what the tests read every exposition back with.

The format: https://prometheus.io/docs/instrumenting/exposition_formats/ (text-based format) —
``# HELP`` (``\\`` and newline escaped), ``# TYPE``, then one ``name{label="value"} number`` line
per sample, label values escaping ``\\``, ``"`` and newline.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What a scrape answers with, whatever its ``Accept`` header asks (any scraper reads it)."""

Kind = Literal["counter", "gauge", "histogram", "summary", "untyped"]
Labels = Sequence[tuple[str, str]]

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def valid_metric_name(name: str) -> bool:
    return bool(_METRIC_NAME.match(name))


def valid_label_name(name: str) -> bool:
    return bool(_LABEL_NAME.match(name)) and not name.startswith("__")


@dataclass(slots=True)
class Family:
    """One family and its sample lines, rendered as they are added."""

    name: str
    help: str
    kind: Kind
    lines: list[str] = field(default_factory=list)

    def add(self, labels: Labels, value: float, suffix: str = "") -> None:
        """A sample; ``suffix`` (``_bucket``, ``_sum``, …) follows the family name."""
        self.add_text(label_text(labels), value, suffix)

    def add_text(self, labels: str, value: float, suffix: str = "") -> None:
        """A sample whose labels are already rendered by :func:`label_text`."""
        body = f"{{{labels}}}" if labels else ""
        self.lines.append(f"{self.name}{suffix}{body} {format_value(value)}")


def format_value(value: float) -> str:
    """Integers without a fraction (``4``, as prometheus-cpp writes a whole double), other values
    in Python's shortest round-trip form; ``+Inf``, ``-Inf`` and ``NaN`` spelled as Prometheus
    reads them."""
    if isinstance(value, int):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_text(labels: Labels) -> str:
    """``a="1",b="2"``: the inside of a sample's braces (empty without labels)."""
    return ",".join(
        f'{name}="{_escape_label(value) if _NEEDS_ESCAPE.search(value) else value}"'
        for name, value in labels
    )


_NEEDS_ESCAPE = re.compile(r'[\\"\n]')


def write(families: Iterable[Family]) -> str:
    """The text exposition of ``families``, in the order given."""
    lines: list[str] = []
    append = lines.append
    for family in families:
        append(f"# HELP {family.name} {_escape_help(family.help)}")
        append(f"# TYPE {family.name} {family.kind}")
        lines.extend(family.lines)
    if not lines:
        return ""
    return "\n".join(lines) + "\n"


__all__ = [
    "CONTENT_TYPE",
    "Family",
    "Kind",
    "Labels",
    "format_value",
    "label_text",
    "valid_label_name",
    "valid_metric_name",
    "write",
]
