"""How many cores this process may use: ``--workers auto``.

Not ``os.cpu_count()`` (the machine's cores): the CPU affinity mask (``taskset``, a cpuset) and
the cgroup v2 CPU quota (``cpu.max``: a Kubernetes CPU limit of 2 is ``200000 100000``) both cut
it down, and a worker per machine core in a pod limited to two cores only adds contention.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def affinity_cores() -> int:
    """Cores in this process's affinity mask (the machine's count where there is no mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def quota_cores(
    cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")
) -> float | None:
    """The cgroup v2 CPU quota in cores (``cpu.max`` quota / period) of this process's cgroup
    and its ancestors, the tightest; ``None`` without a quota (or without cgroup v2)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    relative = next((line[3:] for line in lines if line.startswith("0::")), None)
    if relative is None:
        return None
    folder = cgroup_root / relative.lstrip("/")
    tightest: float | None = None
    while True:
        quota = _read_quota(folder / "cpu.max")
        if quota is not None and (tightest is None or quota < tightest):
            tightest = quota
        if folder == cgroup_root or cgroup_root not in folder.parents:
            break
        folder = folder.parent
    return tightest


def _read_quota(path: Path) -> float | None:
    try:
        fields = path.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if period > 0 else None


def available_cores() -> int:
    """The cores this process may use: the affinity mask, cut to the cgroup quota (rounded up:
    a 1.5-core quota still gives two workers work), at least 1."""
    cores = affinity_cores()
    quota = quota_cores()
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


__all__ = ["affinity_cores", "available_cores", "quota_cores"]
