"""Ray Serve: oipserve alone against oipserve through Ray Serve's proxy, 1 and 2 model replicas.

    python -m benchmarks.ray_bench [--duration 10] [--concurrency 1 8]

Needs ``oipserve[ray]``, ``wrk``, root (for the network namespace) and ~2 GB of memory. Starts the
local two-node Ray cluster of the tests (tests/ray_cluster.py: two ``ray start`` processes on
127.0.0.1 in a network namespace of their own), then drives the iris example with wrk, one JSON
request of one row per call (the README's request):

* **oipserve alone**: ``oipserve serve`` on the same machine, in the same namespace;
* **Ray, 1 replica**: ``oipserve.ray.deploy`` with one replica of the model, through the head
  node's proxy (proxy → ingress replica → model replica: two hops inside Ray);
* **Ray, 2 replicas**: the same with two replicas, one per node.

Nothing is pinned to a core: Ray's processes (GCS, raylets, proxies, replicas) spread over the
machine's cores with wrk and the server, as they would on one host. It prints a markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import EXAMPLES, WrkResult, markdown_table, oipserve, run_wrk, wait_ready

BODY = b'{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'


def _ray_case(
    repository: Path, replicas: int, concurrencies: list[int], duration_s: int
) -> list[tuple[str, WrkResult]]:
    from ray import serve

    import oipserve.ray
    from tests.ray_cluster import HEAD_PROXY_PORT

    options: dict[str, Any] = {
        "num_replicas": replicas,
        "max_replicas_per_node": 1,
        "ray_actor_options": {"num_cpus": 0.5},
    }
    oipserve.ray.deploy(repository, name="bench", models={"iris": options})
    url = f"http://127.0.0.1:{HEAD_PROXY_PORT}"
    try:
        wait_ready(url, timeout=120)
        run_wrk(f"{url}/v2/models/iris/infer", BODY, 4, 2, core=None)  # warm-up
        label = f"Ray Serve, {replicas} replica{'s' if replicas > 1 else ''}"
        return [
            (label, run_wrk(f"{url}/v2/models/iris/infer", BODY, c, duration_s, core=None))
            for c in concurrencies
        ]
    finally:
        serve.delete("bench")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args(argv)
    from ray import serve

    from tests.ray_cluster import HEAD_PROXY_PORT, network_namespace, two_node_cluster

    rows: list[tuple[str, WrkResult]] = []
    with tempfile.TemporaryDirectory(prefix="oipserve-ray-bench-") as tmp:
        repository = Path(tmp) / "repository"
        shutil.copytree(EXAMPLES / "iris", repository / "iris")
        logs = Path(tmp) / "logs"
        logs.mkdir()
        with network_namespace():
            with oipserve(repository, core=None) as url:
                run_wrk(f"{url}/v2/models/iris/infer", BODY, 4, 2, core=None)  # warm-up
                for c in args.concurrency:
                    result = run_wrk(
                        f"{url}/v2/models/iris/infer", BODY, c, args.duration, core=None
                    )
                    rows.append(("oipserve alone", result))
            started = time.monotonic()
            with two_node_cluster(logs):
                serve.start(http_options={"host": "127.0.0.1", "port": HEAD_PROXY_PORT})
                print(
                    f"two-node Ray cluster up in {time.monotonic() - started:.0f}s", file=sys.stderr
                )
                try:
                    for replicas in (1, 2):
                        rows += _ray_case(repository, replicas, args.concurrency, args.duration)
                finally:
                    serve.shutdown()  # type: ignore[no-untyped-call]
    rows.sort(key=lambda row: row[1].concurrency)
    print(
        markdown_table("iris, one JSON row per request: oipserve alone and through Ray Serve", rows)
    )


if __name__ == "__main__":
    main()
