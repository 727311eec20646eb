"""Ready means the VM powers on: every VM the operator reports Ready is powered on here, against a
simulator that enforces vSphere's power-on rules for large-BAR devices (docs/mmio.md;
sandbox/vcsim/VM-RULES.md): EFI firmware and a 64-bit MMIO window big enough for all of them.

Static and Dynamic DirectPath, one and two A100s (128 GB each) per VM, an old hardware version
upgraded on request, and the refusals: a BIOS VM with an A100 and Dynamic DirectPath below
vmx-17 stay not Ready with no vCenter write. On delete the MMIO settings go back.
"""

from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim
from tests.e2e.assignments import (
    A100_YAML,
    T4_YAML,
    TIMEOUT,
    condition,
    condition_message,
    hpp,
    passthrough,
    simulator_fixture,
    until,
    writes,
)
from tests.e2e.conftest import apply, get, kubectl
from tests.integration.vsphere.helpers import connect, find, wait_task

from dpio_sandbox.manifests import assignment, pci_device
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

NS, POLICY, SIM, HOST = "e2e-poweron", "e2e-poweron-gpus", "vcsim-poweron", "esx-p.lab.local"
A100S = [f"0000:{bus}:00.0" for bus in ("3b", "3c", "3d", "3e", "3f", "40")]
T4 = "0000:af:00.0"
SPARE = "0000:41:00.0"  # an A100 40GB outside the policy, for the simulator's own check
SPARE_YAML = A100_YAML.replace('"20b5"', '"20f1"').replace("80GB", "40GB").replace(": 128", ": 64")
USE_64BIT, SIZE = "pciPassthru.use64bitMMIO", "pciPassthru.64bitMMIOSizeGB"

_devices = "".join(f'\n          - {{address: "{a}", {A100_YAML}}}' for a in A100S)
INVENTORY = f"""
datacenters:
  - name: DC1
    hosts:
      - name: {HOST}
        version: "8.0.2"
        deviceRebindWithoutReboot: true
        pciDevices:{_devices}
          - {{address: "{T4}", {T4_YAML}}}
          - {{address: "{SPARE}", {SPARE_YAML}}}
    vms:
      - {{name: one-gpu, host: {HOST}, firmware: efi, memoryMB: 4096}}
      - {{name: two-gpus, host: {HOST}, firmware: efi, memoryMB: 4096}}
      - {{name: dynamic-gpu, host: {HOST}, firmware: efi, memoryMB: 4096}}
      - {{name: old-hw, host: {HOST}, firmware: efi, hardwareVersion: vmx-15, memoryMB: 4096}}
      - {{name: old-hw-refused, host: {HOST}, firmware: efi, hardwareVersion: vmx-15,
          memoryMB: 4096}}
      - {{name: bios-gpu, host: {HOST}, firmware: bios, memoryMB: 4096}}
      - {{name: bios-small, host: {HOST}, firmware: bios, memoryMB: 4096}}
"""
# The A100 80GBs by vendor:device id (a label needs one), the T4 by its address. The spare, an
# A100 40GB, matches neither: no assignment can take it.
DEVICES: list[dict[str, Any]] = [
    {"vendorID": "10de", "deviceID": "20b5", "hardwareLabel": "a100"},
    {"address": T4},
]
GPUS = hpp(POLICY, SIM, hosts=[HOST], devices=DEVICES, consumers=[NS])
sim = simulator_fixture(SIM, INVENTORY, GPUS, namespaces=[NS])

DYNAMIC = {"dynamic": {"vendorID": "10de", "deviceID": "20b5", "label": "a100"}}
READY: dict[str, tuple[str, list[dict[str, Any]], dict[str, Any]]] = {
    # assignment: (VM, devices, more spec)
    "one": ("one-gpu", [{"name": "gpu0", "pci": {"address": A100S[0]}}], {}),
    "two": (
        "two-gpus",
        [
            {"name": "gpu0", "pci": {"address": A100S[1]}},
            {"name": "gpu1", "pci": {"address": A100S[2]}},
        ],
        {},
    ),
    "dynamic": ("dynamic-gpu", [{"name": "gpu0", **DYNAMIC}], {}),
    "upgraded": ("old-hw", [{"name": "gpu0", **DYNAMIC}], {"upgradeHardwareVersion": True}),
    "small": ("bios-small", [{"name": "gpu0", "pci": {"address": T4}}], {}),
}


def _vm(si: Any, name: str) -> Any:
    return find(si, vim.VirtualMachine, name)


def _extra(vm: Any) -> dict[str, str]:
    return {o.key: str(o.value) for o in vm.config.extraConfig or () if o.key.startswith("pciP")}


