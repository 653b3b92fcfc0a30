"""How deep request JSON may nest (Triton's limit of 100 levels, PROTOCOL.md §6), checked without
recursion, so that any depth is refused as a 400 and never reaches the interpreter's limit."""

from __future__ import annotations

from typing import Any

from oipserve.errors import InvalidArgument

MAX_JSON_DEPTH = 100
"""Deepest JSON nesting accepted in a request body."""


def too_deep(what: str) -> InvalidArgument:
    return InvalidArgument(
        f"the {what} is nested too deeply: JSON may nest at most {MAX_JSON_DEPTH} levels"
    )


def check_depth(value: Any, what: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse ``value`` (decoded JSON) if it nests deeper than ``limit``."""
    if not isinstance(value, dict | list):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            raise too_deep(what)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
