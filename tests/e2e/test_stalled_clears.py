"""Stalled=True (kstatus Failed) for what only a human can fix, and cleared once the human has
acted in vSphere, through `kubectl apply`, the running operator and the simulator: the
snapshots of a VM deleted, a device detached from the VM that held it. kstatus' verdict comes
from its own code (cli-utils `status.Compute`, via dpio-gitops-health)."""

from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim
from tests.e2e.assignments import (
    A100_IDS,
    a100s_yaml,
    condition,
    hpp,
    simulator_fixture,
    until,
)
from tests.e2e.conftest import apply
from tests.integration.vsphere.helpers import connect, find, wait_task

from dpio_sandbox import gitops
from dpio_sandbox.manifests import assignment, pci_device
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

NS, POLICY, SIM = "e2e-stalled", "e2e-stalled-gpus", "vcsim-stalled"

INVENTORY = f"""
datacenters:
  - name: DC1
    hosts:
      - name: esx-s.lab.local
        version: "8.0.2"
        deviceRebindWithoutReboot: true
        pciDevices:
{a100s_yaml(("3b", "3c"))}
    vms:
      - {{name: snap-vm, host: esx-s.lab.local, firmware: efi, memoryMB: 2048, snapshots: 2}}
      - {{name: want-vm, host: esx-s.lab.local, firmware: efi, memoryMB: 2048}}
      - {{name: holder-vm, host: esx-s.lab.local, firmware: efi, memoryMB: 2048,
          pciPassthrough: [{{address: "0000:3c:00.0"}}]}}
"""
# a100s_yaml indents for a host inside a cluster; these hosts are one level up.
INVENTORY = INVENTORY.replace("\n              - {address", "\n          - {address")

sim = simulator_fixture(
    SIM, INVENTORY, hpp(POLICY, SIM, ["esx-s.lab.local"], [A100_IDS], [NS]), namespaces=(NS,)
)


def kstatus(body: dict[str, Any]) -> str:
    (verdict,) = gitops.evaluate([body])
    return str(verdict["kstatus"]["status"])


def stalled_then_cleared(
    box: Sandbox, name: str, reason: str, act: Any, sim: Simulator
) -> dict[str, Any]:
    body = until(box, NS, name, "Stalled", ("True", reason))
    assert condition(body, "Ready") == ("False", reason)
    assert kstatus(body) == "Failed"
    with connect(sim) as si:
        act(si)  # the human acts in vSphere; nothing is applied in Kubernetes
    body = until(box, NS, name, "Ready", ("True", "Reconciled"))
    assert condition(body, "Stalled")[0] == "False"
    assert kstatus(body) == "Current"
    return body


def test_snapshots_stall_the_assignment_until_they_are_deleted(
    operator: Sandbox, sim: Simulator
) -> None:
    apply(operator, assignment("snap", NS, POLICY, "snap-vm", [pci_device("0000:3b:00.0")]))

    def delete_snapshots(si: Any) -> None:
        wait_task(find(si, vim.VirtualMachine, "snap-vm").RemoveAllSnapshots_Task())

    stalled_then_cleared(operator, "snap", "Snapshots", delete_snapshots, sim)


def test_a_device_on_another_vm_stalls_the_assignment_until_it_is_detached(
    operator: Sandbox, sim: Simulator
) -> None:
    apply(operator, assignment("want", NS, POLICY, "want-vm", [pci_device("0000:3c:00.0")]))

    def detach(si: Any) -> None:
        holder = find(si, vim.VirtualMachine, "holder-vm")
        device = next(
            d
            for d in holder.config.hardware.device
            if isinstance(d, vim.vm.device.VirtualPCIPassthrough)
        )
        change = vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)
        wait_task(holder.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[change])))

    stalled_then_cleared(operator, "want", "InUseByVM", detach, sim)
