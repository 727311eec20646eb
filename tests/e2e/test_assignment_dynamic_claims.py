"""An older Dynamic DirectPath entry and a newer static entry for the host's only device, on ONE VM,
through the running operator (DESIGN.md §3.2.1-2).

A dynamic device gets a host device only at power-on, so had the newer static entry gone on as
well, power-on would find no device free and the older assignment would lose its GPU to the
newer. The older one is Ready with its dynamic device; the newer shows DevicesUnavailable /
ClaimedByAssignment naming it and the VM has one passthrough device. Deleting the older one
frees the device: the newer one's static device goes on and it turns Ready.
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

NS, POLICY, SECRET, SIM = "e2e-dynclaims", "e2e-dynclaims-gpus", "vcsim-dyn", "vcsim-dyn"
TIMEOUT = 60.0
T4 = "0000:5e:00.0"  # the host's only T4
VM = "mixed-vm"
INVENTORY = """
datacenters:
  - name: DC1
    hosts:
      - name: esx-d.lab.local
        version: "8.0.2"
        deviceRebindWithoutReboot: true
        pciDevices:
          - {address: "0000:5e:00.0", vendorId: "10de", deviceId: "1eb8", classId: "0302",
             name: "TU104GL [Tesla T4]", vendorName: NVIDIA Corporation, enabled: true,
             active: true}
    vms:
      - {name: mixed-vm, host: esx-d.lab.local, memoryMB: 4096}
"""


def _vmda(name: str, device: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "VMDeviceAssignment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "policyRef": {"name": POLICY},
            "vm": {"name": VM},
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
            "hosts": {"names": ["esx-d.lab.local"]},
            "devices": [{"vendorID": "10de", "deviceID": "1eb8"}],
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


def _backings(sim: Simulator) -> list[str]:
    """The VM's passthrough devices by backing kind: "dynamic" or the static host PCI id."""
    with connect(sim) as si:
        vm = find(si, vim.VirtualMachine, VM)
        return [
            d.backing.id
            if isinstance(d.backing, vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo)
            else "dynamic"
            for d in vm.config.hardware.device
            if isinstance(d, vim.vm.device.VirtualPCIPassthrough)
        ]


def test_a_newer_static_entry_does_not_take_the_device_an_older_dynamic_entry_needs(
    operator: Sandbox, sim: Simulator
) -> None:
    apply(operator, _vmda("older", {"dynamic": {"vendorID": "10de", "deviceID": "1eb8"}}))
    time.sleep(1.1)  # creationTimestamp has whole seconds: make "older" unambiguous
    apply(operator, _vmda("newer", {"pci": {"address": T4}}))

    _until(operator, "older", "Ready", ("True", "Reconciled"))
    body = _until(operator, "newer", "DevicesUnavailable", ("True", "ClaimedByAssignment"))
    assert _condition(body, "Ready")[:2] == ("False", "ClaimedByAssignment")
    assert f"{NS}/older" in _condition(body, "DevicesUnavailable")[2]
    assert [d["attached"] for d in body["status"]["devices"]] == [False]
    time.sleep(3)  # a few more reconciles of both: nothing moves
    assert _backings(sim) == ["dynamic"]
    assert _condition(get(operator, "vmda", "newer", NS), "Ready")[0] == "False"

    # The older one goes, and its dynamic device with it: the host's T4 is the newer one's now.
    kubectl(operator, "delete", "vmda", "older", "-n", NS, f"--timeout={int(TIMEOUT)}s")
    body = _until(operator, "newer", "Ready", ("True", "Reconciled"))
    assert [d["attached"] for d in body["status"]["devices"]] == [True]
    assert _backings(sim) == [T4]
