"""POSIX shared-memory segments for tensors crossing a process boundary.

One owner per segment: the process that :meth:`Segment.create` s it registers it with its own
``multiprocessing`` resource tracker (so a segment is removed even when its owner is killed) and
is the only one that unlinks it. Another process :meth:`Segment.attach` es without registering:
Python 3.11's ``SharedMemory(name)`` registers an attached segment with the *attaching* process's
tracker too, which then unlinks (or warns about) a segment it does not own when that process ends
(cpython issue 82300; ``track=False`` arrived in 3.13). So this module opens segments with
``_posixshmem`` and ``mmap`` directly, as ``multiprocessing.shared_memory`` does inside.

Every name starts with :data:`SEGMENT_PREFIX`, a prefix reserved for the server: clients will never
be allowed to register a shared-memory region under it.
"""

from __future__ import annotations

import _posixshmem  # type: ignore[import-not-found]  # the module SharedMemory itself uses
import contextlib
import mmap
import os
import secrets
from multiprocessing import resource_tracker
from typing import Final

import numpy as np

SEGMENT_PREFIX: Final = "oipserve_"
"""The prefix of every segment the server creates (reserved: never a client's region name)."""

_MIN_SIZE: Final = 4096


class Segment:
    """A mapped shared-memory segment (the owner's, or attached to)."""

    __slots__ = ("_map", "name", "owner", "size")

    def __init__(self, name: str, mapped: mmap.mmap, size: int, owner: bool) -> None:
        self.name = name
        self._map = mapped
        self.size = size
        self.owner = owner

    @classmethod
    def create(cls, size: int) -> Segment:
        """A new segment of at least ``size`` bytes, owned (and tracked) by this process."""
        size = max(_MIN_SIZE, size)
        name = f"{SEGMENT_PREFIX}{os.getpid()}_{secrets.token_hex(6)}"
        fd = _posixshmem.shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
        try:
            os.ftruncate(fd, size)
            mapped = mmap.mmap(fd, size)
        except BaseException:
            _posixshmem.shm_unlink("/" + name)
            raise
        finally:
            os.close(fd)
        resource_tracker.register("/" + name, "shared_memory")
        return cls(name, mapped, size, owner=True)

    @classmethod
    def attach(cls, name: str) -> Segment:
        """Map another process's segment, without registering it with this process's tracker."""
        if not name.startswith(SEGMENT_PREFIX):
            raise ValueError(f"'{name}' is not an oipserve segment")
        fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
        try:
            size = os.fstat(fd).st_size
            mapped = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        return cls(name, mapped, size, owner=False)

    def array(self, dtype: np.dtype[np.generic], shape: tuple[int, ...], offset: int) -> np.ndarray:
        """A numpy view of ``shape`` elements of ``dtype`` at ``offset`` (no copy).

        The view holds the mapping: it is unmapped when this segment object and its last view
        are gone. (Never ``mmap.close()`` it by hand: numpy does not pin the buffer it was given,
        so a view would outlive its memory.)"""
        return np.ndarray(shape, dtype=dtype, buffer=self._map, offset=offset)

    def unlink(self) -> None:
        """Remove the name (the owner only; mappings stay valid until closed)."""
        if self.owner:
            self.owner = False
            with contextlib.suppress(FileNotFoundError):
                _posixshmem.shm_unlink("/" + self.name)
            resource_tracker.unregister("/" + self.name, "shared_memory")


def aligned(offset: int) -> int:
    """``offset`` rounded up to 64 bytes (a cache line; every dtype's alignment)."""
    return (offset + 63) & ~63


__all__ = ["SEGMENT_PREFIX", "Segment", "aligned"]
