"""VMDeviceAssignment through `kubectl apply` and the running operator (issue 4's checks).

One simulator with an inventory of its own (every VM shape a case needs, one A100 per case so
the cases don't compete) and one operator for the module. The first test runs alone, to count
vCenter calls; the others are applied together and checked one by one, so they converge
concurrently and show that one object's trouble does not hold up the others.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from tests.e2e.assignments import (
    A100_IDS,
    ALL_POWER_POLICIES,
    TIMEOUT,
    a100s_yaml,
    condition,
    hpp,
    passthrough,
    simulator_fixture,
    until,
    writes,
)
from tests.e2e.conftest import apply, get, kubectl
from tests.integration.vsphere.helpers import connect, eventually, find, wait_task

from dpio_sandbox.manifests import assignment, pci_device
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

NS, OUTSIDER, POLICY, SIM = "e2e-vmda", "e2e-outsider", "e2e-vmda-gpus", "vcsim-vmda"
BUSES = ("3b", "3c", "3d", "3e", "3f", "40", "41", "42", "43", "44", "45", "46")


INVENTORY = f"""
datacenters:
  - name: DC1
    dvs:
      - name: vmfex-dvs
        portgroups:
          - {{name: vmfex-gen2, vmDirectPathGen2Allowed: true}}
    clusters:
      - name: HA-Cluster
        ha: {{enabled: true, restartPriority: medium}}
        drs: {{enabled: true, automationLevel: fullyAutomated}}
        hosts:
          - name: esx-ha-01.lab.local
            version: "8.0.2"
            deviceRebindWithoutReboot: true
            pciDevices:
{a100s_yaml(("3b",))}
    hosts:
      - name: esx-a.lab.local
        version: "8.0.2"
        deviceRebindWithoutReboot: true
        systemVendor: Cisco Systems Inc
        systemModel: UCSC-C240-M5SX
        gen2: {{supported: true}}
        pciDevices:
{a100s_yaml(BUSES)}
    vms:
      - {{name: off-vm, host: esx-a.lab.local, firmware: efi, memoryMB: 8192}}
      - {{name: wait-vm, host: esx-a.lab.local, powerState: poweredOn,
          firmware: efi, memoryMB: 4096}}
      - {{name: poweroff-vm, host: esx-a.lab.local, powerState: poweredOn,
          firmware: efi, memoryMB: 4096}}
      - {{name: race-vm-1, host: esx-a.lab.local, firmware: efi, memoryMB: 2048}}
      - {{name: race-vm-2, host: esx-a.lab.local, firmware: efi, memoryMB: 2048}}
      - {{name: race-vm-3, host: esx-a.lab.local, firmware: efi, memoryMB: 2048}}
      - {{name: race-vm-4, host: esx-a.lab.local, firmware: efi, memoryMB: 2048}}
      - {{name: snap-vm, host: esx-a.lab.local, firmware: efi, memoryMB: 2048, snapshots: 2}}
      - {{name: ft-vm, host: esx-a.lab.local, firmware: efi, memoryMB: 2048, ft: primary}}
      - {{name: hotadd-vm, host: esx-a.lab.local, firmware: efi, memoryMB: 2048, cpuHotAdd: true,
          memoryHotAdd: true}}
      - {{name: nested-vm, host: esx-a.lab.local, firmware: efi, memoryMB: 2048, nestedHV: true}}
      - {{name: ha-vm, host: esx-ha-01.lab.local, firmware: efi, memoryMB: 2048, cpuHotAdd: true}}
      - {{name: shutdown-vm, host: esx-a.lab.local, powerState: poweredOn,
          firmware: efi, memoryMB: 4096}}
      - {{name: dynamic-vm, host: esx-a.lab.local, firmware: efi, memoryMB: 4096}}
      - {{name: gen2-vm, host: esx-a.lab.local, firmware: efi, memoryMB: 4096,
          nics: [{{type: vmxnet3, network: vmfex-gen2}}]}}
