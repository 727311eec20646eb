"""Helpers of the VMDeviceAssignment end-to-end modules: manifests, a simulator of the module's
own with its policy Ready, waiting for a condition, and the VM's passthrough devices as vCenter
has them (raw pyVmomi, not the operator's adapter)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from pyVmomi import vim
from tests.e2e.conftest import apply, get, kubectl, secret_for
from tests.integration.vsphere.helpers import connect, eventually, find

from dpio_sandbox import manifests, vcsim
from dpio_sandbox.manifests import EVERY_VM
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

TIMEOUT = 60.0  # seconds for an assignment to reach a condition
A100_IDS = {"vendorID": "10de", "deviceID": "20b5"}  # device selectors by PCI vendor and device
T4_IDS = {"vendorID": "10de", "deviceID": "1eb8"}
# An A100 80GB maps 128 GB (its BARs): the simulator powers a VM with one on only with EFI and
# the 64-bit MMIO settings, as vSphere does (docs/mmio.md), so every e2e VM given one is EFI.
A100_YAML = ('vendorId: "10de", deviceId: "20b5", classId: "0302", name: "GA100 [A100 PCIe 80GB]", '
             "vendorName: NVIDIA Corporation, enabled: true, active: true, "
             "mmioSizeGB: 128")  # fmt: skip
T4_YAML = ('vendorId: "10de", deviceId: "1eb8", classId: "0302", name: "TU104GL [Tesla T4]", '
           "vendorName: NVIDIA Corporation, enabled: true, active: true")  # fmt: skip


def a100s_yaml(buses: Sequence[str]) -> str:
    """Inventory lines (YAML) of one A100 (A100_YAML) per PCI bus of `buses`, at 0000:<bus>:00.0,
    indented for a host's `pciDevices` inside a cluster."""
    return "\n".join(f'              - {{address: "0000:{b}:00.0", {A100_YAML}}}' for b in buses)


Want = tuple[str, str] | Callable[[tuple[str, str]], bool]

# Every SOAP method that changes vCenter, as the simulator's call counters name them.
WRITES = vcsim.WRITE_METHODS


ALL_POWER_POLICIES = ("WaitForPowerOff", "ShutdownGuest", "PowerOff")


def hpp(
    name: str,
    secret: str,
    hosts: list[str],
    devices: Sequence[Mapping[str, Any]],
    consumers: list[str],
    *,
    power_policies: Sequence[str] = ("WaitForPowerOff",),
    conflict_policies: Sequence[str] = ("Block",),
    folders: Sequence[str] = (EVERY_VM,),
) -> dict[str, Any]:
    """A HostPassthroughPolicy of `devices` on the `hosts` of the vCenter in Secret `secret`,
    with one consumer entry: the namespaces `consumers` may use the VMs in `folders` (every VM
    unless told otherwise) with the power and conflict policies given (the API's defaults
    unless told otherwise: a module allows what its assignments use, no more)."""
    entry = manifests.consumer(
        consumers,
        folders=folders,
        power_policies=power_policies,
        conflict_policies=conflict_policies,
    )
    return manifests.policy(name, secret=secret, hosts=hosts, devices=devices, consumers=[entry])


def one_host(host: str, pci: dict[str, str], vms: dict[str, str]) -> str:
    """A simulator inventory (YAML): datacenter DC1 with one ESXi 8.0.2 host `host` that rebinds
    devices without a reboot, its PCI devices (`pci`: address -> the device's fields, such as
    A100_YAML) and its VMs (`vms`: name -> their fields other than the host)."""
    devices = "".join(f'\n          - {{address: "{a}", {fields}}}' for a, fields in pci.items())
    machines = "".join(f"\n      - {{name: {n}, host: {host}, {f}}}" for n, f in vms.items())
    return f"""
datacenters:
  - name: DC1
    hosts:
      - name: {host}
        version: "8.0.2"
        deviceRebindWithoutReboot: true
        pciDevices:{devices}
    vms:{machines}
"""


def simulator_fixture(
    name: str, inventory: str, policy: dict[str, Any], namespaces: Sequence[str]
) -> Any:
    """A module-scoped fixture `sim` (assign it to `sim` in the test module): a simulator of the
    module's own called `name` with `inventory` (YAML text) and its vCenter Secret (also called
    `name`), with `namespaces` and `policy` applied in the module's `operator`; yielded once the
    policy is Ready."""

    @pytest.fixture(scope="module", name="sim")
    def sim(operator: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
        state = tmp_path_factory.mktemp(name)
        inventory_file = state / "inventory.yaml"
        inventory_file.write_text(inventory)
        simulator = vcsim.start(state, name=name, inventory=inventory_file)
        try:
            secret_for(operator, simulator, name)
            for namespace in namespaces:
                apply(
                    operator,
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                )
            apply(operator, policy)
            ready = f"hpp/{policy['metadata']['name']}"
            kubectl(operator, "wait", "--for=condition=Ready", ready, f"--timeout={int(TIMEOUT)}s")
            yield simulator
        finally:
            vcsim.stop(state, name)

    return sim


def condition(body: dict[str, Any], type_: str) -> tuple[str, str]:
    """(status, reason) of condition `type_`; ("", "") when the object has none."""
    found = [c for c in body.get("status", {}).get("conditions", []) if c["type"] == type_]
    return (found[0]["status"], found[0]["reason"]) if found else ("", "")


def condition_message(body: dict[str, Any], type_: str) -> str:
    """The message of condition `type_`; "" when there is none."""
    found = [c for c in body.get("status", {}).get("conditions", []) if c["type"] == type_]
    return str(found[0].get("message", "")) if found else ""


def until(
    box: Sandbox, namespace: str, name: str, type_: str, want: Want, timeout: float = TIMEOUT
) -> dict[str, Any]:
    """The assignment once condition `type_` is `want` (status, reason), or `want` accepts it,
    for the object's current generation."""
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        nonlocal last
        body = last = get(box, "vmda", name, namespace)
        if body.get("status", {}).get("observedGeneration") != body["metadata"]["generation"]:
            return None
        got = condition(body, type_)
        return body if (want(got) if callable(want) else got == want) else None

    try:
        return eventually(check, timeout=timeout)
    except AssertionError:
        generation = last.get("metadata", {}).get("generation")
        status = last.get("status", {})
        raise AssertionError(
            f"{namespace}/{name}: {type_} never {want} for generation {generation} within "
            f"{timeout}s; status: {status}"
        ) from None


def passthrough(vm: Any) -> list[Any]:
    """The VM's PCI passthrough devices, static and Dynamic DirectPath alike."""
    return [
        d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualPCIPassthrough)
    ]


def passthrough_of(sim: Simulator, vm_name: str) -> list[Any]:
    """`passthrough` of the VM called `vm_name`, through a connection of its own."""
    with connect(sim) as si:
        return passthrough(find(si, vim.VirtualMachine, vm_name))


def backings_of(sim: Simulator, vm_name: str) -> list[str]:
    """The passthrough devices of the VM called `vm_name` by backing: the static host PCI id, or
    "dynamic" for a Dynamic DirectPath device."""
    return [
        d.backing.id
        if isinstance(d.backing, vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo)
        else "dynamic"
        for d in passthrough_of(sim, vm_name)
    ]


def writes(sim: Simulator) -> dict[str, int]:
    """vCenter writes since the simulator's counters were last reset, by method."""
    counters: Any = sim.admin("GET", "/counters")
    return {m: n for m, n in counters["counts"].items() if m in WRITES and n}
