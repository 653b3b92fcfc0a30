"""``--model-control-mode poll``: follow the repository folder, as Triton's poll mode does.

Every ``--repository-poll-secs`` the poller takes a snapshot of the repository — for each model
folder, the relative path, size and modification time of every file under it — and compares it
with the previous one:

- a new model folder is loaded;
- a model folder whose snapshot changed (a file added, removed, rewritten; a version folder added
  or removed) is reloaded, which brings the new versions up beside the old ones and switches over
  (a failed reload leaves the old versions serving);
- a model folder that is gone is unloaded.

A load that fails is not retried until the folder changes again. Hidden entries and
``__pycache__`` folders are ignored (importing a ``model.py`` writes bytecode next to it).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from oipserve.repository import layout

logger = logging.getLogger("oipserve.poll")

Fingerprint = tuple[tuple[str, int, int], ...]
"""A model folder's files as ``(relative path, size, mtime_ns)``, sorted; folders have size -1."""
Snapshot = dict[str, Fingerprint]
"""Model name → fingerprint of its folder."""


def fingerprint(folder: Path) -> Fingerprint:
    entries: list[tuple[str, int, int]] = []
    for directory, folders, files in os.walk(folder):
        folders[:] = [f for f in folders if not f.startswith(".") and f != "__pycache__"]
        base = Path(directory)
        for name in folders:
            entries.append((str((base / name).relative_to(folder)), -1, 0))
        for name in files:
            if name.startswith("."):
                continue
            path = base / name
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed while we looked: the next poll sees the rest
                continue
            entries.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


def snapshot(root: Path, model_name: str = "") -> Snapshot:
    """The fingerprint of every model folder in ``root`` (empty when ``root`` is gone); the
    repository's layout says which folders are models (:mod:`oipserve.repository.discovery`),
    ``model_name`` naming the model when ``root`` is itself one."""
    if not root.is_dir():
        return {}
    result: Snapshot = {}
    for name, folder in layout.model_folders(root, model_name).items():
        try:
            result[name] = fingerprint(folder)
        except FileNotFoundError:
            continue
    return result


@dataclass(frozen=True, slots=True)
class Changes:
    added: list[str]
    changed: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def compare(before: Snapshot, after: Snapshot) -> Changes:
    return Changes(
        added=sorted(set(after) - set(before)),
        changed=sorted(n for n in after if n in before and after[n] != before[n]),
        removed=sorted(set(before) - set(after)),
    )


class RepositoryPoller:
    """Calls ``load`` / ``unload`` as the repository folder changes; see the module doc."""

    def __init__(
        self,
        root: Path,
        interval_s: float,
        load: Callable[[str], Awaitable[None]],
        unload: Callable[[str], Awaitable[None]],
        baseline: Snapshot | None = None,
        model_name: str = "",
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the repository poll interval must be > 0 seconds")
        self.root = root
        self.model_name = model_name
        self.interval_s = interval_s
        self._load = load
        self._unload = unload
        self._last: Snapshot = baseline if baseline is not None else snapshot(root, model_name)

    async def poll_once(self) -> Changes:
        """Compare the folder with the last snapshot and act on the differences."""
        current = await asyncio.to_thread(snapshot, self.root, self.model_name)
        changes = compare(self._last, current)
        self._last = current
        for name in changes.removed:
            logger.info("model folder '%s' was removed: unloading it", name)
            await self._act(self._unload, name, "unload")
        for name in changes.added:
            logger.info("model folder '%s' appeared: loading it", name)
            await self._act(self._load, name, "load")
        for name in changes.changed:
            logger.info("model folder '%s' changed: reloading it", name)
            await self._act(self._load, name, "reload")
        return changes

    async def _act(self, action: Callable[[str], Awaitable[None]], name: str, verb: str) -> None:
        try:
            await action(name)
        except Exception as exc:
            logger.error("poll: could not %s model '%s': %s", verb, name, exc)

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.poll_once()
            except Exception:
                logger.exception("polling the model repository %s failed", self.root)