"""


def _address(bus: str) -> str:
    return f"0000:{bus}:00.0"


def _vmda(name: str, vm: str, bus: str | None, namespace: str = NS, **spec: Any) -> dict[str, Any]:
    devices = [pci_device(_address(bus))] if bus else []
    return assignment(name, namespace, POLICY, vm, devices, **spec)


GPUS = hpp(
    POLICY,
    SIM,
    hosts=["esx-a.lab.local", "esx-ha-01.lab.local"],
    devices=[A100_IDS],
    consumers=[NS],
    power_policies=ALL_POWER_POLICIES,  # the cases use every power policy,
    conflict_policies=("Block", "Resolve"),  # and Resolve
)
sim = simulator_fixture(SIM, INVENTORY, GPUS, namespaces=(NS, OUTSIDER))


def _body(box: Sandbox, name: str, namespace: str = NS) -> dict[str, Any]:
    return get(box, "vmda", name, namespace)


def _vm(si: Any, name: str) -> Any:
    return find(si, vim.VirtualMachine, name)


def _power_state(si: Any, vm: Any) -> str:
    # One property, not `vm.runtime`: the simulator's full runtime object does not deserialize
    # in pyVmomi (an empty SharesInfo.Level enum), while the single path does.
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=vm)],
        propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.powerState"])],
    )
    return str(si.content.propertyCollector.RetrieveContents([spec])[0].propSet[0].val)


def _counts(sim: Simulator) -> dict[str, int]:
    counters: Any = sim.admin("GET", "/counters")
    return dict(counters["counts"])


def test_powered_off_vm_gets_devices_and_full_reservation_in_one_reconfigure(
    operator: Sandbox, sim: Simulator
) -> None:
    kubectl(operator, "wait", "--for=condition=Ready", f"hpp/{POLICY}", "--timeout=60s")
    sim.admin("POST", "/counters/reset")
    apply(operator, _vmda("off", "off-vm", "3b"))
    until(operator, NS, "off", "Reconciling", lambda c: c[0] != "")
    kubectl(operator, "wait", "--for=condition=Ready", "vmda/off", "-n", NS, "--timeout=60s")

    assert _counts(sim).get("ReconfigVM_Task") == 1
    body = _body(operator, "off")
    assert body["status"]["attached"] == "1/1"
    assert body["status"]["devices"][0]["attached"] is True
    assert body["status"]["previous"]["memoryReservationLockedToMax"] is False
    with connect(sim) as si:
        vm = _vm(si, "off-vm")
        [device] = passthrough(vm)
        assert device.backing.id == _address("3b")
        assert device.backing.deviceId == "20b5"  # hex, or power-on fails (govmomi #2248)
        assert vm.config.memoryReservationLockedToMax is True
        wait_task(vm.PowerOnVM_Task())  # the simulator enforces the reservation rule
        assert _power_state(si, vm) == "poweredOn"
    until(operator, NS, "off", "Ready", ("True", "Reconciled"))
    eventually(lambda: _body(operator, "off")["status"]["vm"]["powerState"] == "poweredOn")

    # Applying the same spec again: no vCenter write, no status write.
    sim.admin("POST", "/counters/reset")
    version = _body(operator, "off")["metadata"]["resourceVersion"]
    apply(operator, _vmda("off", "off-vm", "3b"))
    time.sleep(3)
    assert writes(sim) == {}
    assert _body(operator, "off")["metadata"]["resourceVersion"] == version


RACES = (  # (older, younger, bus, older VM, younger VM): names sort both ways
    ("zz-older", "aa-younger", "3e", "race-vm-1", "race-vm-2"),
    ("aa-older", "zz-younger", "3f", "race-vm-3", "race-vm-4"),
)
CONFLICTS = {  # assignment -> (VM, bus, FeatureConflict reasons, resolvable)
    "snap": ("snap-vm", "40", {"Snapshots"}, False),
    "ft": ("ft-vm", "41", {"FaultTolerance"}, False),
    "hotadd": ("hotadd-vm", "42", {"HotAdd"}, True),
    "nested": ("nested-vm", "43", {"NestedHV"}, True),
    "ha": ("ha-vm", "3b", {"HighAvailability", "DrsAutomation", "HotAdd"}, True),
}


def _gen2_adapter(sim: Simulator) -> list[dict[str, str]]:
    """The vmxnet3 adapter of gen2-vm by its label as vCenter reports it (real vCenter says
    "Network adapter 1"; the simulator names adapters differently)."""
    with connect(sim) as si:
        [nic] = [d for d in _vm(si, "gen2-vm").config.hardware.device
                 if isinstance(d, vim.vm.device.VirtualVmxnet3)]  # fmt: skip
        return [{"adapter": nic.deviceInfo.label}]


@pytest.fixture(scope="module")
def batch(operator: Sandbox, sim: Simulator) -> Sandbox:
    """Every other case applied at once; each test below checks its own."""
    for name, (vm, bus, _, _) in CONFLICTS.items():
        apply(operator, _vmda(name, vm, bus))
    apply(operator, _vmda("wait", "wait-vm", "3c"))
    apply(operator, _vmda("poweroff", "poweroff-vm", "3d", powerPolicy="PowerOff"))
    apply(operator, _vmda("shutdown", "shutdown-vm", "45", powerPolicy="ShutdownGuest"))
    dynamic = _vmda("dynamic", "dynamic-vm", None)
    dynamic["spec"]["devices"] = [
        {"name": "gpu0", "dynamic": {"vendorID": "10de", "deviceID": "20b5"}}
    ]
    apply(operator, dynamic)
    apply(
        operator,
        _vmda("gen2", "gen2-vm", None, networkDirectPath=_gen2_adapter(sim)),
    )
    apply(operator, _vmda("no-vm", "no-such-vm", "44"))
    missing = _vmda("no-policy", "off-vm", "44")
    missing["spec"]["policyRef"]["name"] = "no-such-policy"
    apply(operator, missing)
    # A namespace that is not a consumer names a device another assignment attached.
    apply(operator, _vmda("outsider", "off-vm", "3b", namespace=OUTSIDER, powerPolicy="PowerOff"))
    for older, _, bus, vm, _ in RACES:
        apply(operator, _vmda(older, vm, bus))
    time.sleep(1.1)  # creationTimestamp has whole seconds: make "older" unambiguous
    for _, younger, bus, _, vm in RACES:
        apply(operator, _vmda(younger, vm, bus))
    return operator


def test_powered_on_vm_waits_for_power_off_by_hand(batch: Sandbox, sim: Simulator) -> None:
    body = until(batch, NS, "wait", "PowerOffRequired", ("True", "VMPoweredOn"))
    assert condition(body, "Ready")[0] == "False"
    with connect(sim) as si:
        vm = _vm(si, "wait-vm")
        assert passthrough(vm) == []  # nothing changed while it runs
        wait_task(vm.PowerOffVM_Task())
        until(batch, NS, "wait", "Ready", ("True", "Reconciled"))
        assert [d.backing.id for d in passthrough(vm)] == [_address("3c")]
        assert _power_state(si, vm) == "poweredOff"  # the operator did not power it off: stays

        # Someone removes the device in the vSphere Client: put back within seconds, through
        # vCenter change notification, not by polling (docs/design.md, "vCenter access").
        [device] = passthrough(vm)
        remove = vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)
        wait_task(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[remove])))
        started = time.monotonic()
        eventually(lambda: [d.backing.id for d in passthrough(vm)] == [_address("3c")], timeout=5)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("name", "vm"), [("poweroff", "poweroff-vm"), ("shutdown", "shutdown-vm")])
def test_power_policies_restore_the_power_state(
    batch: Sandbox, sim: Simulator, name: str, vm: str
) -> None:
    body = until(batch, NS, name, "Ready", ("True", "Reconciled"))
    assert body["status"]["vm"]["powerState"] == "poweredOn"
    assert "power" not in body["status"]  # promise kept and forgotten
    with connect(sim) as si:
        found = _vm(si, vm)
        assert _power_state(si, found) == "poweredOn"
        assert [d.backing.id for d in passthrough(found)] == [
            body["status"]["devices"][0]["address"]
        ]


def test_dynamic_directpath_device_gets_its_allowed_device(batch: Sandbox, sim: Simulator) -> None:
    body = until(batch, NS, "dynamic", "Ready", ("True", "Reconciled"))
    assert body["status"]["devices"][0]["kind"] == "dynamic"
    with connect(sim) as si:
        [device] = passthrough(_vm(si, "dynamic-vm"))
        backing = device.backing
        assert isinstance(backing, vim.vm.device.VirtualPCIPassthrough.DynamicBackingInfo)
        assert [(a.vendorId, a.deviceId) for a in backing.allowedDevice] == [(0x10DE, 0x20B5)]


@pytest.mark.parametrize(("older", "younger", "bus", "older_vm", "younger_vm"), RACES)
def test_the_older_assignment_wins_the_device(
    batch: Sandbox, sim: Simulator, older: str, younger: str, bus: str, older_vm: str,
    younger_vm: str,
) -> None:  # fmt: skip
    until(batch, NS, older, "Ready", ("True", "Reconciled"))
    lost = until(
        batch, NS, younger, "DevicesUnavailable",
        lambda c: c[0] == "True" and c[1] in ("ClaimedByAssignment", "InUseByVM"),
    )  # fmt: skip
    assert condition(lost, "Ready")[0] == "False"
    with connect(sim) as si:
        assert [d.backing.id for d in passthrough(_vm(si, older_vm))] == [_address(bus)]
        assert passthrough(_vm(si, younger_vm)) == []


def test_a_vm_deleted_in_vcenter_just_releases_its_assignment(
    batch: Sandbox, sim: Simulator
) -> None:
    until(batch, NS, "zz-older", "Ready", ("True", "Reconciled"))
    with connect(sim) as si:
        wait_task(_vm(si, "race-vm-1").Destroy_Task())
    # A VM that is gone reads like one out of the namespace's scope (no probing for names).
    body = until(batch, NS, "zz-older", "Ready", ("False", "VMOutOfScope"))
    assert condition(body, "Forbidden") == ("True", "VMOutOfScope")
    kubectl(batch, "delete", "vmda", "zz-older", "-n", NS, "--timeout=30s")


def test_each_feature_conflict_blocks_then_resolve_clears_the_resolvable(
    batch: Sandbox, sim: Simulator
) -> None:
    for name, (_, _, reasons, _) in CONFLICTS.items():
        body = until(batch, NS, name, "FeatureConflict", lambda c: c[0] == "True")
        found = {c["feature"] for c in body["status"]["featureConflicts"]}
        assert found == reasons, name
        assert body["status"]["devices"][0]["attached"] is False
    for name, (vm, bus, _, _) in CONFLICTS.items():
        apply(batch, _vmda(name, vm, bus, conflictPolicy="Resolve"))
    for name, (_, _, reasons, resolvable) in CONFLICTS.items():
        if resolvable:
            until(batch, NS, name, "Ready", ("True", "Reconciled"))
        else:
            body = until(batch, NS, name, "Ready", lambda c, r=reasons: c[1] in r)
            assert condition(body, "FeatureConflict")[0] == "True"
    with connect(sim) as si:
        assert _vm(si, "hotadd-vm").config.cpuHotAddEnabled is False
        assert _vm(si, "hotadd-vm").config.memoryHotAddEnabled is False
        assert _vm(si, "nested-vm").config.nestedHVEnabled is False
        assert passthrough(_vm(si, "snap-vm")) == []
        assert passthrough(_vm(si, "ft-vm")) == []
        cluster = find(si, vim.ClusterComputeResource, "HA-Cluster")
        vm = _vm(si, "ha-vm")
        drs = [o for o in cluster.configurationEx.drsVmConfig if o.key == vm]
        das = [o for o in cluster.configurationEx.dasVmConfig if o.key == vm]
        assert [o.behavior for o in drs] == ["manual"]
        assert [o.dasSettings.restartPriority for o in das] == ["disabled"]


def test_deleting_the_assignment_restores_the_vm(batch: Sandbox, sim: Simulator) -> None:
    until(batch, NS, "ha", "Ready", ("True", "Reconciled"))
    kubectl(batch, "delete", "vmda", "ha", "-n", NS, "--timeout=60s")
    with connect(sim) as si:
        vm = _vm(si, "ha-vm")
        assert passthrough(vm) == []
        assert vm.config.cpuHotAddEnabled is True  # status.previous put back
        assert vm.config.memoryReservationLockedToMax is False
        cluster = find(si, vim.ClusterComputeResource, "HA-Cluster")
        assert [o for o in cluster.configurationEx.drsVmConfig if o.key == vm] == []
        assert [o for o in cluster.configurationEx.dasVmConfig if o.key == vm] == []


def test_gen2_keeps_vmotion_until_a_pci_device_is_added(batch: Sandbox, sim: Simulator) -> None:
    until(batch, NS, "gen2", "VMotionCompatible", ("True", "DirectPathGen2"))
    with connect(sim) as si:
        [nic] = [d for d in _vm(si, "gen2-vm").config.hardware.device
                 if isinstance(d, vim.vm.device.VirtualVmxnet3)]  # fmt: skip
        assert nic.uptCompatibilityEnabled is True
    apply(batch, _vmda("gen2", "gen2-vm", "44", networkDirectPath=_gen2_adapter(sim)))
    until(batch, NS, "gen2", "VMotionCompatible", ("False", "StaticPassthrough"))


@pytest.mark.parametrize(
    ("name", "namespace", "type_", "want"),
    [
        ("no-vm", NS, "Forbidden", ("True", "VMOutOfScope")),  # missing reads as out of scope
        ("no-policy", NS, "Forbidden", ("True", "PolicyNotFound")),
        ("outsider", OUTSIDER, "Forbidden", ("True", "NotAConsumer")),
    ],
)
def test_bad_input_gets_a_clear_condition(
    batch: Sandbox, name: str, namespace: str, type_: str, want: tuple[str, str]
) -> None:
    def check() -> dict[str, Any] | None:
        body = _body(batch, name, namespace)
        return body if condition(body, type_) == want else None

    body = eventually(check, timeout=TIMEOUT)
    assert condition(body, "Ready")[0] == "False"
    if type_ == "Forbidden":
        assert condition(body, "Stalled") == ("True", want[1])
        assert "vm" not in body["status"]  # a refused namespace learns nothing about the VM


def test_deleting_a_forbidden_assignment_leaves_the_vm_alone(
    batch: Sandbox, sim: Simulator
) -> None:
    def forbidden() -> bool:
        body = _body(batch, "outsider", OUTSIDER)
        return condition(body, "Forbidden") == ("True", "NotAConsumer")

    eventually(forbidden, timeout=TIMEOUT)
    kubectl(batch, "delete", "vmda", "outsider", "-n", OUTSIDER, "--timeout=30s")
    with connect(sim) as si:
        vm = _vm(si, "off-vm")
        assert [d.backing.id for d in passthrough(vm)] == [_address("3b")]
        assert _power_state(si, vm) == "poweredOn"
