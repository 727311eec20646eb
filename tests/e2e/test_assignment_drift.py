"""A VM changed by hand in vCenter after its assignment converged: the operator sees it through
change notification (not polling) and reacts within seconds — a resolvable conflict is resolved
again, one the spec says to block on is reported."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim
from tests.e2e.conftest import apply, get, kubectl, secret_for
from tests.sandbox.vsphere_helpers import connect, eventually, find, wait_task

from dpio_sandbox import vcsim
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

NS, POLICY, SECRET = "e2e-vmda-drift", "e2e-vmda-drift-gpus", "vcsim-vmda-drift"
A100 = ('vendorId: "10de", deviceId: "20b5", classId: "0302", name: "GA100 [A100 PCIe 80GB]", '
        "vendorName: NVIDIA Corporation, enabled: true, active: true")  # fmt: skip
INVENTORY = f"""
datacenters:
  - name: DC1
    hosts:
      - name: esx-d.lab.local
        version: "8.0.2"
        deviceRebindWithoutReboot: true
        pciDevices:
          - {{address: "0000:3b:00.0", {A100}}}
          - {{address: "0000:3c:00.0", {A100}}}
    vms:
      - {{name: resolve-vm, host: esx-d.lab.local, memoryMB: 2048}}
      - {{name: block-vm, host: esx-d.lab.local, memoryMB: 2048}}
"""
SETTLE_SECONDS = 4.0  # > reconcile.assignment's confirming requeue (2 s)
VISIBLE_WITHIN = 5.0  # DESIGN.md §7: drift visible in status within 5 s


@pytest.fixture(scope="module")
def sim(operator: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    state = tmp_path_factory.mktemp("vcsim-vmda-drift")
    inventory = state / "inventory.yaml"
    inventory.write_text(INVENTORY)
    simulator = vcsim.start(state, name="vcsim-vmda-drift", inventory=Path(inventory))
    try:
        secret_for(operator, simulator, SECRET)
        apply(operator, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        apply(operator, {
            "apiVersion": "dpio.io/v1alpha1", "kind": "HostPassthroughPolicy",
            "metadata": {"name": POLICY},
            "spec": {"vcenter": {"secretRef": {"name": SECRET}},
                     "hosts": {"names": ["esx-d.lab.local"]},
                     "devices": [{"vendorID": "10de", "deviceID": "20b5"}],
                     "consumers": {"namespaces": [NS]}},
        })  # fmt: skip
        kubectl(operator, "wait", "--for=condition=Ready", f"hpp/{POLICY}", "--timeout=60s")
        yield simulator
    finally:
        vcsim.stop(state, "vcsim-vmda-drift")


def _assign(box: Sandbox, name: str, vm: str, bus: str, conflict_policy: str) -> None:
    apply(box, {
        "apiVersion": "dpio.io/v1alpha1", "kind": "VMDeviceAssignment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"policyRef": {"name": POLICY}, "vm": {"name": vm},
                 "devices": [{"name": "gpu0", "pci": {"address": f"0000:{bus}:00.0"}}],
                 "conflictPolicy": conflict_policy},
    })  # fmt: skip
    kubectl(box, "wait", "--for=condition=Ready", f"vmda/{name}", "-n", NS, "--timeout=60s")
    # Past the reconciler's confirming read after its change: from here on only a vCenter
    # change notification can make the operator look at the VM again (there is no polling).
    time.sleep(SETTLE_SECONDS)


def _condition(box: Sandbox, name: str, type_: str) -> tuple[str, str, str]:
    body: dict[str, Any] = get(box, "vmda", name, NS)
    for c in body.get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c["status"], c["reason"], c.get("message", "")
    return "", "", ""


def test_hot_add_turned_on_by_hand_is_turned_off_again_with_resolve(
    operator: Sandbox, sim: Simulator
) -> None:
    _assign(operator, "resolve", "resolve-vm", "3b", "Resolve")
    with connect(sim) as si:
        vm = find(si, vim.VirtualMachine, "resolve-vm")
        wait_task(vm.ReconfigVM_Task(vim.vm.ConfigSpec(cpuHotAddEnabled=True)))
        started = time.monotonic()
        eventually(lambda: vm.config.cpuHotAddEnabled is False, timeout=VISIBLE_WITHIN * 2)
    print(f"hot add turned off again after {time.monotonic() - started:.2f}s")
    kubectl(operator, "wait", "--for=condition=Ready", "vmda/resolve", "-n", NS, "--timeout=30s")


def test_memory_hot_add_turned_on_by_hand_shows_as_a_feature_conflict_with_block(
    operator: Sandbox, sim: Simulator
) -> None:
    _assign(operator, "block", "block-vm", "3c", "Block")
    with connect(sim) as si:
        vm = find(si, vim.VirtualMachine, "block-vm")
        # (A snapshot can't be the case: vSphere refuses it on a VM with a passthrough device,
        # SnapshotIncompatibleDeviceInVm, and so does the simulator.)
        wait_task(vm.ReconfigVM_Task(vim.vm.ConfigSpec(memoryHotAddEnabled=True)))
    started = time.monotonic()

    def conflict() -> tuple[str, str, str] | None:
        found = _condition(operator, "block", "FeatureConflict")
        return found if found[0] == "True" else None

    _, reason, message = eventually(conflict, timeout=VISIBLE_WITHIN * 2)
    print(f"FeatureConflict {reason} after {time.monotonic() - started:.2f}s: {message}")
    assert "hot" in message.lower(), message
