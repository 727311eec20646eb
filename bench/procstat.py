"""CPU seconds and memory of a process, from /proc (Linux): what `top` would show, no sampling."""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    cpu_seconds: float  # user + system since the process started
    rss_mib: float  # VmRSS now
    peak_rss_mib: float  # VmHWM: the high-water mark since start

    def cpu_since(self, earlier: ProcStat) -> float:
        return self.cpu_seconds - earlier.cpu_seconds


def read(pid: int) -> ProcStat:
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may hold spaces: split after its closing parenthesis.
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    status = _status(pid)
    return ProcStat(
        cpu_seconds=(utime + stime) / _TICKS,
        rss_mib=status.get("VmRSS", 0) / 1024,
        peak_rss_mib=status.get("VmHWM", 0) / 1024,
    )


def _status(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                values[key] = int(parts[0])  # kB
    return values
