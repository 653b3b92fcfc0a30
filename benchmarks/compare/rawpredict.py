"""The RandomForest's own speed: ``model.predict`` on the request's rows in a loop, no server.

    python rawpredict.py MODEL.joblib ROWS.npy SECONDS

Prints ``{"rows_per_s": ..., "calls": ...}``. Run it pinned to the server's core.
"""

from __future__ import annotations

import json
import sys
import time

import joblib
import numpy as np


def main(argv: list[str]) -> None:
    model_path, rows_path, seconds = argv[1], argv[2], float(argv[3])
    model = joblib.load(model_path)
    rows = np.load(rows_path)
    model.predict(rows)  # warm-up
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        model.predict(rows)
        calls += 1
        now = time.perf_counter()
        if now >= deadline:
            break
    rows_per_s = calls * len(rows) / (now - started)
    print(json.dumps({"rows_per_s": rows_per_s, "calls": calls}))


if __name__ == "__main__":
    main(sys.argv)
