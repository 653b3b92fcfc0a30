"""A Triton Python-backend model against the same logic as an ``oipserve.Model``: REST binary, wrk.

    python benchmarks/triton_python_bench.py [--duration 10] [--concurrency 8] [--rounds 3]

Both models are add/sub (Triton's python_backend ``examples/add_sub``: OUTPUT0 = INPUT0 + INPUT1,
OUTPUT1 = INPUT0 - INPUT1, FP32 [4]) in one repository served by one ``oipserve serve`` pinned to
core 0; wrk on core 1 POSTs the same binary-extension request (inputs and outputs binary) to each,
alternating for ``--rounds`` rounds, and the table shows each round and the median ratio. Issue 16
asks for the Python-backend model at >= 80% of the ``oipserve.Model``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._harness import WrkResult, markdown_table, oipserve, run_wrk
from benchmarks.binary_bench import binary_case, check

TRITON_ADD_SUB = """
import json

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        out0 = pb_utils.get_output_config_by_name(config, "OUTPUT0")
        out1 = pb_utils.get_output_config_by_name(config, "OUTPUT1")
        self.out0 = pb_utils.triton_string_to_numpy(out0["data_type"])
        self.out1 = pb_utils.triton_string_to_numpy(out1["data_type"])

    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT0", (a + b).astype(self.out0)),
                pb_utils.Tensor("OUTPUT1", (a - b).astype(self.out1)),
            ]))
        return responses
"""

OIPSERVE_ADD_SUB = """
from oipserve import InferRequest, InferResponse, Model


class AddSub(Model):
    def infer(self, requests: list[InferRequest]) -> list[InferResponse]:
        results = []
        for request in requests:
            a, b = request.inputs["INPUT0"], request.inputs["INPUT1"]
            results.append(InferResponse({"OUTPUT0": a + b, "OUTPUT1": a - b}))
        return results
"""

TOML = """
backend = "python"
[[input]]
name = "INPUT0"
data_type = "TYPE_FP32"
dims = [4]
[[input]]
name = "INPUT1"
data_type = "TYPE_FP32"
dims = [4]
[[output]]
name = "OUTPUT0"
data_type = "TYPE_FP32"
dims = [4]
[[output]]
name = "OUTPUT1"
data_type = "TYPE_FP32"
dims = [4]
"""


def write_repository(root: Path) -> None:
    for name, code in (("add_sub_triton", TRITON_ADD_SUB), ("add_sub_oipserve", OIPSERVE_ADD_SUB)):
        (root / name / "1").mkdir(parents=True)
        (root / name / "1" / "model.py").write_text(code)
        (root / name / "model.toml").write_text(TOML)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wrk-core", default="1", help="core to pin wrk to ('' for no pinning)")
    args = parser.parse_args()
    a = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    b = np.array([0.5, 0.25, 2.0, -1.0], dtype=np.float32)
    body, headers = binary_case([("INPUT0", a, "FP32"), ("INPUT1", b, "FP32")])
    rows: list[tuple[str, WrkResult]] = []
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_repository(root)
        with oipserve(root) as url:
            for model in ("add_sub_triton", "add_sub_oipserve"):
                check(f"{url}/v2/models/{model}/infer", body, headers, warm_up=200)
            for round_ in range(1, args.rounds + 1):
                measured = {}
                for model in ("add_sub_triton", "add_sub_oipserve"):
                    result = run_wrk(
                        f"{url}/v2/models/{model}/infer",
                        body,
                        args.concurrency,
                        args.duration,
                        headers=headers,
                        core=args.wrk_core or None,
                    )
                    measured[model] = result
                    rows.append((f"round {round_}: {model}", result))
                ratios.append(
                    measured["add_sub_triton"].requests_per_s
                    / measured["add_sub_oipserve"].requests_per_s
                )
    print(markdown_table("add/sub, REST binary in and out, server on core 0", rows))
    print()
    print(
        f"Python-backend / oipserve.Model req/s: median {statistics.median(ratios):.1%} "
        f"(rounds: {', '.join(f'{r:.1%}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
