"""A local two-node Ray cluster for the Ray Serve tests, inside a network namespace of its own.

Two ``ray start --block`` processes (a head and a worker) with ``--node-ip-address=127.0.0.1``:
both nodes listen on the loopback interface, so they run in a private network namespace where
their ports (GCS, raylets, Serve's proxies on 8000 and 8001) can clash with nothing else on the
machine. The test process enters that namespace for the duration (``setns`` on its own thread,
which the Ray processes and every client it starts inherit) and leaves it afterwards. The worker's
Serve proxy binds 8001 (``RAY_SERVE_WORKER_PROXY_HTTP_PORT``), so each node's proxy can be called
on its own port. ``--block`` keeps each ``ray start`` in the foreground: stopping it (by its
process id) stops the node's processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNET = 0x40000000
HEAD_PROXY_PORT = 8000
WORKER_PROXY_PORT = 8001
GCS_PORT = 6379
START_TIMEOUT_S = 120.0


def _setns(fd: int) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns(CLONE_NEWNET) failed: {os.strerror(errno)}")


@contextlib.contextmanager
def network_namespace() -> Iterator[None]:
    """Run the calling thread (and what it starts) in a new network namespace with ``lo`` up."""
    holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
    original = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        ours = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{holder.pid}/ns/net") == ours:
            if time.monotonic() > deadline or holder.poll() is not None:
                raise RuntimeError("unshare --net did not create a network namespace")
            time.sleep(0.01)
        target = os.open(f"/proc/{holder.pid}/ns/net", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            yield
        finally:
            _setns(original)
    finally:
        os.close(original)
        holder.kill()
        holder.wait()


@dataclass
class RayCluster:
    head: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    log_dir: Path

    address = f"127.0.0.1:{GCS_PORT}"

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


def _ray_start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    executable = str(Path(sys.executable).parent / "ray")
    with log.open("wb") as out:
        return subprocess.Popen(
            [executable, "start", "--block", "--node-ip-address=127.0.0.1", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _wait_for_nodes(count: int, cluster: RayCluster) -> None:
    import ray

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for process in (cluster.head, cluster.worker):
            if process.poll() is not None:
                raise RuntimeError(f"a ray node exited early:\n{cluster.logs()}")
        alive = [node for node in ray.nodes() if node["Alive"]]  # type: ignore[no-untyped-call]
        if len(alive) >= count:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the Ray cluster did not reach {count} nodes:\n{cluster.logs()}")


@contextlib.contextmanager
def two_node_cluster(log_dir: Path, num_cpus: int = 2) -> Iterator[RayCluster]:
    """Start the head and one worker, connect this process as the driver; stop them after."""
    import ray

    # Ray's token authentication (on by default for `ray start`) is switched off: nothing outside
    # this network namespace can reach the cluster, and a driver reads its auth mode once per
    # process (at import), which a test cannot arrange
    env = dict(
        os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1"
    )
    common = [f"--num-cpus={num_cpus}", "--disable-usage-stats"]
    head = _ray_start(
        ["--head", f"--port={GCS_PORT}", "--include-dashboard=false", *common],
        log_dir / "ray-head.log",
        env,
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        _wait_for_gcs(head, log_dir)
        worker = _ray_start(
            [f"--address=127.0.0.1:{GCS_PORT}", *common],
            log_dir / "ray-worker.log",
            dict(env, RAY_SERVE_WORKER_PROXY_HTTP_PORT=str(WORKER_PROXY_PORT)),
        )
        cluster = RayCluster(head, worker, log_dir)
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            _wait_for_nodes(2, cluster)
            yield cluster
        finally:
            ray.shutdown()
    finally:
        for process in (worker, head):
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_gcs(head: subprocess.Popen[bytes], log_dir: Path) -> None:
    import socket

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError((log_dir / "ray-head.log").read_text(errors="replace"))
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", GCS_PORT)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("the Ray head's GCS did not listen in time")
