"""SIGKILL while a vSphere task runs, forced rather than timed (issue 15): the simulator holds
the operator's task open (`POST /tasks/hold`: the task is running and does nothing until
released), the test kills the operator while it waits on it, and only then lets the task run.

- A held `ReconfigVM_Task` (attaching a GPU): the operator restarts while the task still runs,
  attaches the device itself, and the old task, released afterwards, must not add it a second
  time (its changeVersion is stale by then). Deleting the assignment puts the VM back.
- A held `EnterMaintenanceMode_Task` of a rolling reboot: the task completes while no operator
  runs; the restarted operator must know that maintenance mode as its own (the record written
  before the task started), reboot the host once and take it out again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml
from pyVmomi import vim
from tests.conftest import SimulatorFactory
from tests.faults.conftest import CLUSTER, address, every_device, host_name, inventory
from tests.faults.harness import (
    OperatorProcess,
    apply,
    counters,
    get_json,
    held_tasks,
    hold_tasks,
    hpp,
    kubectl,
    ready,
    release_tasks,
    summary,
)
from tests.faults.invariants import after_faults, logins, wait_ready, writes_when_idle
from tests.integration.vsphere.helpers import connect, find
from tests.waiting import eventually

from dpio_sandbox import manifests
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = [pytest.mark.faults, pytest.mark.sandbox]

NS, POLICY, HOST, VM = "fault-held", "fault-held-gpus", "esx-held.lab.local", "held-vm-0"


def _vm_inventory() -> str:
    a100 = {
        "vendorId": "10de",
        "deviceId": "20b5",
        "classId": "0302",
        "enabled": True,
        "active": True,
        "name": "GA100 [A100 PCIe 80GB]",
        "vendorName": "NVIDIA Corporation",
        "mmioSizeGB": 128,
    }
    host = {
        "name": HOST,
        "version": "8.0.2",
        "deviceRebindWithoutReboot": True,
        "pciDevices": [{"address": address(0), **a100}],
    }
    vm = {"name": VM, "host": HOST, "firmware": "efi", "memoryMB": 4096}
    return yaml.safe_dump({"datacenters": [{"name": "DC-Held", "hosts": [host], "vms": [vm]}]})


class OwnLogins:
    """The test's own pyVmomi sessions, one Login each: not the operator's."""

    count = 0


def _vm(sim: Simulator) -> tuple[list[str], bool, str]:
    """The VM's passthrough PCI ids, memoryReservationLockedToMax and changeVersion."""
    OwnLogins.count += 1
    with connect(sim) as si:
        config = find(si, vim.VirtualMachine, VM).config
        ids = [
            d.backing.id
            for d in config.hardware.device
            if isinstance(d, vim.vm.device.VirtualPCIPassthrough)
        ]
        return ids, bool(config.memoryReservationLockedToMax), str(config.changeVersion)


def _task_state(sim: Simulator, moref: str) -> str:
    """`running`, `success`, or `error:<the fault's vSphere name>`."""
    OwnLogins.count += 1
    with connect(sim) as si:
        info = vim.Task(moref, si._stub).info
        if info.state == "error":
            return f"error:{type(info.error).__name__.rsplit('.', 1)[-1]}"
        return str(info.state)


def _first_held(sim: Simulator, method: str) -> dict[str, Any] | None:
    found = [t for t in held_tasks(sim) if t["method"] == method]
    return found[0] if found else None


def _assignment_ready(box: Sandbox) -> bool:
    items = get_json(box, "vmda", "-n", NS)["items"]
    return len(items) == 1 and ready(items[0])


