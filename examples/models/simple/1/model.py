"""Triton's quick-start model: the sum and the difference of two INT32 tensors."""

from __future__ import annotations

import numpy as np

import oipserve


class Simple(oipserve.Model):
    def infer(self, requests: list[oipserve.InferRequest]) -> list[oipserve.InferResponse]:
        responses = []
        for request in requests:
            a = request.inputs["INPUT0"]
            b = request.inputs["INPUT1"]
            outputs = {"OUTPUT0": np.add(a, b), "OUTPUT1": np.subtract(a, b)}
            responses.append(oipserve.InferResponse(outputs))
        return responses
