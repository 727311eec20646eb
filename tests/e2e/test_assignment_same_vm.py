"""Two VMDeviceAssignments naming ONE VM and the same device, through the running operator.

A device can be attached once (DESIGN.md §3.2.1): the older assignment gets it, the newer shows
DevicesUnavailable=True / ClaimedByAssignment naming the older one, and the VM has the device
once. Deleting the older one leaves the device for the newer (no detach and re-attach), which
then goes Ready; deleting that one removes it. The same for a Dynamic DirectPath device the
host has only one of (a second dynamic entry would make power-on fail).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim
from tests.e2e.conftest import apply, get, kubectl, secret_for
from tests.sandbox.vsphere_helpers import connect, eventually, find

from dpio_sandbox import vcsim
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

NS, POLICY, SECRET, SIM = "e2e-samevm", "e2e-samevm-gpus", "vcsim-samevm", "vcsim-samevm"
TIMEOUT = 60.0
GPU = "0000:3b:00.0"
T4 = {"vendorID": "10de", "deviceID": "1eb8"}  # one T4 on the host: one dynamic device fits
INVENTORY = """
datacenters:
  - name: DC1
    hosts:
      - name: esx-s.lab.local
        version: "8.0.2"
        deviceRebindWithoutReboot: true
        pciDevices:
          - {address: "0000:3b:00.0", vendorId: "10de", deviceId: "20b5", classId: "0302",
             name: "GA100 [A100 PCIe 80GB]", vendorName: NVIDIA Corporation, enabled: true,
             active: true}
          - {address: "0000:5e:00.0", vendorId: "10de", deviceId: "1eb8", classId: "0302",
             name: "TU104GL [Tesla T4]", vendorName: NVIDIA Corporation, enabled: true,
             active: true}
    vms:
      - {name: static-vm, host: esx-s.lab.local, memoryMB: 4096}
      - {name: dynamic-vm, host: esx-s.lab.local, memoryMB: 4096}
"""


def _vmda(name: str, vm: str, device: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "VMDeviceAssignment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "policyRef": {"name": POLICY},
            "vm": {"name": vm},
            "devices": [{"name": "gpu0", **device}],
            "powerPolicy": "PowerOff",
        },
    }


def _policy() -> dict[str, Any]:
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "HostPassthroughPolicy",
        "metadata": {"name": POLICY},
        "spec": {
            "vcenter": {"secretRef": {"name": SECRET}},
            "hosts": {"names": ["esx-s.lab.local"]},
            "devices": [{"address": GPU}, {"vendorID": "10de", "deviceID": "1eb8"}],
            "consumers": {"namespaces": [NS]},
        },
    }


@pytest.fixture(scope="module")
def sim(operator: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    state = tmp_path_factory.mktemp(SIM)
    inventory = state / "inventory.yaml"
    inventory.write_text(INVENTORY)
    simulator = vcsim.start(state, name=SIM, inventory=Path(inventory))
    try:
        secret_for(operator, simulator, SECRET)
        apply(operator, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        apply(operator, _policy())
        kubectl(operator, "wait", "--for=condition=Ready", f"hpp/{POLICY}", "--timeout=60s")
        yield simulator
    finally:
        vcsim.stop(state, SIM)


def _condition(body: dict[str, Any], type_: str) -> tuple[str, str, str]:
    found = [c for c in body.get("status", {}).get("conditions", []) if c["type"] == type_]
    return (found[0]["status"], found[0]["reason"], found[0]["message"]) if found else ("", "", "")


def _until(box: Sandbox, name: str, type_: str, want: tuple[str, str]) -> dict[str, Any]:
    """The object once condition `type_` is `want` (status, reason) for its generation."""
    last: list[Any] = [None]

    def check() -> dict[str, Any] | None:
        body = last[0] = get(box, "vmda", name, NS)
        if body.get("status", {}).get("observedGeneration") != body["metadata"]["generation"]:
            return None
        return body if _condition(body, type_)[:2] == want else None

    try:
        return eventually(check, timeout=TIMEOUT)
    except AssertionError:
        status = (last[0] or {}).get("status", {})
        raise AssertionError(f"{name}: {type_} never {want}; status: {status}") from None


def _pci(sim: Simulator, vm_name: str) -> list[Any]:
    with connect(sim) as si:
        vm = find(si, vim.VirtualMachine, vm_name)
        return [
            d
            for d in vm.config.hardware.device
            if isinstance(d, vim.vm.device.VirtualPCIPassthrough)
        ]


def _gone(box: Sandbox, name: str) -> None:
    kubectl(box, "delete", "vmda", name, "-n", NS, "--wait=false")
    kubectl(box, "wait", "--for=delete", f"vmda/{name}", "-n", NS, f"--timeout={int(TIMEOUT)}s")


@pytest.mark.parametrize(
    ("vm", "device"),
    [
        ("static-vm", {"pci": {"address": GPU}}),
        ("dynamic-vm", {"dynamic": T4}),
    ],
    ids=["static", "dynamic"],
)
def test_one_device_two_assignments_on_one_vm_older_wins(
    operator: Sandbox, sim: Simulator, vm: str, device: dict[str, Any]
) -> None:
    older, newer = f"{vm}-older", f"{vm}-newer"
    apply(operator, _vmda(older, vm, device))
    time.sleep(1.1)  # creationTimestamp has whole seconds: make "older" unambiguous
    apply(operator, _vmda(newer, vm, device))

    _until(operator, older, "Ready", ("True", "Reconciled"))
    body = _until(operator, newer, "DevicesUnavailable", ("True", "ClaimedByAssignment"))
    assert _condition(body, "Ready")[:2] == ("False", "ClaimedByAssignment")
    assert f"{NS}/{older}" in _condition(body, "DevicesUnavailable")[2]
    assert [d["attached"] for d in body["status"]["devices"]] == [False]
    time.sleep(3)  # a few more reconciles of both: nothing moves
    [attached] = _pci(sim, vm)
    assert _condition(get(operator, "vmda", newer, NS), "Ready")[0] == "False"

    # The older one goes: the device stays on the VM, now the newer one's.
    _gone(operator, older)
    body = _until(operator, newer, "Ready", ("True", "Reconciled"))
    assert [d["attached"] for d in body["status"]["devices"]] == [True]
    assert [d.key for d in _pci(sim, vm)] == [attached.key]  # never detached and re-added

    # The last one goes: the device goes with it.
    _gone(operator, newer)
    assert _pci(sim, vm) == []
