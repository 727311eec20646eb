"""A VM changed by hand in vCenter after its assignment converged: the operator sees it through
change notification (not polling) and reacts within seconds — a resolvable conflict is resolved
again, one the spec says to block on is reported."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pyVmomi import vim
from tests.e2e.assignments import (
    A100_IDS,
    A100_YAML,
    condition,
    condition_message,
    hpp,
    one_host,
    simulator_fixture,
)
from tests.e2e.conftest import apply, get, kubectl
from tests.integration.vsphere.helpers import connect, eventually, find, wait_task

from dpio_sandbox.manifests import assignment, pci_device
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

NS, POLICY, SIM = "e2e-vmda-drift", "e2e-vmda-drift-gpus", "vcsim-vmda-drift"
HOST = "esx-d.lab.local"
INVENTORY = one_host(
    HOST,
    pci={"0000:3b:00.0": A100_YAML, "0000:3c:00.0": A100_YAML},
    vms=dict.fromkeys(("resolve-vm", "block-vm"), "firmware: efi, memoryMB: 2048"),
)
SETTLE_SECONDS = 4.0  # > reconcile.assignment's confirming requeue (2 s)
VISIBLE_WITHIN = 5.0  # drift visible in status within 5 s (docs/design.md#performance-targets)


GPUS = hpp(
    POLICY,
    SIM,
    hosts=[HOST],
    devices=[A100_IDS],
    consumers=[NS],
    conflict_policies=["Block", "Resolve"],
)
sim = simulator_fixture(SIM, INVENTORY, GPUS, namespaces=[NS])


def _assign(box: Sandbox, name: str, vm: str, bus: str, conflict_policy: str) -> None:
    devices = [pci_device(f"0000:{bus}:00.0")]
    apply(box, assignment(name, NS, POLICY, vm, devices, conflictPolicy=conflict_policy))
    kubectl(box, "wait", "--for=condition=Ready", f"vmda/{name}", "-n", NS, "--timeout=60s")
    # Past the reconciler's confirming read after its change: from here on only a vCenter
    # change notification can make the operator look at the VM again (there is no polling).
    time.sleep(SETTLE_SECONDS)


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

    def conflict() -> dict[str, Any] | None:
        body = get(operator, "vmda", "block", NS)
        return body if condition(body, "FeatureConflict")[0] == "True" else None

    body = eventually(conflict, timeout=VISIBLE_WITHIN * 2)
    reason = condition(body, "FeatureConflict")[1]
    message = condition_message(body, "FeatureConflict")
    print(f"FeatureConflict {reason} after {time.monotonic() - started:.2f}s: {message}")
    assert "hot" in message.lower(), message
