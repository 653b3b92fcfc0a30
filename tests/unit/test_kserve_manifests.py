"""The KServe manifests in ``deploy/kserve/``, checked without a cluster.

- Against KServe's own API types: every document is deserialised into the ``kserve`` package's
  model classes (``V1alpha1ClusterServingRuntime``, ``V1beta1InferenceService``, with the
  Kubernetes types they embed) and serialised back; a field the types don't know would be
  dropped, a misspelt one renamed, so the round trip must give the document back unchanged.
- Against KServe's rules, restated from its Go source (kserve/kserve
  ``pkg/apis/serving/v1beta1/predictor_model.go``: ``RuntimeSupportsModel``,
  ``sortSupportedRuntimeByPriority``; ``pkg/webhook/admission/servingruntime/
  servingruntime_webhook.go``: ``validateServingRuntimePriority``;
  ``pkg/controller/v1beta1/inferenceservice/utils/utils.go``: ``MergeRuntimeContainers``): the
  runtime never wins a format from KServe's own runtimes unless an InferenceService names it, the
  admission webhook accepts it beside them, and each InferenceService ends up with one port.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.serving import ROOT

KSERVE = ROOT / "deploy" / "kserve"
RUNTIME_FILE = KSERVE / "cluster-serving-runtime.yaml"
FORMATS = ("sklearn", "xgboost", "lightgbm", "onnx", "triton")


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _runtime() -> dict[str, Any]:
    (runtime,) = _documents(RUNTIME_FILE)
    return runtime


def _services() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted(KSERVE.glob("*.yaml"))
        if path != RUNTIME_FILE
        for doc in _documents(path)
    ]


# -- KServe's API types ----------------------------------------------------------------------


def _all_documents() -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (str(path), index, doc)
        for path in sorted(KSERVE.glob("*.yaml"))
        for index, doc in enumerate(_documents(path))
    ]


@pytest.fixture(scope="module")
def round_tripped() -> dict[str, Any]:
    """Every document as KServe's API classes give it back (tests/kserve_roundtrip.py)."""
    if importlib.util.find_spec("kserve") is None:
        if os.environ.get("CI") == "true":
            raise AssertionError("CI must check the manifests against the kserve package")
        pytest.skip("the kserve package is not installed (it is in oipserve's test extra)")
    paths = sorted({path for path, _, _ in _all_documents()})
    result = subprocess.run(
        [sys.executable, "-m", "tests.kserve_roundtrip", *paths],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    back: dict[str, Any] = json.loads(result.stdout)
    return back


@pytest.mark.parametrize(
    ("path", "index", "document"),
    _all_documents(),
    ids=[f"{Path(path).name}#{index}" for path, index, _ in _all_documents()],
)
def test_round_trip_through_kserve_api_types(
    round_tripped: dict[str, Any], path: str, index: int, document: dict[str, Any]
) -> None:
    back = round_tripped[f"{path}#{index}"]
    assert _without_unset_defaults(back, document) == document


def _without_unset_defaults(serialised: Any, original: Any) -> Any:
    """``serialised`` without the fields a class fills with an empty default when the document
    left them out (``V1beta1ModelSpec.name`` is ``""``): those were added, not dropped."""
    if isinstance(serialised, dict) and isinstance(original, dict):
        return {
            key: _without_unset_defaults(value, original.get(key))
            for key, value in serialised.items()
            if key in original or value not in ("", [], {})
        }
    if isinstance(serialised, list) and isinstance(original, list):
        return [_without_unset_defaults(s, o) for s, o in zip(serialised, original, strict=False)]
    return serialised


# -- KServe's runtime selection, restated ------------------------------------------------------


@dataclass
class Runtime:
    """What KServe's selection reads of a ServingRuntime."""

    name: str
    protocols: list[str]
    formats: list[dict[str, Any]] = field(default_factory=list)

    def supports(self, model_format: str, version: str | None, *, named: bool) -> bool:
        """``RuntimeSupportsModel``: the runtime's format labels (only auto-selected formats,
        unless the InferenceService names the runtime) hold the model's label."""
        labels: set[str] = set()
        for entry in self.formats:
            if named or entry.get("autoSelect"):
                labels.add(entry["name"])
                if "version" in entry:
                    labels.add(f"{entry['name']}:{entry['version']}")
        return (f"{model_format}:{version}" if version else model_format) in labels

    def priority(self, model_format: str) -> int | None:
        """``GetPriority``: the priority of the first entry of that format name."""
        for entry in self.formats:
            if entry["name"] == model_format:
                priority: int | None = entry.get("priority")
                return priority
        return None


_PROTOCOL_ORDER = {"v1": 1, "v2": 2, "grpc-v1": 3, "grpc-v2": 4}

#: KServe's own ClusterServingRuntimes that claim our formats (kserve/kserve config/runtimes/
#: kserve-sklearnserver.yaml, -xgbserver, -lgbserver, -mlserver, -tritonserver), as of 2026-08
KSERVE_RUNTIMES = [
    Runtime(
        "kserve-sklearnserver",
        ["v1", "v2"],
        [{"name": "sklearn", "version": "1", "autoSelect": True, "priority": 1}],
    ),
    Runtime(
        "kserve-xgbserver",
        ["v1", "v2"],
        [{"name": "xgboost", "version": "2", "autoSelect": True, "priority": 1}],
    ),
    Runtime(
        "kserve-lgbserver",
        ["v1", "v2"],
        [{"name": "lightgbm", "version": "4", "autoSelect": True, "priority": 1}],
    ),
    Runtime(
        "kserve-mlserver",
        ["v2"],
        [
            {"name": name, "version": version, "autoSelect": True, "priority": 2}
            for name, version in [
                ("sklearn", "0"),
                ("sklearn", "1"),
                ("xgboost", "1"),
                ("xgboost", "2"),
                ("lightgbm", "3"),
                ("lightgbm", "4"),
            ]
        ],
    ),
    Runtime(
        "kserve-tritonserver",
        ["v2", "grpc-v2"],
        [
            {"name": "onnx", "version": "1", "autoSelect": True, "priority": 1},
            {"name": "pytorch", "version": "1"},
            {"name": "triton", "version": "2", "autoSelect": True, "priority": 1},
        ],
    ),
]


def _ours() -> Runtime:
    spec = _runtime()["spec"]
    return Runtime(
        _runtime()["metadata"]["name"], spec["protocolVersions"], spec["supportedModelFormats"]
    )


def _selected(
    runtimes: list[Runtime], model_format: str, version: str | None, protocol: str
) -> str | None:
    """The runtime KServe picks for an InferenceService naming none. ``runtimes`` is in creation
    order (oldest first); KServe sorts by lowest protocol, then newest first, then (stably) by
    priority, highest first, and takes the first that supports the format and the protocol."""
    candidates = [
        runtime
        for runtime in runtimes
        if runtime.supports(model_format, version, named=False) and protocol in runtime.protocols
    ]
    created = {runtime.name: index for index, runtime in enumerate(runtimes)}
    candidates.sort(
        key=lambda r: (min(_PROTOCOL_ORDER[p] for p in r.protocols), -created[r.name], r.name)
    )
    candidates.sort(key=lambda r: -(r.priority(model_format) or 0))
    return candidates[0].name if candidates else None


@pytest.mark.parametrize("model_format", FORMATS)
@pytest.mark.parametrize("version", [None, "1", "2", "4"])
@pytest.mark.parametrize("protocol", ["v1", "v2", "grpc-v2"])
def test_never_auto_selected_over_kserve_runtimes(
    model_format: str, version: str | None, protocol: str
) -> None:
    """Installed after KServe's runtimes (the newest wins ties), oipserve still never wins."""
    before = _selected(KSERVE_RUNTIMES, model_format, version, protocol)
    after = _selected([*KSERVE_RUNTIMES, _ours()], model_format, version, protocol)
    if before is not None:
        assert after == before


def test_chosen_by_name_for_every_format() -> None:
    ours = _ours()
    for model_format in FORMATS:
        assert ours.supports(model_format, None, named=True)
    assert not ours.supports("pytorch", None, named=True), "pytorch means TorchServe in KServe"


def test_auto_selected_when_kserve_runtimes_are_absent() -> None:
    for model_format in ("sklearn", "xgboost", "lightgbm"):
        assert _selected([_ours()], model_format, None, "v2") == "oipserve"


def test_admission_webhook_accepts_it_beside_kserve_runtimes() -> None:
    """``validateServingRuntimePriority``: two auto-selected entries of the same format name and
    version at the same priority, in runtimes sharing a protocol, are refused."""
    ours = _ours()
    for theirs in KSERVE_RUNTIMES:
        if not set(theirs.protocols) & set(ours.protocols):
            continue
        for mine in ours.formats:
            for other in theirs.formats:
                clash = (
                    mine.get("autoSelect")
                    and other.get("autoSelect")
                    and mine["name"].lower() == other["name"].lower()
                    and mine.get("version") == other.get("version")
                    and mine.get("priority") == other.get("priority")
                )
                assert not clash, f"{mine} clashes with {theirs.name}'s {other}"
    # validateModelFormatPrioritySame: one priority per auto-selected format name
    priorities: dict[str, int | None] = {}
    for entry in ours.formats:
        if entry.get("autoSelect"):
            assert priorities.setdefault(entry["name"], entry.get("priority")) == entry.get(
                "priority"
            )


# -- the runtime's conventions ------------------------------------------------------------------


def _container() -> dict[str, Any]:
    containers: list[dict[str, Any]] = _runtime()["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_runtime_follows_kserve_conventions() -> None:
    spec = _runtime()["spec"]
    assert spec["protocolVersions"] == ["v2", "grpc-v2"]
    assert spec["annotations"] == {
        "prometheus.kserve.io/port": "8080",
        "prometheus.kserve.io/path": "/metrics",
    }
    container = _container()
    assert container["name"] == "kserve-container"
    assert container["args"] == [
        "--model_name={{.Name}}",
        "--model_dir=/mnt/models",
        "--http_port=8080",
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    (mount,) = container["volumeMounts"]
    (volume,) = spec["volumes"]
    assert mount == {"name": volume["name"], "mountPath": "/dev/shm"}
    assert volume["emptyDir"] == {"medium": "Memory"}


def _merged_ports(service: dict[str, Any]) -> list[int]:
    """``MergeRuntimeContainers``: a strategic merge, ports keyed by ``containerPort``."""
    ports = {port["containerPort"] for port in _container().get("ports", [])}
    ports |= {
        port["containerPort"] for port in service["spec"]["predictor"]["model"].get("ports", [])
    }
    return sorted(ports) or [8080]  # none declared: Knative's (and KServe's) default user port


def test_every_format_has_a_rest_and_a_grpc_example() -> None:
    services = _services()
    assert {name for name, _ in services} == {f"{f}.yaml" for f in FORMATS}
    for model_format in FORMATS:
        protocols = sorted(
            doc["spec"]["predictor"]["model"]["protocolVersion"]
            for name, doc in services
            if name == f"{model_format}.yaml"
        )
        assert protocols == ["grpc-v2", "v2"], model_format


@pytest.mark.parametrize("name_and_service", _services(), ids=[n for n, _ in _services()])
def test_each_service_names_the_runtime_and_has_one_port(
    name_and_service: tuple[str, dict[str, Any]],
) -> None:
    name, service = name_and_service
    predictor = service["spec"]["predictor"]
    model = predictor["model"]
    assert model["runtime"] == "oipserve"
    assert model["modelFormat"]["name"] == name.removesuffix(".yaml")
    assert predictor["terminationGracePeriodSeconds"] >= 30
    if model["protocolVersion"] == "grpc-v2":
        assert model["ports"] == [{"name": "h2c", "containerPort": 8081, "protocol": "TCP"}]
        assert _merged_ports(service) == [8081]
    else:
        assert _merged_ports(service) == [8080]
