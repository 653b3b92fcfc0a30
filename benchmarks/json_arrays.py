"""JSON number arrays ↔ numpy: every candidate parser and printer on the 1000x20 FP32 case.

    python -m benchmarks.json_arrays [--rows 1000] [--cols 20] [--repeat 30]

Parses the ``data`` array of a 1000x20 FP32 request (flat, as tritonclient sends it: each float32
printed as the shortest double that round-trips) into a float32 array, and prints a float32 array
back, with each candidate: msgspec (oipserve's path: a list of Python floats, then
``np.asarray``), orjson, pysimdjson (``Array.as_buffer``: straight into a buffer of doubles),
cysimdjson, yyjson, fastsimdjson, and two numpy-only parsers of our own (``np.fromstring`` on the
text without brackets, ``bytes.split`` + ``np.array``). Every result is checked to be the same
array as oipserve's path. Candidates whose library is missing are skipped
(``pip install pysimdjson cysimdjson yyjson fastsimdjson``). Best of 5 timings of ``repeat``
calls each; run it pinned (``taskset -c 1``) on an otherwise idle core.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import orjson


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def candidates(raw: bytes) -> dict[str, Callable[[], np.ndarray]]:
    generic = msgspec.json.Decoder()
    found: dict[str, Callable[[], np.ndarray]] = {
        "msgspec + np.asarray (oipserve)": lambda: np.asarray(generic.decode(raw)).astype(
            np.float32
        ),
        "orjson + np.asarray": lambda: np.asarray(orjson.loads(raw)).astype(np.float32),
        "np.fromstring (ours, numpy only)": lambda: np.fromstring(
            raw.translate(None, b" \t\n\r[]"), dtype=np.float64, sep=","
        ).astype(np.float32),
        "bytes.split + np.array (ours, numpy only)": lambda: np.array(
            raw.translate(None, b" \t\n\r[]").split(b","), dtype=np.float64
        ).astype(np.float32),
    }
    simdjson = _optional("simdjson")
    if simdjson is not None:
        parser = simdjson.Parser()
        found["pysimdjson as_buffer"] = lambda: np.frombuffer(
            parser.parse(raw).as_buffer(of_type="d"), dtype=np.float64
        ).astype(np.float32)
    cysimdjson = _optional("cysimdjson")
    if cysimdjson is not None:
        cparser = cysimdjson.JSONParser()
        found["cysimdjson + list"] = lambda: np.asarray(list(cparser.parse(raw))).astype(np.float32)
    yyjson = _optional("yyjson")
    if yyjson is not None:
        found["yyjson + np.asarray"] = lambda: np.asarray(yyjson.loads(raw)).astype(np.float32)
    fastsimdjson = _optional("fastsimdjson")
    if fastsimdjson is not None:
        found["fastsimdjson + np.asarray"] = lambda: np.asarray(fastsimdjson.loads(raw)).astype(
            np.float32
        )
    return found


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    values = np.random.default_rng(0).standard_normal((args.rows, args.cols)).astype(np.float32)
    raw = orjson.dumps(values.ravel().tolist())
    expected = np.asarray(msgspec.json.decode(raw)).astype(np.float32)
    print(f"| parse {values.size:,} numbers ({len(raw):,} bytes) into FP32 | ms | vs oipserve |")
    print("|---|---:|---:|")
    rows = []
    for name, fn in candidates(raw).items():
        if not np.array_equal(fn(), expected):
            raise SystemExit(f"{name} parsed different numbers")
        rows.append((name, best_ms(fn, args.repeat)))
    reference = rows[0][1]
    for name, ms in sorted(rows, key=lambda row: row[1]):
        print(f"| {name} | {ms:.3f} | {reference / ms:.2f}x |")
    flat = values.reshape(-1)
    printers: dict[str, Callable[[], object]] = {
        "orjson from the array (oipserve)": lambda: orjson.dumps(
            flat, option=orjson.OPT_SERIALIZE_NUMPY
        ),
        "tolist + msgspec": lambda: msgspec.json.encode(flat.tolist()),
    }
    print()
    print(f"| print {values.size:,} FP32 numbers | ms |")
    print("|---|---:|")
    for name, printer in printers.items():
        print(f"| {name} | {best_ms(printer, args.repeat):.3f} |")


if __name__ == "__main__":
    main()
