"""An older Dynamic DirectPath entry and a newer static entry for the host's only device, on ONE VM,
through the running operator (docs/design.md, "VM side: devices and claims").

A dynamic device gets a host device only at power-on, so had the newer static entry gone on as
well, power-on would find no device free and the older assignment would lose its GPU to the
newer. The older one is Ready with its dynamic device; the newer shows DevicesUnavailable /
ClaimedByAssignment naming it and the VM has one passthrough device. Deleting the older one
frees the device: the newer one's static device goes on and it turns Ready.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.e2e.assignments import (
    T4_IDS,
    T4_YAML,
    TIMEOUT,
    backings_of,
    condition,
    condition_message,
    hpp,
    one_host,
    simulator_fixture,
    until,
)
from tests.e2e.conftest import apply, get, kubectl

from dpio_sandbox.manifests import assignment
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

NS, POLICY, SIM = "e2e-dynclaims", "e2e-dynclaims-gpus", "vcsim-dyn"
T4 = "0000:5e:00.0"  # the host's only T4
VM = "mixed-vm"
HOST = "esx-d.lab.local"
INVENTORY = one_host(HOST, pci={T4: T4_YAML}, vms={VM: "memoryMB: 4096"})


def _vmda(name: str, device: dict[str, Any]) -> dict[str, Any]:
    return assignment(name, NS, POLICY, VM, [{"name": "gpu0", **device}], powerPolicy="PowerOff")


GPUS = hpp(POLICY, SIM, hosts=[HOST], devices=[T4_IDS], consumers=[NS], power_policies=["PowerOff"])
sim = simulator_fixture(SIM, INVENTORY, GPUS, namespaces=[NS])


def test_a_newer_static_entry_does_not_take_the_device_an_older_dynamic_entry_needs(
    operator: Sandbox, sim: Simulator
) -> None:
    apply(operator, _vmda("older", {"dynamic": {"vendorID": "10de", "deviceID": "1eb8"}}))
    time.sleep(1.1)  # creationTimestamp has whole seconds: make "older" unambiguous
    apply(operator, _vmda("newer", {"pci": {"address": T4}}))

    until(operator, NS, "older", "Ready", ("True", "Reconciled"))
    body = until(operator, NS, "newer", "DevicesUnavailable", ("True", "ClaimedByAssignment"))
    assert condition(body, "Ready") == ("False", "ClaimedByAssignment")
    assert "(older)" in condition_message(body, "DevicesUnavailable")  # same namespace: named
    assert [d["attached"] for d in body["status"]["devices"]] == [False]
    time.sleep(3)  # a few more reconciles of both: nothing moves
    assert backings_of(sim, VM) == ["dynamic"]
    assert condition(get(operator, "vmda", "newer", NS), "Ready")[0] == "False"

    # The older one goes, and its dynamic device with it: the host's T4 is the newer one's now.
    kubectl(operator, "delete", "vmda", "older", "-n", NS, f"--timeout={int(TIMEOUT)}s")
    body = until(operator, NS, "newer", "Ready", ("True", "Reconciled"))
    assert [d["attached"] for d in body["status"]["devices"]] == [True]
    assert backings_of(sim, VM) == [T4]
