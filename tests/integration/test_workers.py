"""``--workers 2`` through a real server and Triton's clients: one server to every client (load,
unload, readiness, index and statistics the same through each worker), the supervisor's restarts
and crash-loop exit, ports, start-up limits, SIGTERM during a restart, one poll watcher.

Connections are spread over the workers by the kernel (``SO_REUSEPORT``); a test reaches both by
opening fresh connections, and a model that answers with its process id says which one answered.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from tests.serving import RunningServer, free_port, run_command

WHOAMI = """\
import os, time
import numpy as np
import oipserve


class Model(oipserve.Model):
    def infer(self, requests):
        results = []
        for r in requests:
            seconds = float(r.inputs["x"].flat[0])
            if seconds > 0:
                with open(os.environ["OIPSERVE_TEST_HOLDER"], "w") as f:
                    f.write(str(os.getpid()))
                time.sleep(seconds)
            results.append(oipserve.InferResponse({"pid": np.array([os.getpid()], np.int64)}))
        return results
"""

SLOW_LOAD = """\
import time
import oipserve


class Model(oipserve.Model):
    def load(self, ctx):
        time.sleep(60)
"""


def repository(root: Path, *, slow: bool = False) -> Path:
    for name, source in (("whoami", WHOAMI), ("other", WHOAMI)):
        folder = root / name / "1"
        folder.mkdir(parents=True)
        (folder / "model.py").write_text(source)
    if slow:
        folder = root / "slow" / "1"
        folder.mkdir(parents=True)
        (folder / "model.py").write_text(SLOW_LOAD)
    return root


def command(root: Path, http: int, grpc: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "oipserve",
        "serve",
        str(root),
        "--host",
        "127.0.0.1",
        "--http-port",
        str(http),
        "--grpc-port",
        str(grpc),
        "--workers",
        "2",
        *extra,
    ]


@contextmanager
def workers(
    root: Path, tmp_path: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    http, grpc = free_port(), free_port()
    env = {"OIPSERVE_TEST_HOLDER": str(tmp_path / "holder"), **(env or {})}
    with run_command(command(root, http, grpc, *extra), http, grpc, tmp_dir=tmp_path, env=env) as s:
        yield s


def whoami(server: RunningServer, model: str = "whoami", seconds: float = 0.0) -> int:
    """Ask ``model`` which process answers, over a fresh connection."""
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [seconds]}]}
    response = httpx.post(f"{server.base_url}/v2/models/{model}/infer", json=body, timeout=60)
    assert response.status_code == 200, response.text
    pid: int = response.json()["outputs"][0]["data"][0]
    return pid


def worker_pids(server: RunningServer) -> set[int]:
    pids: set[int] = set()
    for _ in range(200):
        pids.add(whoami(server))
        if len(pids) == 2:
            return pids
    raise AssertionError(f"only {pids} answered")


def every_worker(server: RunningServer, check: Callable[[httpx.Response], bool], path: str) -> None:
    """``check`` holds for the answer to ``path`` over 30 fresh connections (both workers)."""
    for _ in range(30):
        response = httpx.get(f"{server.base_url}{path}", timeout=30)
        assert check(response), response.text


def wait_until(condition: Callable[[], bool], what: str, limit_s: float = 90) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {limit_s} s"
        time.sleep(0.05)


def test_two_workers_look_like_one_server_to_every_client(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    with workers(root, tmp_path) as server:
        pids = worker_pids(server)
        assert server.process.pid not in pids
        every_worker(server, lambda r: r.status_code == 200, "/v2/health/ready")
        # an unload through one worker has taken effect in every worker when it answers
        http = httpclient.InferenceServerClient(server.http_url)
        http.unload_model("other")
        every_worker(server, lambda r: r.status_code == 503, "/v2/models/other/ready")
        index = httpx.post(f"{server.base_url}/v2/repository/index").json()
        for _ in range(20):
            assert httpx.post(f"{server.base_url}/v2/repository/index").json() == index
        assert {"name": "other", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"} in (
            index
        )
        # a load through gRPC, likewise; the configuration answers the same everywhere
        grpc = grpcclient.InferenceServerClient(server.grpc_url)
        grpc.load_model("other")
        every_worker(server, lambda r: r.status_code == 200, "/v2/models/other/ready")
        every_worker(server, lambda r: r.json()["name"] == "other", "/v2/models/other/config")
        # statistics: summed over the workers, whichever answers
        for _ in range(5):
            httpx.get(f"{server.base_url}/v2/models/whoami/stats")  # no inference counted
        base = http.get_inference_statistics("whoami")["model_stats"][0]
        served = {whoami(server) for _ in range(40)}
        assert served == pids  # both workers took some of the 40
        for _ in range(10):
            stats = http.get_inference_statistics("whoami")["model_stats"][0]
            success = stats["inference_stats"]["success"]["count"]
            assert success == base["inference_stats"]["success"]["count"] + 40
            assert stats["execution_count"] == base["execution_count"] + 40
            assert stats["batch_stats"][0]["batch_size"] == 1
            assert stats["batch_stats"][0]["compute_infer"]["count"] == stats["execution_count"]
            over_grpc = grpc.get_inference_statistics("whoami", as_json=True)["model_stats"][0]
            assert int(over_grpc["inference_stats"]["success"]["count"]) == success
        http.close()
        grpc.close()
        # one-worker start-up logs, the supervisor's own
        log = server.log()
        assert "2 workers serving: REST at port" in log
        assert "[worker 0]" in log and "[worker 1]" in log


def test_a_killed_worker_is_restarted_and_serves_what_its_siblings_serve(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    with workers(root, tmp_path) as server:
        pids = worker_pids(server)
        httpclient.InferenceServerClient(server.http_url).unload_model("other")
        victim = min(pids)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: "restarting it in" in server.log(), "restarting")

        def ready_again() -> bool:
            return httpx.get(f"{server.base_url}/v2/health/ready").status_code == 200 and (
                "is serving" in server.log().split("restarting it in")[-1]
            )

        wait_until(ready_again, "ready again")
        print(f"ready again {time.monotonic() - killed:.2f} s after kill -9")
        new = worker_pids(server)
        assert victim not in new and (pids - {victim}) < new
        # the restarted worker got the unload made before it started
        every_worker(server, lambda r: r.status_code == 503, "/v2/models/other/ready")
        every_worker(server, lambda r: r.status_code == 200, "/v2/health/ready")
        assert f"worker 0 (pid {victim}) was killed by signal SIGKILL" in server.log() or (
            f"worker 1 (pid {victim}) was killed by signal SIGKILL" in server.log()
        )


def test_workers_that_keep_dying_end_the_server(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    with workers(root, tmp_path, "--worker-restarts", "1") as server:
        first = worker_pids(server)
        os.kill(min(first), signal.SIGKILL)
        wait_until(lambda: "1 of 1 restarts" in server.log(), "restarted once")
        wait_until(
            lambda: httpx.get(f"{server.base_url}/v2/health/ready").status_code == 200, "ready"
        )
        os.kill(max(first), signal.SIGKILL)
        assert server.process.wait(timeout=90) == 1
        assert "workers died 2 times within 60 s" in server.log()
        assert "stopping the server" in server.log()
        for pid in worker_pids_of(server.process.pid):
            pytest.fail(f"worker {pid} outlived the supervisor")


def worker_pids_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def test_sigterm_during_a_worker_restart_still_drains(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    holder = tmp_path / "holder"
    with workers(root, tmp_path) as server:
        pids = worker_pids(server)
        answer: list[int] = []
        slow = threading.Thread(target=lambda: answer.append(whoami(server, seconds=3.0)))
        slow.start()
        wait_until(holder.exists, "the slow request running")
        busy = int(holder.read_text())
        (idle,) = pids - {busy}
        os.kill(idle, signal.SIGKILL)
        wait_until(lambda: "restarting it in" in server.log(), "restarting")
        server.process.send_signal(signal.SIGTERM)
        slow.join(timeout=60)
        assert answer == [busy]  # the request in flight finished
        assert server.process.wait(timeout=60) == 0
        assert "stopped" in server.log()


def test_a_port_taken_fails_start_up_naming_it(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for http, grpc, what in ((port, free_port(), "HTTP"), (free_port(), port, "gRPC")):
            done = subprocess.run(
                command(root, http, grpc), capture_output=True, text=True, timeout=120, check=False
            )
            assert done.returncode == 1
            assert f"cannot listen for {what} on 127.0.0.1:{port}" in done.stdout + done.stderr


def test_port_zero_is_chosen_once_for_every_worker(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    log_path = tmp_path / "zero.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command(root, 0, 0),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200", "OIPSERVE_TEST_HOLDER": str(tmp_path / "holder")},
        )
    try:
        wait_until(lambda: "2 workers serving" in log_path.read_text(), "serving")
        line = next(
            line for line in log_path.read_text().splitlines() if "2 workers serving" in line
        )
        http = int(re.search(r"REST at port (\d+)", line).group(1))  # type: ignore[union-attr]
        grpc = int(re.search(r"gRPC at port (\d+)", line).group(1))  # type: ignore[union-attr]
        server = RunningServer(process, http, grpc, log_path)
        assert len(worker_pids(server)) == 2
        client = grpcclient.InferenceServerClient(server.grpc_url)
        assert client.is_server_ready()
        client.close()
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0


def test_a_worker_that_never_finishes_start_up_ends_the_server(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo", slow=True)
    started = time.monotonic()
    done = subprocess.run(
        command(root, free_port(), free_port(), "--worker-startup-secs", "3"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 1
    assert "did not finish start-up within 3 s" in done.stdout + done.stderr
    assert time.monotonic() - started < 60


def test_poll_mode_runs_one_watcher_and_every_worker_follows_it(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    with workers(
        root, tmp_path, "--model-control-mode", "poll", "--repository-poll-secs", "0.3"
    ) as server:
        worker_pids(server)
        folder = root / "late" / "1"
        folder.mkdir(parents=True)
        (folder / "model.py").write_text(WHOAMI)
        wait_until(
            lambda: httpx.get(f"{server.base_url}/v2/models/late/ready").status_code == 200,
            "late loaded",
        )
        wait_until(lambda: server.log().count("model 'late' version 1 is READY") == 2, "both")
        every_worker(server, lambda r: r.status_code == 200, "/v2/models/late/ready")
        log = server.log()
        assert log.count("polling") == 1 and "one watcher for all workers" in log


def test_one_worker_is_the_single_process_server(tmp_path: Path) -> None:
    """``--workers 1`` (the default) starts no supervisor: the server process serves."""
    root = repository(tmp_path / "repo")
    http, grpc = free_port(), free_port()
    cmd = [*command(root, http, grpc)[:-2], "--workers", "1"]
    with run_command(
        cmd, http, grpc, tmp_dir=tmp_path, env={"OIPSERVE_TEST_HOLDER": str(tmp_path / "h")}
    ) as server:
        assert {whoami(server) for _ in range(10)} == {server.process.pid}
        assert "starting 2 workers" not in server.log()
