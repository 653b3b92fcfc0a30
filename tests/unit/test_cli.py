"""The CLI is a thin layer over Settings: flags, env vars, the repository alias."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from oipserve import cli
from oipserve.settings import Settings


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    seen: list[Settings] = []
    monkeypatch.setattr("oipserve.server.run", seen.append)
    monkeypatch.setattr(cli, "_configure_logging", lambda *args: None)
    return seen


def test_defaults(tmp_path: Path, captured: list[Settings]) -> None:
    result = CliRunner().invoke(cli.main, ["serve", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (settings,) = captured
    assert settings.model_repository == tmp_path.resolve()
    assert settings.host == "0.0.0.0"
    assert (settings.http_port, settings.grpc_port) == (8080, 8081)
    assert settings.http_max_request_bytes == 64 * 1024 * 1024


def test_flags(tmp_path: Path, captured: list[Settings]) -> None:
    args = [
        "serve",
        "--model-repository",
        str(tmp_path),
        "--http-port",
        "9000",
        "--grpc-port",
        "9001",
        "--host",
        "127.0.0.1",
        "--http-max-request-mb",
        "2",
        "--load-model",
        "a",
        "--load-model",
        "b",
    ]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    (settings,) = captured
    assert (settings.http_port, settings.grpc_port, settings.host) == (9000, 9001, "127.0.0.1")
    assert settings.http_max_request_bytes == 2 * 1024 * 1024
    assert settings.load_models == ("a", "b")


def test_environment_variables(tmp_path: Path, captured: list[Settings]) -> None:
    env = {
        "OIPSERVE_MODEL_REPOSITORY": str(tmp_path),
        "OIPSERVE_HTTP_PORT": "7000",
        "OIPSERVE_GRPC_MAX_MESSAGE_MB": "3",
        "OIPSERVE_STRICT_READINESS": "false",
    }
    result = CliRunner().invoke(cli.main, ["serve"], env=env)
    assert result.exit_code == 0, result.output
    (settings,) = captured
    assert settings.http_port == 7000
    assert settings.grpc_max_message_bytes == 3 * 1024 * 1024
    assert settings.strict_readiness is False


def test_missing_or_bad_repository(tmp_path: Path, captured: list[Settings]) -> None:
    result = CliRunner().invoke(cli.main, ["serve"])
    assert result.exit_code == 2
    assert "model repository" in result.output
    result = CliRunner().invoke(cli.main, ["serve", str(tmp_path / "absent")])
    assert result.exit_code == 2
    assert not captured


def test_version_and_help() -> None:
    assert "oipserve" in CliRunner().invoke(cli.main, ["--version"]).output
    help_text = CliRunner().invoke(cli.main, ["serve", "--help"]).output
    assert "--http-port" in help_text
    assert "--model-repository" in help_text


def test_model_control_flags(tmp_path: Path, captured: list[Settings]) -> None:
    result = CliRunner().invoke(cli.main, ["serve", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert captured[-1].model_control_mode == "explicit"
    assert captured[-1].repository_poll_secs == 15
    args = ["serve", str(tmp_path), "--model-control-mode", "poll", "--repository-poll-secs", "0.5"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    assert (captured[-1].model_control_mode, captured[-1].repository_poll_secs) == ("poll", 0.5)
    env = {
        "OIPSERVE_MODEL_CONTROL_MODE": "none",
        "OIPSERVE_REPOSITORY_POLL_SECS": "2",
    }
    result = CliRunner().invoke(cli.main, ["serve", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    assert (captured[-1].model_control_mode, captured[-1].repository_poll_secs) == ("none", 2)
    result = CliRunner().invoke(
        cli.main, ["serve", str(tmp_path)], env={"OIPSERVE_LOAD_MODELS": "a b"}
    )
    assert result.exit_code == 0, result.output
    assert captured[-1].load_models == ("a", "b")


@pytest.mark.parametrize(
    "args",
    [
        ["--model-control-mode", "sometimes"],
        ["--repository-poll-secs", "0"],
        ["--model-control-mode", "poll", "--load-model", "a"],
        ["--model-control-mode", "none", "--load-model", "*"],
    ],
)
def test_bad_model_control_flags(tmp_path: Path, captured: list[Settings], args: list[str]) -> None:
    result = CliRunner().invoke(cli.main, ["serve", str(tmp_path), *args])
    assert result.exit_code == 2
    assert not captured


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, False),
        (["--access-log"], {}, True),
        (["--access-log=false"], {}, False),
        (["--access-log", "true"], {}, True),
        ([], {"OIPSERVE_ACCESS_LOG": "1"}, True),
    ],
)
def test_access_log_flag(
    tmp_path: Path,
    captured: list[Settings],
    args: list[str],
    env: dict[str, str],
    expected: bool,
) -> None:
    result = CliRunner().invoke(cli.main, ["serve", str(tmp_path), *args], env=env)
    assert result.exit_code == 0, result.output
    assert captured[0].access_log is expected


def test_observability_flags(tmp_path: Path, captured: list[Settings]) -> None:
    args = ["serve", str(tmp_path), "--log-format", "json", "--log-file", str(tmp_path / "log")]
    args += ["--allow-metrics=false", "--metrics-port", "8002"]
    args += [
        "--metrics-config",
        "summary_latencies=true",
        "--metrics-config",
        "counter_latencies=false",
    ]
    args += ["--trace-config", "mode=opentelemetry", "--trace-config", "rate=10"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    (settings,) = captured
    assert (settings.log_format, settings.log_file) == ("json", str(tmp_path / "log"))
    assert (settings.allow_metrics, settings.metrics_port) == (False, 8002)
    assert settings.metrics_config == ("summary_latencies=true", "counter_latencies=false")
    assert settings.trace_config == ("mode=opentelemetry", "rate=10")


def test_observability_environment_and_defaults(
    tmp_path: Path, captured: list[Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(cli.main, ["serve", str(tmp_path), "--allow-metrics"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("OIPSERVE_LOG_FORMAT", "ISO8601")
    monkeypatch.setenv("OIPSERVE_ALLOW_METRICS", "false")
    result = CliRunner().invoke(cli.main, ["serve", str(tmp_path)])
    assert result.exit_code == 0, result.output
    default, from_env = captured
    assert (default.allow_metrics, default.metrics_port, default.log_format) == (
        True,
        None,
        "default",
    )
    assert (from_env.allow_metrics, from_env.log_format) == (False, "ISO8601")
