"""Two VMDeviceAssignments naming ONE VM and the same device, through the running operator.

A device can be attached once (docs/design.md, "VM side: devices and claims"): the older
assignment gets it, the newer shows DevicesUnavailable=True / ClaimedByAssignment naming the
older one, and the VM has the device once. Deleting the older one leaves the device for the
newer (no detach and re-attach), which then goes Ready; deleting that one removes it. The same
for a Dynamic DirectPath device the host has only one of (a second dynamic entry would make
power-on fail).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.e2e.assignments import (
    A100_YAML,
    T4_IDS,
    T4_YAML,
    TIMEOUT,
    condition,
    condition_message,
    hpp,
    one_host,
    passthrough_of,
    simulator_fixture,
    until,
)
from tests.e2e.conftest import apply, get, kubectl

from dpio_sandbox.manifests import assignment
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

NS, POLICY, SIM = "e2e-samevm", "e2e-samevm-gpus", "vcsim-samevm"
GPU = "0000:3b:00.0"
T4 = T4_IDS  # one T4 on the host: one dynamic device fits
HOST = "esx-s.lab.local"
INVENTORY = one_host(
    HOST,
    pci={GPU: A100_YAML, "0000:5e:00.0": T4_YAML},
    vms=dict.fromkeys(("static-vm", "dynamic-vm"), "firmware: efi, memoryMB: 4096"),
)


def _vmda(name: str, vm: str, device: dict[str, Any]) -> dict[str, Any]:
    return assignment(name, NS, POLICY, vm, [{"name": "gpu0", **device}], powerPolicy="PowerOff")


GPUS = hpp(
    POLICY,
    SIM,
    hosts=[HOST],
    devices=[{"address": GPU}, T4],
    consumers=[NS],
    power_policies=["PowerOff"],
)
sim = simulator_fixture(SIM, INVENTORY, GPUS, namespaces=[NS])


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

    until(operator, NS, older, "Ready", ("True", "Reconciled"))
    body = until(operator, NS, newer, "DevicesUnavailable", ("True", "ClaimedByAssignment"))
    assert condition(body, "Ready") == ("False", "ClaimedByAssignment")
    assert f"({older})" in condition_message(body, "DevicesUnavailable")  # same namespace
    assert [d["attached"] for d in body["status"]["devices"]] == [False]
    time.sleep(3)  # a few more reconciles of both: nothing moves
    [attached] = passthrough_of(sim, vm)
    assert condition(get(operator, "vmda", newer, NS), "Ready")[0] == "False"

    # The older one goes: the device stays on the VM, now the newer one's.
    _gone(operator, older)
    body = until(operator, NS, newer, "Ready", ("True", "Reconciled"))
    assert [d["attached"] for d in body["status"]["devices"]] == [True]
    assert [d.key for d in passthrough_of(sim, vm)] == [attached.key]  # never detached and re-added
    # Found attached, not added by this assignment (status.devices[].added false) ...
    assert [d.get("added", False) for d in body["status"]["devices"]] == [False]

    # ... so when the last one goes, the device stays: only a device the operator added for an
    # assignment is removed with it.
    _gone(operator, newer)
    assert [d.key for d in passthrough_of(sim, vm)] == [attached.key]
