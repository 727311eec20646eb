"""A rolling-reboot step recorded in status whose task never reached vCenter, with the operator
killed right there; forced, not timed (docs/design.md, "A step recorded but never sent").

The simulator refuses the first `EnterMaintenanceMode_Task` and the first `RebootHost_Task`
call (`POST /faults`: a SOAP fault, no task created), so each step's record lands in status and
its task does not exist. The operator is SIGKILLed as soon as each refused call is counted. The
restarted operator must find no task of the recorded step in the host's recent tasks, send it
again exactly once, and finish the rolling reboot: every host rebooted exactly once, none left
in maintenance mode, the policy Ready.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim
from tests.conftest import SimulatorFactory
from tests.faults.conftest import CLUSTER, every_device, host_name, inventory
from tests.faults.harness import (
    OperatorProcess,
    apply,
    counters,
    get_json,
    hpp,
    summary,
)
from tests.faults.invariants import after_faults, logins, wait_ready
from tests.integration.vsphere.helpers import connect
from tests.waiting import eventually

from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = [pytest.mark.faults, pytest.mark.sandbox]

HOSTS = 2
POLICY = "unsent-rolling"
REFUSED = ("EnterMaintenanceMode_Task", "RebootHost_Task")


def _pending_faults(sim: Simulator) -> list[str]:
    answer: Any = sim.admin("GET", "/faults")
    return [str(f["method"]) for f in answer["pending"]]


def _refused(sim: Simulator, method: str) -> bool:
    """The injected fault for `method` fired: its one call was counted and refused."""
    return counters(sim).get(method, 0) >= 1 and method not in _pending_faults(sim)


def _records(box: Sandbox) -> dict[str, str]:
    hosts = get_json(box, "hpp", POLICY).get("status", {}).get("hosts", [])
    return {h["name"]: h["rollingReboot"]["phase"] for h in hosts if h.get("rollingReboot")}


def _host_tasks(sim: Simulator) -> dict[str, list[tuple[str, str]]]:
    """Host name -> (descriptionId, state) of its maintenance and reboot tasks, from vCenter."""
    found: dict[str, list[tuple[str, str]]] = {}
    with connect(sim) as si:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
        for host in view.view:
            infos = [t.info for t in host.recentTask]
            found[host.name] = sorted(
                (str(i.descriptionId), str(i.state))
                for i in infos
                if i.descriptionId in ("HostSystem.enterMaintenanceMode", "HostSystem.reboot")
            )
    return found


def test_a_step_recorded_but_never_sent_is_sent_once_after_a_restart(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    sim = vcsim_factory(inventory=inventory(HOSTS, 1, rebind=False), reboot_delay="1s")
    operator = fault_operator(sim)
    for method in REFUSED:
        sim.admin("POST", "/faults", {"method": method, "fault": "HostCommunication", "count": 1})
    operator.start()
    rolling = {"policy": "Rolling", "maxUnavailable": 1}
    apply(sandbox, hpp(POLICY, {"clusters": [CLUSTER]}, reboot=rolling))

    seen: dict[str, dict[str, str]] = {}
    for method, phase in zip(REFUSED, ("Draining", "Rebooting"), strict=True):
        eventually(
            lambda m=method: _refused(sim, m),  # type: ignore[misc]
            timeout=180,
            what=f"the operator's {method} refused",
            every=0.05,
        )
        operator.kill()  # the record is in status, no task exists
        seen[phase] = _records(sandbox)
        operator.start()
    wait_ready(sandbox, [POLICY], timeout=300, what=f"hpp/{POLICY} Ready after the refused steps")
    calls = counters(sim)
    sessions = logins(sim)
    violations = after_faults(sim, every_device(range(HOSTS), 1), operator, sessions)
    tasks = _host_tasks(sim)

    # The gap was really there: each refused step's record had landed in status.
    missing = [phase for phase, records in seen.items() if phase not in records.values()]
    if missing:
        violations.append(f"no {missing} record in status when its call was refused: {seen}")
    once = [("HostSystem.enterMaintenanceMode", "success"), ("HostSystem.reboot", "success")]
    for i in range(HOSTS):
        if tasks.get(host_name(i)) != once:
            violations.append(f"{host_name(i)}: tasks {tasks.get(host_name(i))}, want {once}")
    # Each refused call is made again exactly once, and nothing else is repeated.
    for method in REFUSED:
        if calls.get(method, 0) != HOSTS + 1:
            violations.append(f"{calls.get(method, 0)} {method} calls, want {HOSTS + 1}")
    resent = operator.logs().count("Sent a recorded reboot step again")
    if resent != len(REFUSED):
        violations.append(f"{resent} steps sent again, want {len(REFUSED)}")
    summary(
        "unsent-step",
        faults=len(REFUSED),
        records=seen,
        enter_calls=calls.get("EnterMaintenanceMode_Task", 0),
        reboot_calls=calls.get("RebootHost_Task", 0),
        resent=resent,
        logins=sessions,
        processes=operator.runs,
        violations=len(violations),
    )
    assert violations == []
