"""An OpenAPI 3.1 document of the REST API, generated from the route table (``/v2/openapi.json``).

Every route with a restricted-API category gets an operation: path parameters from its pattern,
its category as the tag, and the request and response schemas of :data:`OPERATIONS` when the
route's name is there. A route added later without an entry still gets an operation (any JSON body,
the OIP error shape for errors), so the document never lags the table (a test holds every route to
it). Routes without a category (the console's files) and whole mounted applications
(``/metrics``) are not part of the API and are left out. Schemas follow PROTOCOL.md §2 and §3.
"""

from __future__ import annotations

from typing import Any, Final

from oipserve import __version__
from oipserve.transport.http.routing import Route, Router

JSON = "application/json"

_PARAMETER: Final = {
    "type": "object",
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}
_TENSOR_DATA: Final = {
    "description": "The tensor's elements, flat or nested in row-major order",
    "type": ["array", "number", "string", "boolean"],
}

SCHEMAS: Final[dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "Live": {"type": "object", "required": ["live"], "properties": {"live": {"type": "boolean"}}},
    "Ready": {
        "type": "object",
        "required": ["ready"],
        "properties": {"ready": {"type": "boolean"}, "error": {"type": "string"}},
    },
    "ModelReady": {
        "type": "object",
        "required": ["name", "ready"],
        "properties": {
            "name": {"type": "string"},
            "ready": {"type": "boolean"},
            "error": {"type": "string"},
        },
    },
    "ServerMetadata": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "TensorMetadata": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    },
    "ModelMetadata": {
        "type": "object",
        "required": ["name", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/TensorMetadata"}},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/TensorMetadata"}},
        },
    },
    "RequestInput": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string"},
            "parameters": _PARAMETER,
            "data": _TENSOR_DATA,
        },
    },
    "RequestOutput": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "parameters": _PARAMETER},
    },
    "InferenceRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": _PARAMETER,
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/RequestInput"}},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/RequestOutput"}},
        },
    },
    "ResponseOutput": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "parameters": _PARAMETER,
            "data": _TENSOR_DATA,
        },
    },
    "InferenceResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": _PARAMETER,
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/ResponseOutput"}},
        },
    },
    "RepositoryIndexRequest": {
        "type": "object",
        "properties": {"ready": {"type": "boolean"}},
    },
    "RepositoryIndex": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "state": {"type": "string"},
                "reason": {"type": "string"},
            },
        },
    },
    "RepositoryLoadRequest": {
        "type": "object",
        "properties": {
            "parameters": {
                "type": "object",
                "description": "'config': the model configuration as JSON; 'file:<path>': base64 "
                "file contents (refused unless --allow-model-upload)",
                "additionalProperties": {"type": "string"},
            }
        },
    },
    "RepositoryUnloadRequest": {
        "type": "object",
        "properties": {
            "parameters": {
                "type": "object",
                "properties": {"unload_dependents": {"type": "boolean"}},
            }
        },
    },
    "Statistics": {
        "type": "object",
        "required": ["model_stats"],
        "properties": {"model_stats": {"type": "array", "items": {"type": "object"}}},
    },
    "ModelConfig": {"type": "object", "description": "Triton's model configuration as JSON"},
    "AnyJSON": {},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"description": description or "OK", "content": {JSON: {"schema": schema}}}


_EMPTY: Final = {"description": "OK (an empty body)"}