def test_sigkill_while_a_reconfigure_task_is_held(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    sim = vcsim_factory(inventory=_vm_inventory())
    OwnLogins.count = 0
    operator = fault_operator(sim)
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    consumer = manifests.consumer([NS], folders=["/DC-Held/vm"])
    apply(sandbox, hpp(POLICY, [HOST], consumers=[consumer]))
    before = _vm(sim)
    hold_tasks(sim, "ReconfigVM_Task")
    operator.start()
    devices = [manifests.pci_device(address(0))]
    apply(sandbox, manifests.assignment("held", NS, POLICY, VM, devices))
    task = eventually(
        lambda: _first_held(sim, "ReconfigVM_Task"),
        timeout=120,
        what="the operator's ReconfigVM_Task started (and held)",
    )
    operator.kill()  # while it waits on a task that is running and has done nothing yet
    operator.start()  # the task still runs
    eventually(lambda: _assignment_ready(sandbox), timeout=180, what="vmda/held Ready")
    state_at_ready = _task_state(sim, task["task"])
    attached = _vm(sim)
    release_tasks(sim)
    outcome = eventually(
        lambda: (s := _task_state(sim, task["task"])) != "running" and s,
        timeout=60,
        what="the released task ended",
    )
    after_release = _vm(sim)
    reconfigures = counters(sim).get("ReconfigVM_Task", 0)
    sessions = logins(sim) - OwnLogins.count  # the operator's alone

    violations = []
    if after_release[0] != [address(0)]:
        want = [address(0)]
        violations.append(f"{VM} has {after_release[0]} after the old task ran, want {want}")
    if not after_release[1]:
        violations.append(f"{VM} has a passthrough device without the full reservation")
    if after_release[2] != attached[2]:
        violations.append("the released old task changed the VM after the operator converged")
    if not _assignment_ready(sandbox):
        violations.append("vmda/held no longer Ready after the old task ended")
    if not 1 <= sessions <= operator.runs:
        violations.append(f"{sessions} logins for {operator.runs} operator processes")
    idle = writes_when_idle(sim, 10)
    violations += [f"{n} {m} call(s) once converged" for m, n in idle.items()]

    kubectl(sandbox, "delete", "vmda", "held", "-n", NS, "--timeout=120s")
    restored = _vm(sim)
    if restored[:2] != before[:2]:
        violations.append(f"{VM} not restored after delete: {restored[:2]} != {before[:2]}")
    summary(
        "sigkill-held-reconfigure",
        faults=1,
        task_at_ready=state_at_ready,
        old_task=outcome,
        reconfigures=reconfigures,
        logins=sessions,
        processes=operator.runs,
        violations=len(violations),
    )
    assert state_at_ready == "running", "the test meant to converge while the old task ran"
    assert outcome == "error:ConcurrentAccess", "the old task must fail on its stale changeVersion"
    assert violations == []


def test_sigkill_while_entering_maintenance_mode_is_held(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    hosts = 2
    sim = vcsim_factory(inventory=inventory(hosts, 1, rebind=False), reboot_delay="1s")
    OwnLogins.count = 0
    operator = fault_operator(sim)
    hold_tasks(sim, "EnterMaintenanceMode_Task")
    operator.start()
    rolling = {"policy": "Rolling", "maxUnavailable": 1}
    apply(sandbox, hpp("held-rolling", {"clusters": [CLUSTER]}, reboot=rolling))
    task = eventually(
        lambda: _first_held(sim, "EnterMaintenanceMode_Task"),
        timeout=120,
        what="the operator's EnterMaintenanceMode_Task started (and held)",
    )
    operator.kill()
    release_tasks(sim)  # vCenter finishes the task while no operator runs
    outcome = eventually(
        lambda: (s := _task_state(sim, task["task"])) != "running" and s,
        timeout=60,
        what="the released task ended",
    )
    operator.start()
    wait_ready(sandbox, ["held-rolling"], timeout=180)
    calls = counters(sim)
    sessions = logins(sim) - OwnLogins.count  # the operator's alone
    violations = after_faults(sim, every_device(range(hosts), 1), operator, sessions)
    reboots = calls.get("RebootHost_Task", 0)
    if reboots != hosts:
        violations.append(f"{reboots} reboots for {hosts} hosts (each needs exactly one)")
    summary(
        "sigkill-held-maintenance",
        faults=1,
        held_host=task["entityName"],
        old_task=outcome,
        enter_calls=calls.get("EnterMaintenanceMode_Task", 0),
        reboots=reboots,
        logins=sessions,
        processes=operator.runs,
        violations=len(violations),
    )
    assert outcome == "success"
    assert task["entityName"] in {host_name(i) for i in range(hosts)}
    assert violations == []