def test_every_vm_reported_ready_powers_on(operator: Sandbox, sim: Simulator) -> None:
    for name, (vm, devices, spec) in READY.items():
        apply(operator, assignment(name, NS, POLICY, vm, devices, **spec))
    for name in READY:
        until(operator, NS, name, "Ready", ("True", "Reconciled"), timeout=2 * TIMEOUT)

    with connect(sim) as si:
        windows = {vm: _extra(_vm(si, vm)) for vm, _, _ in READY.values()}
        assert windows["one-gpu"] == {USE_64BIT: "TRUE", SIZE: "128"}
        assert windows["two-gpus"] == {USE_64BIT: "TRUE", SIZE: "256"}
        assert windows["dynamic-gpu"] == {USE_64BIT: "TRUE", SIZE: "128"}
        assert windows["bios-small"] == {}  # a T4 fits the default window: nothing set
        assert _vm(si, "old-hw").config.version == "vmx-17"
        # The proof: vSphere's power-on rules accept every one of them.
        for vm, devices, _ in READY.values():
            machine = _vm(si, vm)
            assert len(passthrough(machine)) == len(devices)
            wait_task(machine.PowerOnVM_Task())
            assert machine.runtime.powerState == "poweredOn", vm

    body = get(operator, "vmda", "upgraded", NS)
    assert body["status"]["previous"]["hardwareVersion"] == "vmx-15"
    assert body["status"]["vm"]["mmioSizeGB"] == 128


def test_the_simulator_refuses_what_the_operator_prevents(sim: Simulator) -> None:
    # The same rule, without the operator: an A100 on an EFI VM without the window fails at
    # power-on as vSphere does. Shows the e2e above proves something.
    with connect(sim) as si:
        vm = _vm(si, "bios-gpu")
        host = find(si, vim.HostSystem, HOST)
        target = vm.environmentBrowser.QueryConfigTarget(host)
        free = next(p for p in target.pciPassthrough if p.pciDevice.id == SPARE)
        backing = vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo(
            id=free.pciDevice.id,
            deviceId=f"{free.pciDevice.deviceId & 0xFFFF:x}",
            systemId=free.systemId,
            vendorId=free.pciDevice.vendorId,
            deviceName="",
        )
        add = vim.vm.device.VirtualDeviceSpec(
            operation="add", device=vim.vm.device.VirtualPCIPassthrough(key=-1, backing=backing)
        )
        spec = vim.vm.ConfigSpec(deviceChange=[add], memoryReservationLockedToMax=True)
        wait_task(vm.ReconfigVM_Task(spec=spec))
        with pytest.raises(Exception, match="DevicePowerOn"):
            wait_task(vm.PowerOnVM_Task())
        assert vm.runtime.powerState == "poweredOff"
        remove = vim.vm.device.VirtualDeviceSpec(operation="remove", device=passthrough(vm)[0])
        wait_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[remove])))


def test_a_bios_vm_and_an_old_hardware_version_are_refused_with_no_write(
    operator: Sandbox, sim: Simulator
) -> None:
    sim.admin("POST", "/counters/reset")
    apply(
        operator,
        assignment("bios", NS, POLICY, "bios-gpu", [pci_device(A100S[4])]),
    )
    apply(operator, assignment("old", NS, POLICY, "old-hw-refused", [{"name": "gpu0", **DYNAMIC}]))
    bios = until(operator, NS, "bios", "Stalled", ("True", "FirmwareNotEFI"))
    old = until(operator, NS, "old", "Stalled", ("True", "HardwareVersionTooOld"))
    assert condition(bios, "Ready")[0] == "False"
    assert condition(old, "Ready")[0] == "False"
    assert "EFI" in condition_message(bios, "Stalled")
    assert "upgradeHardwareVersion" in condition_message(old, "Stalled")
    assert bios["status"]["vm"]["firmware"] == "bios"
    assert writes(sim) == {}
    with connect(sim) as si:
        assert passthrough(_vm(si, "bios-gpu")) == []
        assert _vm(si, "old-hw-refused").config.version == "vmx-15"


def test_delete_puts_the_mmio_settings_back(operator: Sandbox, sim: Simulator) -> None:
    with connect(sim) as si:
        wait_task(_vm(si, "one-gpu").PowerOffVM_Task())
    kubectl(operator, "delete", "vmda", "one", "-n", NS, f"--timeout={int(TIMEOUT)}s")
    with connect(sim) as si:
        vm = _vm(si, "one-gpu")
        assert passthrough(vm) == []
        assert _extra(vm) == {}  # both keys were absent before: removed
