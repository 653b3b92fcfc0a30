"""The layering of oipserve, written as rules over every module's imports (read with ``ast``: module
level, inside functions and under ``TYPE_CHECKING`` alike). ``docs/architecture.md`` draws the same
table; change both together.

A request flows transports → protocol types → dataplane → registry and scheduling → execution →
runtimes. Imports follow the calls downward: a module imports its own layer and the layers below,
never one above. Beside the stack, the shared vocabulary (errors, settings, the protocol types and
codecs, the model contract, the config schema, the domain values) may be imported from every layer
and imports only itself. Importing ``oipserve`` loads no framework and no grpc
(``test_public_api.py`` checks that in a fresh interpreter).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

import oipserve
from tests.unit import test_import_cycles

import_graph = cache(test_import_cycles.import_graph)

SOURCE = Path(oipserve.__file__).resolve().parent

VOCABULARY = (
    "oipserve",  # the package itself: the public names
    "oipserve.errors",
    "oipserve.settings",
    "oipserve.model",
    "oipserve.signature",
    "oipserve.domain",
    "oipserve.protocol",
    "oipserve.repository.config",
    "oipserve.observability",
)
"""Importable from every layer; imports only the vocabulary."""

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "entry points",
        (
            "oipserve.__main__",
            "oipserve.cli",
            "oipserve.workers",
            "oipserve.server",
            "oipserve.ray",
        ),
    ),
    (
        "front ends",
        (
            "oipserve.transport",
            "oipserve.console",
            "oipserve.client",
            "oipserve.auth",
            "oipserve.tls",
            "oipserve.limits",
        ),
    ),
    ("dataplane", ("oipserve.dataplane", "oipserve.classification")),
    (
        "registry and scheduling",
        (
            "oipserve.registry",
            "oipserve.loading",
            "oipserve.scheduling",
            "oipserve.repository.poll",
        ),
    ),
    ("execution", ("oipserve.execution",)),
    ("runtimes and readers", ("oipserve.runtimes", "oipserve.compat", "oipserve.repository")),
)
"""The stack, top to bottom: each layer imports itself, the layers below and the vocabulary."""

FRAMEWORKS = frozenset(
    {"torch", "sklearn", "joblib", "xgboost", "lightgbm", "onnxruntime", "onnx", "transformers"}
)
GRPC = frozenset({"grpc", "grpc_health", "grpc_reflection"})
PROTOCOL_THIRD_PARTY = frozenset({"numpy", "msgspec", "orjson", "ml_dtypes", "google"})
"""What ``protocol/`` may import outside oipserve: stdlib, numpy, msgspec, orjson, ml_dtypes and
protobuf (the generated messages)."""
REGISTRY_INTERNALS = (
    "oipserve.registry",
    "oipserve.loading",
    "oipserve.execution",
    "oipserve.runtimes",
    "oipserve.scheduling.batcher",
    "oipserve.repository.layout",
    "oipserve.repository.readers",
    "oipserve.repository.discovery",
    "oipserve.repository.source",
    "oipserve.repository.paths",
    "oipserve.repository.poll",
)
"""What a transport must not import: the registry's machinery (it gets domain values and the
model configuration from the dataplane; ``repository/triton.py`` renders that configuration)."""


def _within(module: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _longest(module: str, prefixes: tuple[str, ...]) -> str | None:
    matches = [p for p in prefixes if _within(module, p)]
    return max(matches, key=len) if matches else None


def place(module: str) -> int | None:
    """The module's rank in :data:`LAYERS` (0 = top), or ``None`` for the vocabulary.

    The longest matching prefix decides (``oipserve.repository.poll`` is in the registry's layer,
    ``oipserve.repository.config`` in the vocabulary, the rest of ``oipserve.repository`` at the
    bottom)."""
    candidates: list[tuple[str, int | None]] = [
        (prefix, rank) for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
    ]
    candidates += [(prefix, None) for prefix in VOCABULARY]
    best = max(
        # "oipserve" names the package module alone, not everything below it
        ((p, r) for p, r in candidates if _within(module, p) and (p != "oipserve" or module == p)),
        key=lambda pr: len(pr[0]),
        default=None,
    )
    if best is None:
        raise LookupError(module)
    return best[1]


def _layer_name(rank: int | None) -> str:
    return "vocabulary" if rank is None else LAYERS[rank][0]


@dataclass(frozen=True)
class ThirdParty:
    module: str
    name: str
    lazy: bool
    """Inside a function or under ``if TYPE_CHECKING:``: not run when the module is imported."""


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@cache
def third_party_imports() -> tuple[ThirdParty, ...]:
    """Every import of a top-level package outside oipserve and the standard library."""
    found: list[ThirdParty] = []
    for module in import_graph():
        path = _path_of(module)
        if "_generated" in path.parts:
            continue

        def visit(node: ast.AST, lazy: bool, module: str = module) -> None:
            for child in ast.iter_child_nodes(node):
                child_lazy = lazy or isinstance(
                    child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
                )
                if isinstance(child, ast.If) and _is_type_checking(child):
                    for inner in child.body:
                        visit_one(inner, True, module)
                    for inner in child.orelse:
                        visit_one(inner, lazy, module)
                    continue
                visit_one(child, child_lazy, module)

        def visit_one(node: ast.AST, lazy: bool, module: str) -> None:
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("oipserve", "__future__"):
                    found.append(ThirdParty(module, top, lazy))
            visit(node, lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))

        visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return tuple(found)


def _path_of(module: str) -> Path:
    relative = Path(*module.split(".")[1:])
    package = SOURCE / relative / "__init__.py"
    return package if package.exists() else (SOURCE / relative).with_suffix(".py")


# -- the table itself --------------------------------------------------------------------------


def test_every_module_has_a_place() -> None:
    unplaced = []
    for module in import_graph():
        try:
            place(module)
        except LookupError:
            unplaced.append(module)
    assert unplaced == [], "add these modules to LAYERS or VOCABULARY (and the diagram)"


def test_the_rules_see_the_imports() -> None:
    """The rules below are not vacuous: known edges and imports are found."""
    graph = import_graph()
    assert "oipserve.registry" in graph["oipserve.dataplane"]
    assert "oipserve.execution.instance" in graph["oipserve.registry"]
    imports = third_party_imports()
    assert ThirdParty("oipserve.transport.grpc.errors", "grpc", False) in imports
    assert any(i.module.startswith("oipserve.runtimes.") and i.lazy for i in imports)


# -- the rules ---------------------------------------------------------------------------------


def test_imports_only_go_down_the_stack() -> None:
    upward = []
    for module, targets in import_graph().items():
        rank = place(module)
        for target in targets:
            target_rank = place(target)
            if target_rank is None:
                continue
            if rank is None or target_rank < rank:
                upward.append(
                    f"{module} ({_layer_name(rank)}) → {target} ({_layer_name(target_rank)})"
                )
    assert upward == []


@pytest.mark.parametrize(
    ("who", "forbidden"),
    [
        pytest.param("oipserve.runtimes", ("oipserve.transport",), id="runtime-no-transport"),
        pytest.param("oipserve.transport", REGISTRY_INTERNALS, id="transport-no-registry"),
        pytest.param(
            "oipserve.scheduling",
            ("oipserve.runtimes", "oipserve.repository"),  # the config schema included
            id="scheduler-no-runtime-no-config",
        ),
        pytest.param(
            "oipserve.protocol",
            tuple(p for _, prefixes in LAYERS for p in prefixes),
            id="protocol-nothing-above",
        ),
    ],
)
def test_named_rules(who: str, forbidden: tuple[str, ...]) -> None:
    graph = import_graph()
    assert any(_within(m, who) for m in graph), f"no module under {who}"
    broken = sorted(
        f"{module} → {target}"
        for module, targets in graph.items()
        if _within(module, who)
        for target in targets
        if _longest(target, forbidden) is not None
        and not (who == "oipserve.protocol" and place(target) is None)
    )
    assert broken == []


def test_frameworks_only_in_runtimes_and_only_lazily() -> None:
    broken = [
        f"{i.module} imports {i.name}" + ("" if i.lazy else " at import time")
        for i in third_party_imports()
        if i.name in FRAMEWORKS and not (_within(i.module, "oipserve.runtimes") and i.lazy)
    ]
    assert broken == []


def test_grpc_only_in_the_grpc_front_ends() -> None:
    allowed = ("oipserve.transport.grpc", "oipserve.client", "oipserve.cli")
    broken = [
        f"{i.module} imports {i.name}"
        for i in third_party_imports()
        if i.name in GRPC and not _within(i.module, allowed)
    ]
    assert broken == []


def test_protocol_needs_nothing_but_its_codecs() -> None:
    broken = [
        f"{i.module} imports {i.name}"
        for i in third_party_imports()
        if _within(i.module, "oipserve.protocol") and i.name not in PROTOCOL_THIRD_PARTY
    ]
    assert broken == []
