"""Host-wide gauges Triton reports: CPU utilization and memory, read from ``/proc`` as Triton does
(triton-inference-server/core ``src/metrics.cc``: ``ParseCpuInfo``, ``ParseMemInfo``,
``CpuUtilization``).

Triton polls every ``--metrics-interval-ms``; we read at scrape time instead. Utilization is busy
time over busy + idle time between two readings (the previous scrape's and this one; since boot
for the first scrape, as Triton's first poll compares with zeros); used memory is ``MemTotal -
MemAvailable``. Where ``/proc`` is missing (not Linux) there is no sample and no host family.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_BUSY = ("user", "nice", "system", "irq", "softirq", "steal")
_IDLE = ("idle", "iowait")
_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True, slots=True)
class HostSample:
    cpu_utilization: float
    memory_total_bytes: int
    memory_used_bytes: int


def read_cpu(stat: str) -> dict[str, int] | None:
    """The aggregate ``cpu`` line of ``/proc/stat`` as named jiffy counters."""
    first = stat.split("\n", 1)[0].split()
    if not first or first[0] != "cpu":
        return None
    values = [int(v) for v in first[1 : 1 + len(_FIELDS)]]
    values += [0] * (len(_FIELDS) - len(values))
    return dict(zip(_FIELDS, values, strict=True))


def cpu_utilization(new: dict[str, int], old: dict[str, int]) -> float:
    busy = sum(max(0, new[k] - old[k]) for k in _BUSY)
    idle = sum(max(0, new[k] - old[k]) for k in _IDLE)
    return busy / (busy + idle) if busy + idle else 0.0


def read_memory(meminfo: str) -> tuple[int, int] | None:
    """(total, used = total - available) in bytes from ``/proc/meminfo``."""
    values: dict[str, int] = {}
    for line in meminfo.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0]) * 1024
    total, available = values.get("MemTotal"), values.get("MemAvailable")
    if total is None or available is None or available > total:
        return None
    return total, total - available


class HostSampler:
    def __init__(self, proc: Path = Path("/proc")) -> None:
        self._proc = proc
        self._last_cpu: dict[str, int] = dict.fromkeys(_FIELDS, 0)

    def sample(self) -> HostSample | None:
        try:
            stat = (self._proc / "stat").read_text()
            meminfo = (self._proc / "meminfo").read_text()
        except OSError:
            return None
        cpu = read_cpu(stat)
        memory = read_memory(meminfo)
        if cpu is None or memory is None:
            return None
        utilization = cpu_utilization(cpu, self._last_cpu)
        self._last_cpu = cpu
        return HostSample(utilization, memory[0], memory[1])


__all__ = ["HostSample", "HostSampler", "cpu_utilization", "read_cpu", "read_memory"]
