"""Each setting is defined once: every :class:`Settings` field is exactly one option of
``oipserve serve`` (flag ``--<field-with-dashes>``, environment variable ``OIPSERVE_<FIELD>``) and
every option is a field; switches take an optional boolean; ports are checked (fix 6)."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Literal

import click
import pytest
from click.testing import CliRunner

from oipserve import cli
from oipserve.cli._settings import env_of, flag_of
from oipserve.settings import Settings

FIELDS = {field.name: field for field in dataclasses.fields(Settings)}
HINTS = typing.get_type_hints(Settings)
BOOLEANS = sorted(name for name, hint in HINTS.items() if hint is bool)


def _serve_parameters() -> dict[str, list[click.Parameter]]:
    """Each serve parameter under the setting it gives (the alias option under its field)."""
    serve = cli.main.commands["serve"]
    by_setting: dict[str, list[click.Parameter]] = {}
    alias_of = {option: field for field, option in cli.ALIASES.items()}
    for parameter in serve.params:
        if parameter.name in ("help",):
            continue
        assert parameter.name is not None
        by_setting.setdefault(alias_of.get(parameter.name, parameter.name), []).append(parameter)
    return by_setting


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    seen: list[Settings] = []
    monkeypatch.setattr("oipserve.server.run", seen.append)
    monkeypatch.setattr(cli, "_configure_logging", lambda *args, **kwargs: None)
    return seen


def test_every_field_is_one_option_and_every_option_a_field() -> None:
    by_setting = _serve_parameters()
    assert sorted(by_setting) == sorted(FIELDS)
    for name, parameters in by_setting.items():
        if name in cli.ALIASES:  # the positional argument and its option spelling
            argument, option = parameters
            assert isinstance(argument, click.Argument)
            assert isinstance(option, click.Option)
            assert option.name == cli.ALIASES[name]
            assert argument.envvar == env_of(name)
            assert flag_of(name) in option.opts
            continue
        (parameter,) = parameters
        assert isinstance(parameter, click.Option), name
        assert parameter.envvar == env_of(name), name
        assert parameter.opts[0] == flag_of(name), name
        assert parameter.help, f"--{name} has no help text"


def test_option_defaults_are_the_settings_defaults(
    tmp_path: Path, captured: list[Settings]
) -> None:
    result = CliRunner().invoke(cli.main, ["serve", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert captured == [Settings(model_repository=tmp_path.resolve())]


def test_literal_fields_are_choices_of_their_values() -> None:
    by_setting = _serve_parameters()
    literals = {n: h for n, h in HINTS.items() if typing.get_origin(h) is Literal}
    assert {"model_control_mode", "log_level"} <= set(literals)
    for name, hint in literals.items():
        (parameter,) = by_setting[name]
        assert isinstance(parameter.type, click.Choice)
        assert tuple(parameter.type.choices) == typing.get_args(hint)


@pytest.mark.parametrize("name", BOOLEANS)
def test_every_switch_takes_an_optional_boolean(
    name: str, tmp_path: Path, captured: list[Settings]
) -> None:
    """Triton's spelling: bare ``--allow-grpc`` is true, ``--allow-grpc=false`` false."""
    flag = flag_of(name)
    # the other transport stays on: both off is refused
    other = {"allow_http": ["--allow-grpc"], "allow_grpc": ["--allow-http"]}.get(name, [])
    runner = CliRunner()
    for args, expected in (
        ([flag], True),
        ([f"{flag}=false"], False),
        ([f"{flag}=true"], True),
        ([flag, "0"], False),
        ([f"{flag}=yes"], True),
    ):
        result = runner.invoke(cli.main, ["serve", str(tmp_path), *other, *args])
        assert result.exit_code == 0, (args, result.output)
        assert getattr(captured[-1], name) is expected, args
    result = runner.invoke(cli.main, ["serve", str(tmp_path), *other], env={env_of(name): "false"})
    assert result.exit_code == 0, result.output
    assert getattr(captured[-1], name) is False
    result = runner.invoke(cli.main, ["serve", str(tmp_path), f"{flag}=maybe"])
    assert result.exit_code == 2
    assert "'maybe' is not a valid boolean" in result.output


def test_transports_can_be_switched_off(tmp_path: Path, captured: list[Settings]) -> None:
    runner = CliRunner()
    result = runner.invoke(cli.main, ["serve", str(tmp_path), "--allow-grpc=false"])
    assert result.exit_code == 0, result.output
    assert (captured[-1].allow_http, captured[-1].allow_grpc) == (True, False)
    result = runner.invoke(cli.main, ["serve", str(tmp_path)], env={"OIPSERVE_ALLOW_HTTP": "0"})
    assert result.exit_code == 0, result.output
    assert (captured[-1].allow_http, captured[-1].allow_grpc) == (False, True)
    count = len(captured)
    args = ["serve", str(tmp_path), "--allow-http=false", "--allow-grpc=false"]
    result = runner.invoke(cli.main, args)
    assert result.exit_code == 2
    assert "allow_http and allow_grpc are both false: nothing would be served" in result.output
    assert len(captured) == count


@pytest.mark.parametrize("flag", ["--http-port", "--grpc-port"])
@pytest.mark.parametrize("port", ["-1", "65536", "100000"])
def test_ports_outside_the_range_are_refused(
    flag: str, port: str, tmp_path: Path, captured: list[Settings]
) -> None:
    result = CliRunner().invoke(cli.main, ["serve", str(tmp_path), flag, port])
    assert result.exit_code == 2
    kserve = flag.replace("-", "_").replace("__", "--")  # --http_port, KServe's spelling
    message = f"Invalid value for '{flag}' / '{kserve}': {port} is not in the range 0<=x<=65535"
    assert message in result.output
    assert not captured


def test_port_zero_asks_for_any_free_port(tmp_path: Path, captured: list[Settings]) -> None:
    args = ["serve", str(tmp_path), "--http-port", "0", "--grpc-port=0"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    assert (captured[-1].http_port, captured[-1].grpc_port) == (0, 0)


def test_settings_check_themselves_when_built_by_code(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="http_port must be a port number from 0 to 65535"):
        Settings(model_repository=tmp_path, http_port=65536)
    with pytest.raises(ValueError, match="grpc_port must be a port number"):
        Settings(model_repository=tmp_path, grpc_port=-1)
    with pytest.raises(ValueError, match="nothing would be served"):
        Settings(model_repository=tmp_path, allow_http=False, allow_grpc=False)


def test_load_model_keeps_tritons_spelling(tmp_path: Path, captured: list[Settings]) -> None:
    args = ["serve", str(tmp_path), "--load-model", "a", "--load-models", "b"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    assert captured[-1].load_models == ("a", "b")
