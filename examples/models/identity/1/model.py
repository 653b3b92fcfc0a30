"""Echo: every input ``INPUTk`` comes back unchanged as ``OUTPUTk`` (any datatype, any shape)."""

from __future__ import annotations

import oipserve


def _output_name(input_name: str) -> str:
    if input_name.startswith("INPUT"):
        return "OUTPUT" + input_name[len("INPUT") :]
    return input_name


class Identity(oipserve.Model):
    def infer(self, requests: list[oipserve.InferRequest]) -> list[oipserve.InferResponse]:
        return [
            oipserve.InferResponse(
                {_output_name(name): array for name, array in request.inputs.items()}
            )
            for request in requests
        ]
