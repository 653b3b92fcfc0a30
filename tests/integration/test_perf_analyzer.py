"""Triton's perf_analyzer completes against ``iris`` over HTTP and gRPC, and the server-side
statistics it reads agree with the requests it sent.

perf_analyzer is a C++ binary installed by ``../shared/tools/perf-analyzer.sh`` into
``.perf-analyzer/`` (``benchmarks/perf_analyzer.sh`` does so on first use); these tests never
install it and skip where it is not installed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import ROOT, RunningServer, serve

TOOL = ROOT.parent / "shared" / "tools" / "perf-analyzer.sh"
INSTALL = ROOT / ".perf-analyzer"
CONCURRENCY = 4


def _installed() -> bool:
    return TOOL.is_file() and (INSTALL / "venv" / "bin" / "perf_analyzer").is_file()


pytestmark = pytest.mark.skipif(
    not _installed(), reason="perf_analyzer is not installed (run benchmarks/perf_analyzer.sh)"
)


@pytest.fixture(scope="module")
def running(
    examples_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with serve(examples_repository, tmp_dir=tmp_path_factory.mktemp("perf-analyzer")) as server:
        yield server


def _count(label: str, output: str) -> int:
    match = re.search(rf"^\s*{label}: (\d+)$", output, re.MULTILINE)
    assert match is not None, f"no '{label}' line in:\n{output}"
    return int(match.group(1))


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_perf_analyzer_completes_and_server_statistics_agree(
    running: RunningServer, protocol: str
) -> None:
    url = running.http_url if protocol == "http" else running.grpc_url
    result = subprocess.run(
        [
            str(TOOL),
            "--dir",
            str(INSTALL),
            "-m",
            "iris",
            "-u",
            url,
            "-i",
            protocol,
            "--concurrency-range",
            str(CONCURRENCY),
            "--measurement-mode",
            "count_windows",
            "--measurement-request-count",
            "200",
            "-s",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    sent = _count("Request count", output)
    served = _count("Successful request count", output)
    # the client counts the requests that finished inside its window, the server those it answered
    # between two statistics reads: they differ by at most the requests in flight at either edge
    assert sent > 0
    assert abs(sent - served) <= 2 * CONCURRENCY, output
    assert _count("Inference count", output) == served  # batch size 1: one element each