OPERATIONS: Final[dict[str, dict[str, Any]]] = {
    "server_metadata": {"responses": {"200": _json(_ref("ServerMetadata"))}},
    "server_live": {"responses": {"200": _json(_ref("Live"))}},
    "server_ready": {"responses": {"200": _json(_ref("Ready")), "503": _json(_ref("Ready"))}},
    "statistics": {"responses": {"200": _json(_ref("Statistics"))}},
    "repository_index": {
        "request": _ref("RepositoryIndexRequest"),
        "responses": {"200": _json(_ref("RepositoryIndex"))},
    },
    "load": {"request": _ref("RepositoryLoadRequest"), "responses": {"200": _EMPTY}},
    "unload": {"request": _ref("RepositoryUnloadRequest"), "responses": {"200": _EMPTY}},
    "named_index": {"request": _ref("RepositoryIndexRequest"), "responses": {}},
    "named_load": {"request": _ref("RepositoryLoadRequest"), "responses": {}},
    "named_unload": {"request": _ref("RepositoryUnloadRequest"), "responses": {}},
    "openapi": {"responses": {"200": _json({"type": "object"}, "This document")}},
}
for _suffix in ("", "_version"):
    OPERATIONS[f"model_metadata{_suffix}"] = {"responses": {"200": _json(_ref("ModelMetadata"))}}
    OPERATIONS[f"model_ready{_suffix}"] = {
        "responses": {"200": _json(_ref("ModelReady")), "503": _json(_ref("ModelReady"))}
    }
    OPERATIONS[f"model_infer{_suffix}"] = {
        "request": _ref("InferenceRequest"),
        "responses": {
            "200": {
                "description": "The inference response: JSON, or with binary outputs a JSON "
                "header followed by the tensors' bytes (Inference-Header-Content-Length)",
                "content": {
                    JSON: {"schema": _ref("InferenceResponse")},
                    "application/octet-stream": {},
                },
            }
        },
    }
    OPERATIONS[f"model_statistics{_suffix}"] = {"responses": {"200": _json(_ref("Statistics"))}}
    OPERATIONS[f"model_config{_suffix}"] = {"responses": {"200": _json(_ref("ModelConfig"))}}

_ERRORS: Final = {
    status: _json(_ref("Error"), description)
    for status, description in (
        ("400", "A client error in the request"),
        ("401", "No valid API key (--api-key); carries WWW-Authenticate: Bearer"),
        ("403", "A restricted API without its key, or a refused model upload"),
        ("404", "Unknown model, version or path"),
        ("405", "Wrong method"),
        ("408", "The request's headers or body did not arrive in time"),
        ("413", "Body or tensor over its limit"),
        ("431", "Request headers too large"),
        ("501", "Not supported"),
        ("503", "Not ready, overloaded (Retry-After) or timed out"),
    )
}


def _openapi_path(pattern: str) -> tuple[str, list[dict[str, Any]]]:
    """``/v2/models/{model}/versions/{version:int}`` as OpenAPI's path and its parameters."""
    segments: list[str] = []
    parameters: list[dict[str, Any]] = []
    for segment in pattern.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            name, _, kind = segment[1:-1].partition(":")
            schema: dict[str, Any] = {"type": "string"}
            if kind == "int":
                schema["pattern"] = "^[0-9]+$"
            parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
            segments.append("{" + name + "}")
        else:
            segments.append(segment)
    return "/".join(segments) or "/", parameters


def _operation(route: Route, method: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    known = OPERATIONS.get(route.name, {})
    operation: dict[str, Any] = {
        "operationId": route.name if len(route.methods) == 1 else f"{route.name}_{method}",
        "tags": [route.category.value if route.category else "other"],
        "responses": {**known.get("responses", {"200": _json(_ref("AnyJSON"))}), **_ERRORS},
    }
    if parameters:
        operation["parameters"] = parameters
    if method in ("POST", "PUT", "PATCH"):
        operation["requestBody"] = {
            "required": False,
            "content": {JSON: {"schema": known.get("request", _ref("AnyJSON"))}},
        }
    return operation


def openapi_document(router: Router, title: str = "oipserve") -> dict[str, Any]:
    """The document of every categorised route of ``router``."""
    paths: dict[str, dict[str, Any]] = {}
    for pattern, route, _mount in router.routes():
        if route.category is None:
            continue
        path, parameters = _openapi_path(pattern)
        item = paths.setdefault(path, {})
        for method in route.methods:
            item[method.lower()] = _operation(route, method, parameters)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{title} REST API",
            "version": __version__,
            "description": "The Open Inference Protocol (KServe V2) with Triton's extensions, as "
            "oipserve serves it. Tags are Triton's restricted-API categories.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


__all__ = ["OPERATIONS", "SCHEMAS", "openapi_document"]
