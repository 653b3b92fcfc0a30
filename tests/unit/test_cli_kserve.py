"""KServe's spellings of the serve options: ``--model_name=…``, ``--model_dir=…``,
``--http_port=…``, ``--grpc_port=…`` (kserve/kserve python/kserve/kserve/model_server.py's
arguments), in both the ``=`` and the separate-value form."""

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
    monkeypatch.setattr(cli, "_configure_logging", lambda level: None)
    return seen


def _serve(args: list[str], env: dict[str, str] | None = None) -> None:
    result = CliRunner().invoke(cli.main, ["serve", *args], env=env)
    assert result.exit_code == 0, result.output


def test_kserve_runtime_arguments(tmp_path: Path, captured: list[Settings]) -> None:
    """The ClusterServingRuntime's args, exactly as deploy/kserve spells them."""
    _serve(["--model_name=iris", f"--model_dir={tmp_path}", "--http_port=9000", "--grpc_port=9001"])
    (settings,) = captured
    assert settings.model_name == "iris"
    assert settings.model_repository == tmp_path.resolve()
    assert (settings.http_port, settings.grpc_port) == (9000, 9001)


def test_separate_value_forms(tmp_path: Path, captured: list[Settings]) -> None:
    _serve(["--model_name", "a", "--model_dir", str(tmp_path), "--http_port", "9000"])
    _serve(["--model-name", "b", "--model-dir", str(tmp_path), "--grpc-port", "9001"])
    first, second = captured
    assert (first.model_name, first.http_port) == ("a", 9000)
    assert (second.model_name, second.grpc_port) == ("b", 9001)
    assert first.model_repository == second.model_repository == tmp_path.resolve()


def test_model_name_defaults_to_none_given(tmp_path: Path, captured: list[Settings]) -> None:
    _serve([str(tmp_path)])
    assert captured[0].model_name == ""


def test_command_line_repository_wins_over_the_environment(
    tmp_path: Path, captured: list[Settings]
) -> None:
    """The image sets OIPSERVE_MODEL_REPOSITORY=/mnt/models; ``--model_dir`` still chooses."""
    other = tmp_path / "other"
    other.mkdir()
    _serve([f"--model_dir={other}"], env={"OIPSERVE_MODEL_REPOSITORY": str(tmp_path)})
    assert captured[0].model_repository == other.resolve()


def test_argument_and_option_still_must_agree(tmp_path: Path, captured: list[Settings]) -> None:
    other = tmp_path / "other"
    other.mkdir()
    result = CliRunner().invoke(cli.main, ["serve", str(tmp_path), f"--model_dir={other}"])
    assert result.exit_code == 2
    assert "disagree" in result.output
    assert not captured
