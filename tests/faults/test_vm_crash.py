"""VMDeviceAssignments under SIGKILL (issue #7): the operator dies at random points while it
attaches devices to many VMs (including between a ReconfigVM_Task's start and its completion)
and while it removes them again; someone else's edit makes one reconfigure fail with
ConcurrentAccess (changeVersion). Afterwards: every VM has its device exactly once, with the
full memory reservation; `status.previous` was never lost, so deleting the assignments puts
every VM back as it was.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from pyVmomi import vim, vmodl
from tests.conftest import SimulatorFactory
from tests.faults.conftest import address
from tests.faults.harness import (
    OperatorProcess,
    apply,
    counters,
    get_json,
    hpp,
    kubectl,
    ready,
    reset_counters,
    summary,
)
from tests.faults.invariants import writes_when_idle
from tests.integration.vsphere.helpers import connect
from tests.waiting import eventually

from dpio_sandbox import manifests
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = [pytest.mark.faults, pytest.mark.sandbox]

SEED = int(os.environ.get("DPIO_FAULT_SEED", str(time.time_ns() % 100_000)))
VMS = 8
NS, POLICY, HOST = "fault-vm", "fault-vm-gpus", "esx-vm-faults.lab.local"
A100 = {
    "vendorId": "10de",
    "deviceId": "20b5",
    "classId": "0302",
    "enabled": True,
    "active": True,
    "name": "GA100 [A100 PCIe 80GB]",
    "vendorName": "NVIDIA Corporation",
    "mmioSizeGB": 128,
}


def _inventory() -> str:
    host = {
        "name": HOST,
        "version": "8.0.2",
        "deviceRebindWithoutReboot": True,
        "pciDevices": [{"address": address(i), **A100} for i in range(VMS)],
    }
    vms = [
        {"name": f"fault-vm-{i}", "host": HOST, "firmware": "efi", "memoryMB": 4096}
        for i in range(VMS)
    ]
    return yaml.safe_dump({"datacenters": [{"name": "DC-VM", "hosts": [host], "vms": vms}]})


def _vmda(i: int) -> dict[str, Any]:
    devices = [manifests.pci_device(address(i))]
    return manifests.assignment(f"vm-{i}", NS, POLICY, f"fault-vm-{i}", devices)


def _policy() -> dict[str, Any]:
    # NS may use every VM of the datacenter (its root VM folder), with the default power and
    # conflict policies (WaitForPowerOff, Block): the VMs are powered off and conflict-free.
    consumer = manifests.consumer([NS], folders=["/DC-VM/vm"])
    return hpp(POLICY, [HOST], consumers=[consumer])


def _vm_state(sim: Simulator) -> dict[str, tuple[list[str], bool]]:
    """VM name -> (static passthrough PCI ids, memoryReservationLockedToMax), one read."""
    pc = vmodl.query.PropertyCollector
    with connect(sim) as si:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        spec = pc.FilterSpec(
            objectSet=[
                pc.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[
                        pc.TraversalSpec(
                            name="v", path="view", skip=False, type=vim.view.ContainerView
                        )
                    ],
                )
            ],
            propSet=[
                pc.PropertySpec(
                    type=vim.VirtualMachine,
                    pathSet=[
                        "name",
                        "config.hardware.device",
                        "config.memoryReservationLockedToMax",
                    ],
                )
            ],
        )
        objects = content.propertyCollector.RetrieveContents([spec])
        view.Destroy()
    state = {}
    for obj in objects:
        props = {p.name: p.val for p in obj.propSet}
        ids = [
            d.backing.id
            for d in props.get("config.hardware.device", [])
            if isinstance(d, vim.vm.device.VirtualPCIPassthrough)
        ]
        state[props["name"]] = (ids, bool(props.get("config.memoryReservationLockedToMax")))
    return state


def _kill_after_reconfigures(
    operator: OperatorProcess, sim: Simulator, rng: random.Random, points: list[int]
) -> int:
    """SIGKILL once `point` ReconfigVM_Task calls were made, plus up to 0.3 s: with 50 ms of
    latency per SOAP call that lands before, during or after the task's completion."""
    for point in points:
        if not operator.alive:
            operator.start()
        eventually(
            lambda p=point: counters(sim).get("ReconfigVM_Task", 0) >= p,  # type: ignore[misc]
            timeout=120,
            what=f"{point} ReconfigVM_Task calls",
            every=0.02,
        )
        time.sleep(rng.uniform(0, 0.3))
        operator.kill()
    return len(points)


def _all_deleted(box: Sandbox) -> bool:
    return not get_json(box, "vmda", "-n", NS)["items"]


