"""What must hold after any fault, read from both sides (no tests here).

Kubernetes side: every policy Ready=True for its current generation. vSphere side (a pyVmomi
read of its own): no host left in maintenance mode, every selected device enabled and active.
Counters: exactly one Login per operator process (plus one per forced session expiry), and no
write at all once converged.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from tests.faults.harness import counters, get_json, ready, reset_counters
from tests.integration.vsphere.helpers import connect, host_properties

from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

WRITES = (
    "UpdatePassthruConfig",
    "RebootHost_Task",
    "EnterMaintenanceMode_Task",
    "ExitMaintenanceMode_Task",
    "ReconfigVM_Task",
    "PowerOnVM_Task",
    "PowerOffVM_Task",
    "ReconfigureComputeResource_Task",
)


def not_ready(box: Sandbox, policies: Iterable[str]) -> list[str]:
    """Policies not (yet) Ready=True for their generation, with their Ready reason."""
    found = []
    for name in policies:
        obj = get_json(box, "hpp", name)
        if not ready(obj):
            reasons = [c.get("reason") for c in obj.get("status", {}).get("conditions", [])]
            found.append(f"hpp/{name} not Ready ({reasons})")
    return found


def vsphere_violations(sim: Simulator, expected: dict[str, set[str]]) -> list[str]:
    """`expected`: host name -> PCI ids that must be enabled and active there."""
    with connect(sim) as si:
        hosts = host_properties(si, ["runtime.inMaintenanceMode", "config.pciPassthruInfo"])
    found = [f"{name} left in maintenance mode"
             for name, p in hosts.items() if p.get("runtime.inMaintenanceMode")]  # fmt: skip
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
