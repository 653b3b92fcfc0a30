"""The seams of issue 11 as import rules: who may import whom (direct imports, lazy and
``TYPE_CHECKING`` ones included, read from the source by ``test_import_cycles.import_graph``)."""

from __future__ import annotations

import pytest

from tests.unit.test_import_cycles import import_graph


def imports_of(prefix: str) -> dict[str, set[str]]:
    return {
        module: targets
        for module, targets in import_graph().items()
        if module == prefix or module.startswith(prefix + ".")
    }


def offenders(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} → {target}"
        for module, targets in imports_of(prefix).items()
        for target in targets
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    )


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        # the scheduler knows requests, results and its policy: no runtime, no config schema
        ("oipserve.scheduling", ("oipserve.runtimes", "oipserve.repository", "oipserve.registry")),
        # execution runs instances; it knows nothing above it
        (
            "oipserve.execution",
            (
                "oipserve.registry",
                "oipserve.dataplane",
                "oipserve.scheduling",
                "oipserve.transport",
                "oipserve.repository.layout",
            ),
        ),
        # Triton's pb_utils speaks to the server only through oipserve.model.ServerCalls
        (
            "oipserve.compat",
            (
                "oipserve.transport",
                "oipserve.dataplane",
                "oipserve.registry",
                "oipserve.execution",
                "oipserve.scheduling",
            ),
        ),
        # access checks are transport-neutral: both transports (and any later stack) call them
        ("oipserve.auth", ("oipserve.transport", "oipserve.dataplane", "grpc", "uvicorn")),
        # transports render domain values; the registry's types stay behind the dataplane
        ("oipserve.transport", ("oipserve.registry", "oipserve.execution", "oipserve.runtimes")),
        # the dataplane neither reads folders and configs nor speaks protobuf
        (
            "oipserve.dataplane",
            (
                "oipserve.repository.layout",
                "oipserve.repository.triton",
                "oipserve.protocol.messages",
                "oipserve.protocol._generated",
                "oipserve.runtimes",
                "oipserve.execution",
            ),
        ),
    ],
)
def test_layer_imports_nothing_it_must_not(layer: str, forbidden: tuple[str, ...]) -> None:
    assert imports_of(layer), f"no module under {layer}"
    assert offenders(layer, forbidden) == []
