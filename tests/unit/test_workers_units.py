"""``--workers``: the option's values, the cores ``auto`` finds, statistics merged across workers,
and the supervisor's port probe."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from oipserve import cli
from oipserve.errors import StartupError
from oipserve.scheduling.statistics import ModelStatistics, merge_statistics
from oipserve.settings import Settings
from oipserve.workers import cores
from oipserve.workers.supervisor import probe_ports


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    seen: list[Settings] = []
    monkeypatch.setattr("oipserve.server.run", seen.append)

    def supervise(settings: Settings) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr("oipserve.workers.supervisor.supervise", supervise)
    monkeypatch.setattr(cli, "_configure_logging", lambda level: None)
    return seen


def test_workers_default_to_one_and_take_a_number_or_auto(
    tmp_path: Path, captured: list[Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli.main, ["serve", str(tmp_path)]).exit_code == 0
    assert captured[-1].workers == 1
    result = runner.invoke(
        cli.main,
        [
            "serve",
            str(tmp_path),
            "--workers",
            "3",
            "--worker-restarts",
            "2",
            "--worker-restart-window-secs",
            "10",
            "--worker-startup-secs",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    settings = captured[-1]
    assert (settings.workers, settings.worker_restarts) == (3, 2)
    assert (settings.worker_restart_window_secs, settings.worker_startup_secs) == (10, 5)
    monkeypatch.setattr(cores, "available_cores", lambda: 7)
    assert runner.invoke(cli.main, ["serve", str(tmp_path), "--workers", "auto"]).exit_code == 0
    assert captured[-1].workers == 7
    result = runner.invoke(cli.main, ["serve", str(tmp_path)], env={"OIPSERVE_WORKERS": "2"})
    assert result.exit_code == 0 and captured[-1].workers == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "0 workers: give at least 1 (or auto)"),
        ("-2", "-2 workers: give at least 1 (or auto)"),
        ("many", "'many' is not a number of workers"),
        ("1.5", "'1.5' is not a number of workers"),
    ],
)
def test_a_bad_worker_count_is_a_clear_cli_error(
    tmp_path: Path, captured: list[Settings], value: str, message: str
) -> None:
    for args, env in (
        (["serve", str(tmp_path), "--workers", value], {}),
        (["serve", str(tmp_path)], {"OIPSERVE_WORKERS": value}),
    ):
        result = CliRunner().invoke(cli.main, args, env=env)
        assert result.exit_code == 2
        assert "--workers" in result.output and message in result.output
    assert captured == []


def test_auto_counts_the_cores_this_process_may_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "cgroup"
    (root / "kubepods" / "pod").mkdir(parents=True)
    (root / "kubepods" / "cpu.max").write_text("max 100000\n")
    (root / "kubepods" / "pod" / "cpu.max").write_text("150000 100000\n")
    proc = tmp_path / "cgroup-of-self"
    proc.write_text("0::/kubepods/pod\n")
    assert cores.quota_cores(root, proc) == 1.5
    (root / "kubepods" / "cpu.max").write_text("50000 100000\n")  # a tighter parent wins
    assert cores.quota_cores(root, proc) == 0.5
    proc.write_text("12:cpu:/v1-only\n")
    assert cores.quota_cores(root, proc) is None  # cgroup v1: no quota read
    monkeypatch.setattr(cores, "affinity_cores", lambda: 8)
    monkeypatch.setattr(cores, "quota_cores", lambda: 1.5)
    assert cores.available_cores() == 2  # a 1.5-core quota rounds up, below the 8 cores allowed
    monkeypatch.setattr(cores, "quota_cores", lambda: None)
    assert cores.available_cores() == 8
    monkeypatch.setattr(cores, "affinity_cores", lambda: 3)
    monkeypatch.setattr(cores, "quota_cores", lambda: 16.0)
    assert cores.available_cores() == 3


def test_statistics_of_several_workers_merge_into_one_answer() -> None:
    a = ModelStatistics(wall_clock_ms=lambda: 1000)
    b = ModelStatistics(wall_clock_ms=lambda: 3000)
    timing = {
        "request_ns": 10,
        "queue_ns": 1,
        "compute_infer_ns": 5,
        "compute_input_ns": 2,
        "compute_output_ns": 3,
    }
    a.record_success(elements=2, **timing)
    a.record_execution(2, 5)
    b.record_success(elements=1, **timing)
    b.record_execution(1, 7)
    b.record_failure(4)
    other = ModelStatistics()
    other.record_execution(4, 9)
    merged = merge_statistics(
        [
            {"model_stats": [a.snapshot("m", "1"), other.snapshot("n", "1")]},
            {"model_stats": [b.snapshot("m", "1")]},
        ]
    )
    m, n = merged["model_stats"]
    assert (m["name"], n["name"]) == ("m", "n")
    assert m["last_inference"] == 3000  # the latest of the workers
    assert (m["inference_count"], m["execution_count"]) == (3, 2)
    stats = m["inference_stats"]
    assert stats["success"] == {"count": 2, "ns": 20}
    assert stats["fail"] == {"count": 1, "ns": 4}
    assert stats["compute_output"] == {"count": 2, "ns": 6}
    assert [s["batch_size"] for s in m["batch_stats"]] == [1, 2]
    assert m["batch_stats"][0]["compute_infer"] == {"count": 1, "ns": 7}
    # the inputs are left as they were
    assert a.snapshot("m", "1")["inference_stats"]["success"]["count"] == 1
    twice = merge_statistics([{"model_stats": [a.snapshot("m", "1")]}] * 2)
    assert twice["model_stats"][0]["batch_stats"][0]["compute_infer"] == {"count": 2, "ns": 10}


def test_the_port_probe_resolves_port_zero_and_names_a_port_taken() -> None:
    settings = probe_ports(Settings(Path("."), host="127.0.0.1", http_port=0, grpc_port=0))
    assert settings.http_port > 0 and settings.grpc_port > 0
    assert settings.http_port != settings.grpc_port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=f"cannot listen for HTTP on 127.0.0.1:{port}"):
            probe_ports(Settings(Path("."), host="127.0.0.1", http_port=port, grpc_port=0))
        with pytest.raises(StartupError, match=f"cannot listen for gRPC on 127.0.0.1:{port}"):
            probe_ports(Settings(Path("."), host="127.0.0.1", http_port=0, grpc_port=port))
