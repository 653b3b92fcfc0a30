"""The results, their medians and ratios, as markdown tables with the machine and versions."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.compare.cases import (
    AT_MOST_VS_MLSERVER,
    CASES,
    DESCRIPTIONS,
    MLSERVER_CONFIGS,
    MLSERVER_DEFAULT,
    OIPSERVE,
    RAW_PREDICT,
    REPOSITORIES,
    ROWS,
    START_SERVERS,
)
from benchmarks.compare.payloads import FOREST_ROWS


@dataclass(frozen=True)
class Sample:
    requests_per_s: float
    errors: int = 0


@dataclass(frozen=True)
class StartSample:
    ready_s: float
    processes: int
    rss_mib: float
    pss_mib: float


@dataclass
class Results:
    runs: int
    duration_s: int
    #: (server label, case key) → one sample per run
    load: dict[tuple[str, str], list[Sample]] = field(default_factory=lambda: defaultdict(list))
    #: rows per second of the bare predict loop, one per run
    raw_predict: list[float] = field(default_factory=list)
    #: (server label, repository variant) → one sample per start
    starts: dict[tuple[str, str], list[StartSample]] = field(
        default_factory=lambda: defaultdict(list)
    )
    failures: list[str] = field(default_factory=list)

    def rate(self, label: str, case: str) -> float | None:
        """Median requests/s (rows/s for the forest cases) over the runs, None if none ran."""
        if label == RAW_PREDICT:
            return statistics.median(self.raw_predict) if self.raw_predict else None
        samples = self.load.get((label, case))
        if not samples:
            return None
        rows = FOREST_ROWS if case.startswith("forest") else 1
        return statistics.median(s.requests_per_s for s in samples) * rows

    def errors(self, label: str, case: str) -> int:
        return sum(s.errors for s in self.load.get((label, case), []))

    def start_median(
        self, label: str, variant: str, what: Callable[[StartSample], float]
    ) -> float | None:
        samples = self.starts.get((label, variant))
        return statistics.median(what(s) for s in samples) if samples else None


def _best(
    values: dict[str, float | None], pick: Callable[[list[float]], float]
) -> tuple[float | None, str]:
    present = {label: v for label, v in values.items() if v is not None}
    if not present:
        return None, ""
    best = pick(list(present.values()))
    return best, next(label for label, v in present.items() if v == best)


def _rate(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:,.0f} {unit}"


def _ratio(ours: float | None, other: float | None, percent: bool = False) -> str:
    if ours is None or other is None or other == 0:
        return "—"
    ratio = ours / other
    return f"{ratio:.0%}" if percent else f"{ratio:.2f}x"


def _met(ratio: float | None, at_least: float | None = None, at_most: float | None = None) -> str:
    if ratio is None:
        return "—" if at_least is None and at_most is None else "not measured"
    if at_least is not None and ratio < at_least:
        return "**no**"
    if at_most is not None and ratio > at_most:
        return "**no**"
    return "yes" if at_least is not None or at_most is not None else "—"


def _divide(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _ready(sample: StartSample) -> float:
    return sample.ready_s


def _rss(sample: StartSample) -> float:
    return sample.rss_mib


def _pss(sample: StartSample) -> float:
    return sample.pss_mib


def _number(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def ratio_table(results: Results) -> str:
    lines = [
        "| case | oipserve | MLServer (best config) | oipserve / MLServer best | "
        "oipserve / MLServer default | floor | oipserve / floor | target | met (vs best; vs "
        "default) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in ROWS:
        unit = "rows/s" if row.case.startswith("forest") else "req/s"
        ours = results.rate(OIPSERVE, row.case)
        mls, mls_label = _best(
            {label: results.rate(label, row.mlserver_case) for label in MLSERVER_CONFIGS}, max
        )
        default = results.rate(MLSERVER_DEFAULT, row.mlserver_case)
        floor = results.rate(row.floor, row.case)
        vs_mls, vs_floor = _divide(ours, mls), _divide(ours, floor)
        vs_default = _divide(ours, default)
        targets, met = [], []
        if row.at_least_vs_mlserver is not None:
            targets.append(f"≥ {row.at_least_vs_mlserver:g}x MLServer")
            met.append(
                f"{_met(vs_mls, at_least=row.at_least_vs_mlserver)}; "
                f"{_met(vs_default, at_least=row.at_least_vs_mlserver)}"
            )
        if row.at_least_vs_floor is not None:
            targets.append(f"≥ {row.at_least_vs_floor:.0%} of floor")
            met.append(f"floor: {_met(vs_floor, at_least=row.at_least_vs_floor)}")
        title = CASES[row.case].title
        if row.mlserver_case != row.case:
            title += f" (MLServer: {CASES[row.mlserver_case].title.split(', ')[1]})"
        mls_text = _rate(mls, unit) + (f" ({mls_label})" if mls_label else "")
        lines.append(
            f"| {title} | {_rate(ours, unit)} | {mls_text} | {_ratio(ours, mls)} | "
            f"{_ratio(ours, default)} | "
            f"{_rate(floor, unit)} ({row.floor}) | {_ratio(ours, floor, percent=True)} | "
            f"{', '.join(targets) or '—'} | {', '.join(met) or '—'} |"
        )
    for variant, models in (("one", "1 model"), ("ten", "10 models")):
        for what, fmt, key in (
            ("cold start", "{:.2f} s", _ready),
            ("idle RSS", "{:.0f} MiB", _rss),
        ):
            ours_v = results.start_median(OIPSERVE, variant, key)
            mls_v, mls_label = _best(
                {
                    label: results.start_median(label, variant, key)
                    for label in START_SERVERS
                    if label != OIPSERVE
                },
                min,
            )
            ratio = _divide(ours_v, mls_v)
            default_ratio = _divide(ours_v, results.start_median(MLSERVER_DEFAULT, variant, key))
            target = variant == "one"
            start_met = (
                f"{_met(ratio, at_most=AT_MOST_VS_MLSERVER)}; "
                f"{_met(default_ratio, at_most=AT_MOST_VS_MLSERVER)}"
            )
            lines.append(
                f"| {what}, {models} | {fmt.format(ours_v) if ours_v is not None else '—'} | "
                f"{fmt.format(mls_v) if mls_v is not None else '—'}"
                f"{f' ({mls_label})' if mls_label else ''} | "
                f"{'—' if ratio is None else f'{ratio:.2f}x'} | "
                f"{'—' if default_ratio is None else f'{default_ratio:.2f}x'} | — | — | "
                f"{f'≤ {AT_MOST_VS_MLSERVER:g}x MLServer' if target else '—'} | "
                f"{start_met if target else '—'} |"
            )
    return "\n".join(lines)


def details_table(results: Results) -> str:
    labels = sorted({label for label, _ in results.load}, key=_label_order)
    lines = [
        "| case | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for key, case in CASES.items():
        cells = []
        for label in labels:
            samples = results.load.get((label, key))
            if not samples:
                cells.append("")
                continue
            rates = [s.requests_per_s for s in samples]
            cell = f"{statistics.median(rates):,.0f}"
            if len(rates) > 1:
                cell += f" ({min(rates):,.0f} to {max(rates):,.0f})"
            errors = results.errors(label, key)
            if errors:
                cell += f" **{errors} errors**"
            cells.append(cell)
        lines.append(f"| {case.title} | " + " | ".join(cells) + " |")
    if results.raw_predict:
        raw = results.raw_predict
        lines += [
            "",
            f"{RAW_PREDICT} (RandomForest predict() on 1,000 rows in a loop): "
            f"{statistics.median(raw):,.0f} rows/s"
            + (f" ({min(raw):,.0f} to {max(raw):,.0f})" if len(raw) > 1 else ""),
        ]
    return "\n".join(lines)


def start_table(results: Results) -> str:
    lines = [
        "| server | models | cold start s | idle RSS MiB (sum) | idle PSS MiB (sum) | processes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label in START_SERVERS:
        for variant in REPOSITORIES:
            samples = results.starts.get((label, variant))
            if not samples:
                continue
            lines.append(
                f"| {label} | {1 if variant == 'one' else 10} | "
                f"{_number(results.start_median(label, variant, _ready), '{:.2f}')} | "
                f"{_number(results.start_median(label, variant, _rss), '{:.0f}')} | "
                f"{_number(results.start_median(label, variant, _pss), '{:.0f}')} | "
                f"{max(s.processes for s in samples)} |"
            )
    return "\n".join(lines)


def _label_order(label: str) -> tuple[int, str]:
    order = [OIPSERVE, *MLSERVER_CONFIGS, "floor-asgi", "floor-grpc"]
    return (order.index(label) if label in order else len(order), label)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _tool_version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not found"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine(ours: dict[str, str | None], mlserver: dict[str, str | None]) -> list[tuple[str, str]]:
    def both(name: str) -> str:
        return f"{ours.get(name) or '—'} (oipserve) / {mlserver.get(name) or '—'} (MLServer)"

    return [
        ("CPU", cpu_model()),
        ("logical cores", str(os.cpu_count())),
        ("kernel", platform.release()),
        ("Python", platform.python_version()),
        ("oipserve", ours.get("oipserve") or "—"),
        (
            "MLServer",
            f"{mlserver.get('mlserver')} (mlserver-sklearn {mlserver.get('mlserver-sklearn')})",
        ),
        ("uvicorn", both("uvicorn")),
        ("grpcio", both("grpcio")),
        ("uvloop", both("uvloop")),
        ("scikit-learn", both("scikit-learn")),
        ("numpy", both("numpy")),
        ("wrk", _tool_version(["wrk", "-v"])),
        ("h2load", _tool_version(["h2load", "--version"])),
    ]


def render(
    results: Results, machine_info: list[tuple[str, str]], command: str, note: str = ""
) -> str:
    used = sorted(
        {label for label, _ in results.load} | {label for label, _ in results.starts},
        key=_label_order,
    )
    if results.raw_predict:
        used.append(RAW_PREDICT)
    parts = [
        "# oipserve compared with MLServer and with the floors",
        "",
        f"Written by `{command}`: {results.runs} run(s) of {results.duration_s} s per load case; "
        "every figure is the median over the runs. Each server is pinned to core 0 "
        "(`taskset -c 0`, all its processes), the load tool (wrk for REST over HTTP/1.1, h2load "
        "for gRPC, one connection per request in flight) to core 1. Every server gets the same "
        "request bytes. MLServer's figure is the best of the configurations tried "
        "(named in brackets); the ratio to MLServer's default configuration (the one the "
        "issue's reference figures come from) is shown beside it, and `met` is given against "
        "both.",
        "",
        *([f"**{note}**", ""] if note else []),
        "## Ratios",
        "",
        ratio_table(results),
        "",
        "## Every measurement (requests/s: median, min to max over runs)",
        "",
        details_table(results),
        "",
        "## Cold start (spawn to `/v2/health/ready` = 200) and idle memory (whole process tree)",
        "",
        start_table(results),
        "",
        "## Servers",
        "",
        *[f"- `{label}`: {DESCRIPTIONS.get(label, label)}" for label in used],
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in machine_info],
    ]
    if results.failures:
        parts += ["", "## Failures", "", *[f"- {' '.join(f.split())}" for f in results.failures]]
    return "\n".join(parts) + "\n"