def _not_restored(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [
        f"{n} not restored: {after.get(n)} != {s}" for n, s in before.items() if after.get(n) != s
    ]


def _assignments_ready(box: Sandbox) -> bool:
    items = get_json(box, "vmda", "-n", NS)["items"]
    return len(items) == VMS and all(ready(i) for i in items)


def test_sigkill_while_attaching_and_removing_devices(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    rng = random.Random(SEED + 2)
    sim = vcsim_factory(inventory=_inventory())
    operator = fault_operator(sim)
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    apply(sandbox, _policy())
    before = _vm_state(sim)
    sim.admin("PUT", "/latency", {"ms": 50})
    reset_counters(sim)
    # Someone else edits a VM at the wrong moment: one reconfigure meets ConcurrentAccess.
    sim.admin(
        "POST",
        "/faults",
        {
            "method": "ReconfigVM_Task",
            "fault": "ConcurrentAccess",
            "message": "config changed (changeVersion)",
        },
    )
    for i in range(VMS):
        apply(sandbox, _vmda(i))
    kills = _kill_after_reconfigures(operator, sim, rng, sorted(rng.sample(range(VMS), 3)))
    operator.start()
    eventually(lambda: _assignments_ready(sandbox), timeout=240, what="every vmda Ready")
    pending: Any = sim.admin("GET", "/faults")
    assert pending["pending"] == [], "the ConcurrentAccess was never met"
    attached = _vm_state(sim)
    statuses = get_json(sandbox, "vmda", "-n", NS)["items"]
    violations = []
    for i in range(VMS):
        ids, locked = attached[f"fault-vm-{i}"]
        if ids != [address(i)]:
            violations.append(f"fault-vm-{i} has {ids}, want exactly [{address(i)}]")
        if not locked:
            violations.append(f"fault-vm-{i} has a passthrough device without full reservation")
    for item in statuses:
        previous = item["status"].get("previous") or {}
        if previous.get("memoryReservationLockedToMax") is not False:
            violations.append(f"vmda/{item['metadata']['name']}: status.previous lost: {previous}")
        # What deletion may remove is what status says the operator added (its key recorded).
        rows = item["status"].get("devices") or []
        if not rows or not all(r.get("attached") and r.get("added") and r.get("key") for r in rows):
            violations.append(f"vmda/{item['metadata']['name']}: devices not recorded: {rows}")
    sim.admin("PUT", "/latency", {"ms": 0})
    idle = writes_when_idle(sim, 10)
    violations += [f"{n} {m} call(s) once converged" for m, n in idle.items()]

    # Remove them all, with one more kill in the middle: every VM back as it was.
    sim.admin("PUT", "/latency", {"ms": 50})
    reset_counters(sim)
    kubectl(sandbox, "delete", "vmda", "--all", "-n", NS, "--wait=false")
    kills += _kill_after_reconfigures(operator, sim, rng, [rng.randrange(1, VMS)])
    operator.start()
    eventually(
        lambda: _all_deleted(sandbox), timeout=240, what="every vmda deleted (finalizers released)"
    )
    sim.admin("PUT", "/latency", {"ms": 0})
    after = _vm_state(sim)
    violations += _not_restored(before, after)
    summary(
        "sigkill-vm-assignments",
        seed=SEED + 2,
        faults=kills + 1,
        vms=VMS,
        converged=sum(1 for i in range(VMS) if attached[f"fault-vm-{i}"][0] == [address(i)]),
        restored=sum(1 for n, s in before.items() if after.get(n) == s),
        violations=len(violations),
    )
    if violations:
        events = kubectl(sandbox, "get", "events", "-n", NS, "--sort-by=.lastTimestamp")
        print(events, operator.logs()[-20_000:], sep="\n")
    assert violations == []


def test_assignments_deleted_while_the_operator_was_down(
    sandbox: Sandbox,
    vcsim_factory: SimulatorFactory,
    fault_operator: Callable[[Simulator], OperatorProcess],
) -> None:
    """The operator starts with deletions waiting. Its watches deliver the policy and the
    assignments in no set order; had a deletion run before the policy was cached, it would
    have released the finalizer as if the policy no longer existed and left the VM with its
    device. Nothing reconciles before the caches hold every object (app/cache_sync.py)."""
    sim = vcsim_factory(inventory=_inventory())
    operator = fault_operator(sim)
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    apply(sandbox, _policy())
    before = _vm_state(sim)
    operator.start()
    for i in range(VMS):
        apply(sandbox, _vmda(i))
    eventually(lambda: _assignments_ready(sandbox), timeout=240, what="every vmda Ready")
    operator.kill()
    kubectl(sandbox, "delete", "vmda", "--all", "-n", NS, "--wait=false")
    operator.start()
    eventually(
        lambda: _all_deleted(sandbox), timeout=240, what="every vmda deleted (finalizers released)"
    )
    after = _vm_state(sim)
    log = operator.log.read_text(errors="replace")
    violations = _not_restored(before, after)
    if "PolicyNotFound" in log:
        violations.append("a finalizer was released for a policy that exists")
    synced, released = log.find("Caches complete"), log.find("Releasing the finalizer")
    if not 0 <= synced < released:
        violations.append(f"released before the caches were complete ({synced}, {released})")
    summary(
        "deleted-while-down",
        vms=VMS,
        restored=sum(1 for n, s in before.items() if after.get(n) == s),
        violations=len(violations),
    )
    assert violations == []
