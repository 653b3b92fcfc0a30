"""``oipserve infer | models | bench`` through click's CliRunner against a real server, bad input
included, and each command once end to end as a process."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from oipserve import cli
from tests.serving import RunningServer, free_port, serve


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def _iris_rows(tmp_path: Path) -> dict[str, Path]:
    files = {
        "npy": tmp_path / "rows.npy",
        "json": tmp_path / "rows.json",
        "csv": tmp_path / "rows.csv",
    }
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    np.save(files["npy"], np.array(rows, dtype=np.float64))
    files["json"].write_text(json.dumps(rows))
    files["csv"].write_text("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    return files


@pytest.mark.parametrize("kind", ["npy", "json", "csv"])
@pytest.mark.parametrize("wire", ["rest", "grpc"])
def test_infer_from_files(server: RunningServer, tmp_path: Path, kind: str, wire: str) -> None:
    path = _iris_rows(tmp_path)[kind]
    url = server.base_url if wire == "rest" else f"grpc://{server.grpc_url}"
    result = _run("infer", "iris", "--url", url, "-i", f"input-0={path}", "--output", "json")
    assert result.exit_code == 0, result.output
    (predict,) = json.loads(result.output)["outputs"]
    assert predict == {"name": "predict", "datatype": "INT64", "shape": [2], "data": [0, 2]}


def test_infer_literal_table_and_example(server: RunningServer) -> None:
    result = _run("infer", "iris", "--url", server.base_url, "-i", "input-0=[5.1, 3.5, 1.4, 0.2]")
    assert result.exit_code == 0, result.output
    assert "predict" in result.output
    assert "INT64" in result.output
    result = _run("infer", "simple", "--url", server.base_url, "--example", "--output", "json")
    assert result.exit_code == 0, result.output
    outputs = {o["name"]: o["data"] for o in json.loads(result.output)["outputs"]}
    assert outputs == {"OUTPUT0": [2] * 16, "OUTPUT1": [0] * 16}
    result = _run(
        "infer", "simple", "--grpc", "--url", server.grpc_url, "--example", "-r", "OUTPUT1"
    )
    assert result.exit_code == 0, result.output
    assert "OUTPUT1" in result.output
    assert "OUTPUT0" not in result.output


def test_infer_bad_input(server: RunningServer, tmp_path: Path) -> None:
    url = server.base_url
    shape = _run("infer", "iris", "--url", url, "-i", "input-0=[[1, 2, 3]]")
    assert shape.exit_code == 1
    assert "error: input 'input-0' has shape [1, 3], but model 'iris' expects [-1, 4]" in (
        shape.output
    )
    unknown = _run("infer", "iris", "--url", url, "-i", "petals=[1, 2, 3, 4]")
    assert unknown.exit_code == 1
    assert "model 'iris' has no input 'petals' (its inputs: input-0)" in unknown.output
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    pickled = _run("infer", "iris", "--url", url, "-i", f"input-0={objects}")
    assert pickled.exit_code == 1
    assert "holds Python objects" in pickled.output
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,3,4\n1,2,3\n")
    rows = _run("infer", "iris", "--url", url, "-i", f"input-0={ragged}")
    assert rows.exit_code == 1
    assert "row 2 has 3 values but row 1 has 4" in rows.output
    missing = _run("infer", "iris", "--url", url)
    assert missing.exit_code == 1
    assert "--example" in missing.output
    model = _run("infer", "nope", "--url", url, "--example")
    assert model.exit_code == 1
    assert "Request for unknown model: 'nope'" in model.output


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_unreachable_url_is_one_line_and_status_2(scheme: str) -> None:
    result = _run("infer", "iris", "--url", f"{scheme}://127.0.0.1:{free_port()}", "--example")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: cannot reach")


def test_models_list_config_stats(server: RunningServer) -> None:
    listed = _run("models", "--url", server.base_url)
    assert listed.exit_code == 0, listed.output
    for name in ("iris", "simple", "identity", "READY"):
        assert name in listed.output
    grpc_listed = _run("models", "list", "--grpc", "--url", server.grpc_url, "--ready")
    assert grpc_listed.exit_code == 0, grpc_listed.output
    assert "iris" in grpc_listed.output
    config = _run("models", "config", "iris", "--url", server.base_url)
    assert config.exit_code == 0, config.output
    assert json.loads(config.output)["max_batch_size"] == 64
    stats = _run("models", "--url", server.base_url, "stats", "--json")
    assert stats.exit_code == 0, stats.output
    assert {m["name"] for m in json.loads(stats.output)["model_stats"]} >= {"iris"}
    table = _run("models", "stats", "iris", "--url", server.base_url)
    assert table.exit_code == 0, table.output
    assert "iris" in table.output
    missing = _run("models", "config", "nope", "--url", server.base_url)
    assert missing.exit_code == 1
    assert "unknown model" in missing.output


def test_models_load_and_unload_with_reasons(examples_repository: Path, tmp_path: Path) -> None:
    with serve(examples_repository, "--load-model", "simple", tmp_dir=tmp_path) as running:
        url = running.base_url
        loaded = _run("models", "load", "iris", "--url", url)
        assert loaded.exit_code == 0, loaded.output
        assert "loaded iris" in loaded.output
        unloaded = _run("models", "unload", "iris", "--url", url)
        assert unloaded.exit_code == 0, unloaded.output
        listed = _run("models", "list", "--url", url)
        assert "UNAVAILABLE" in listed.output
        assert "unloaded" in listed.output  # the reason column
        failed = _run("models", "load", "no-such-model", "--url", url)
        assert failed.exit_code == 1
        assert "no-such-model" in failed.output
        bad_config = _run("models", "load", "iris", "--url", url, "--config", "{not json")
        assert bad_config.exit_code == 1
        assert "--config is not valid JSON" in bad_config.output


def test_bench_rest_and_grpc(server: RunningServer) -> None:
    for args in (["--url", server.base_url, "--binary"], ["--grpc", "--url", server.grpc_url]):
        result = _run(
            "bench", "iris", *args, "-c", "1,2", "--duration", "0.5", "--warmup", "0.1", "--json"
        )
        assert result.exit_code == 0, result.output
        levels = json.loads(result.output)
        assert [level["concurrency"] for level in levels] == [1, 2]
        for level in levels:
            assert level["requests"] > 0
            assert level["errors"] == 0
            assert 0 < level["p50_ms"] <= level["p90_ms"] <= level["p99_ms"] <= level["max_ms"]
            assert level["throughput"] == pytest.approx(level["requests"] / 0.5)


def test_bench_refuses_before_running(server: RunningServer, tmp_path: Path) -> None:
    zero = _run("bench", "iris", "--url", server.base_url, "--concurrency", "0")
    assert zero.exit_code == 2
    assert "each concurrency must be at least 1, got 0" in zero.output
    missing = _run("bench", "nope", "--url", server.base_url)
    assert missing.exit_code == 1
    assert "Request for unknown model: 'nope'" in missing.output
    assert "requests" not in missing.output  # no run started
    wrong = _run("bench", "iris", "--url", server.base_url, "-i", "input-0=[1, 2]")
    assert wrong.exit_code == 1
    assert "expects [-1, 4]" in wrong.output


def test_bench_plot_needs_the_extra(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    result = _run("bench", "iris", "--url", server.base_url, "--plot", str(tmp_path / "p.png"))
    assert result.exit_code == 2
    assert "pip install 'oipserve[plot]'" in result.output


def test_each_command_end_to_end(server: RunningServer, tmp_path: Path) -> None:
    """As a user runs them: python -m oipserve ... in a process of its own."""
    base = [sys.executable, "-m", "oipserve"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], capture_output=True, text=True, timeout=120, check=False
        )

    inferred = run("infer", "iris", "--url", server.base_url, "-i", "input-0=[6.7,3.0,5.2,2.3]")
    assert inferred.returncode == 0, inferred.stderr
    assert "[2]" in inferred.stdout
    listed = run("models", "--url", server.base_url)
    assert listed.returncode == 0, listed.stderr
    assert "iris" in listed.stdout
    plot = tmp_path / "bench.svg"
    benched = run(
        "bench",
        "iris",
        "--url",
        server.base_url,
        "-c",
        "1,2",
        "-d",
        "0.5",
        "--warmup",
        "0.1",
        "--plot",
        str(plot),
    )
    assert benched.returncode == 0, benched.stderr
    assert "p99 ms" in benched.stdout
    assert plot.read_text().startswith("<?xml")
