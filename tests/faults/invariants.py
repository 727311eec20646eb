"""What must hold after any fault, read from both sides (no tests here).

Kubernetes side: every policy Ready=True for its current generation. vSphere side (a pyVmomi
read of its own): no host left in maintenance mode, every selected device enabled and active.
Counters: exactly one Login per operator process (plus one per forced session expiry), and no
write at all once converged.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from tests.faults.harness import (
    OperatorProcess,
    counters,
    get_json,
    ready,
    reset_counters,
)
from tests.integration.vsphere.helpers import connect, host_properties
from tests.waiting import eventually

from dpio_sandbox import vcsim
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

WRITES = vcsim.WRITE_METHODS


def not_ready(box: Sandbox, policies: Iterable[str]) -> list[str]:
    """Policies not (yet) Ready=True for their generation, with their Ready reason."""
    found = []
    for name in policies:
        obj = get_json(box, "hpp", name)
        if not ready(obj):
            reasons = [c.get("reason") for c in obj.get("status", {}).get("conditions", [])]
            found.append(f"hpp/{name} not Ready ({reasons})")
    return found


def wait_ready(
    box: Sandbox, policies: Sequence[str], *, timeout: float, what: str = "", every: float = 0.5
) -> None:
    """Until every one of `policies` is Ready=True for its generation; at the deadline, fail
    naming `what` (by default the policies)."""
    what = what or " and ".join(f"hpp/{name}" for name in policies) + " Ready"
    eventually(lambda: not not_ready(box, policies), timeout=timeout, what=what, every=every)


def vsphere_violations(sim: Simulator, expected: dict[str, set[str]]) -> list[str]:
    """`expected`: host name -> PCI ids that must be enabled and active there."""
    with connect(sim) as si:
        hosts = host_properties(si, ["runtime.inMaintenanceMode", "config.pciPassthruInfo"])
    found = [
        f"{name} left in maintenance mode"
        for name, p in hosts.items()
        if p.get("runtime.inMaintenanceMode")
    ]
    for name, ids in expected.items():
        infos = {i.id: i for i in hosts.get(name, {}).get("config.pciPassthruInfo", [])}
        for pci in sorted(ids):
            info: Any = infos.get(pci)
            if info is None or not (info.passthruEnabled and info.passthruActive):
                found.append(f"{name} {pci} not enabled+active")
    return found


def writes_when_idle(sim: Simulator, seconds: float) -> dict[str, int]:
    """vSphere writes made in `seconds` of steady state (must be none)."""
    reset_counters(sim)
    time.sleep(seconds)
    return {m: n for m, n in counters(sim).items() if m in WRITES and n}


def logins(sim: Simulator) -> int:
    return counters(sim).get("Login", 0)


def converged_violations(sim: Simulator, expected: dict[str, set[str]]) -> list[str]:
    """`vsphere_violations`, then any write in 10 s of steady state (there must be none)."""
    found = vsphere_violations(sim, expected)
    idle = writes_when_idle(sim, 10)
    return found + [f"{n} {m} call(s) once converged" for m, n in idle.items()]


def after_faults(
    sim: Simulator, expected: dict[str, set[str]], operator: OperatorProcess, sessions: int
) -> list[str]:
    """`converged_violations`, and one session per operator process: `sessions`, the Logins
    read before the test's own pyVmomi reads, from 1 (a process killed before its first call
    never logged in) to one per run."""
    found = converged_violations(sim, expected)
    if not 1 <= sessions <= operator.runs:
        found.append(f"{sessions} logins for {operator.runs} operator processes")
    return found
