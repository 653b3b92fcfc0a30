"""Round-trip KServe manifests through the ``kserve`` package's API classes, in a process of its
own: ``python -m tests.kserve_roundtrip FILE...`` prints, as JSON, each document re-serialised
(``"FILE#INDEX"`` → the document as KServe's types give it back).

A separate process because importing ``kserve`` registers its own copy of the OIP gRPC messages
(package ``inference``) in protobuf's default descriptor pool, which refuses them once
``tritonclient.grpc`` has registered the same names in the test process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

_PRIMITIVES = {"str", "int", "float", "bool", "object", "date", "datetime"}
KINDS = {
    "ClusterServingRuntime": "V1alpha1ClusterServingRuntime",
    "InferenceService": "V1beta1InferenceService",
}


def deserialise(data: Any, type_name: str) -> Any:
    """``data`` (parsed YAML) as an instance of the OpenAPI-generated class ``type_name``,
    resolved among KServe's models, then Kubernetes'."""
    import kserve.models
    import kubernetes.client.models

    if type_name.lower().startswith("list["):
        return [deserialise(item, type_name[5:-1]) for item in data]
    if type_name.startswith(("dict(", "Dict[")):
        value_type = type_name[type_name.index(",") + 1 : -1].strip()
        return {key: deserialise(value, value_type) for key, value in data.items()}
    if type_name in _PRIMITIVES:
        return data
    klass = getattr(kserve.models, type_name, None) or getattr(kubernetes.client.models, type_name)
    kwargs = {
        attribute: deserialise(data[klass.attribute_map[attribute]], attribute_type)
        for attribute, attribute_type in klass.openapi_types.items()
        if klass.attribute_map[attribute] in data
    }
    return klass(**kwargs)


def round_trip(document: dict[str, Any]) -> Any:
    from kserve import ApiClient

    model = deserialise(document, KINDS[document["kind"]])
    return ApiClient().sanitize_for_serialization(model)


def main(paths: list[str]) -> None:
    result: dict[str, Any] = {}
    for path in paths:
        documents = [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
        for index, document in enumerate(documents):
            result[f"{path}#{index}"] = round_trip(document)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
