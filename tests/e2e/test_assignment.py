"""VMDeviceAssignment through `kubectl apply` and the running operator (issue 4's checks).

One simulator with an inventory of its own (every VM shape a case needs, one A100 per case so
the cases don't compete) and one operator for the module. The first test runs alone, to count
vCenter calls; the others are applied together and checked one by one, so they converge
concurrently and show that one object's trouble does not hold up the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from tests.e2e.conftest import apply, get, kubectl, secret_for
from tests.sandbox.vsphere_helpers import connect, eventually, find, wait_task

from dpio_sandbox import vcsim
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

NS, OUTSIDER, POLICY, SECRET = "e2e-vmda", "e2e-outsider", "e2e-vmda-gpus", "vcsim-vmda"
TIMEOUT = 60.0
A100 = ('vendorId: "10de", deviceId: "20b5", classId: "0302", name: "GA100 [A100 PCIe 80GB]", '
        "vendorName: NVIDIA Corporation, enabled: true, active: true")  # fmt: skip
BUSES = ("3b", "3c", "3d", "3e", "3f", "40", "41", "42", "43", "44", "45", "46")


def _devices(buses: tuple[str, ...]) -> str:
    return "\n".join(f'              - {{address: "0000:{b}:00.0", {A100}}}' for b in buses)


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
{_devices(("3b",))}
    hosts:
      - name: esx-a.lab.local
        version: "8.0.2"
        deviceRebindWithoutReboot: true
        systemVendor: Cisco Systems Inc
        systemModel: UCSC-C240-M5SX
        gen2: {{supported: true}}
        pciDevices:
{_devices(BUSES)}
    vms:
      - {{name: off-vm, host: esx-a.lab.local, memoryMB: 8192}}
      - {{name: wait-vm, host: esx-a.lab.local, powerState: poweredOn, memoryMB: 4096}}
      - {{name: poweroff-vm, host: esx-a.lab.local, powerState: poweredOn, memoryMB: 4096}}
      - {{name: race-vm-1, host: esx-a.lab.local, memoryMB: 2048}}
      - {{name: race-vm-2, host: esx-a.lab.local, memoryMB: 2048}}
      - {{name: race-vm-3, host: esx-a.lab.local, memoryMB: 2048}}
      - {{name: race-vm-4, host: esx-a.lab.local, memoryMB: 2048}}
      - {{name: snap-vm, host: esx-a.lab.local, memoryMB: 2048, snapshots: 2}}
      - {{name: ft-vm, host: esx-a.lab.local, memoryMB: 2048, ft: primary}}
      - {{name: hotadd-vm, host: esx-a.lab.local, memoryMB: 2048, cpuHotAdd: true,
          memoryHotAdd: true}}
      - {{name: nested-vm, host: esx-a.lab.local, memoryMB: 2048, nestedHV: true}}
      - {{name: ha-vm, host: esx-ha-01.lab.local, memoryMB: 2048, cpuHotAdd: true}}
      - {{name: shutdown-vm, host: esx-a.lab.local, powerState: poweredOn, memoryMB: 4096}}
      - {{name: dynamic-vm, host: esx-a.lab.local, memoryMB: 4096}}
      - {{name: gen2-vm, host: esx-a.lab.local, memoryMB: 4096,
          nics: [{{type: vmxnet3, network: vmfex-gen2}}]}}
"""


def _address(bus: str) -> str:
    return f"0000:{bus}:00.0"


def _vmda(name: str, vm: str, bus: str | None, namespace: str = NS, **spec: Any) -> dict[str, Any]:
    devices = [{"name": "gpu0", "pci": {"address": _address(bus)}}] if bus else []
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "VMDeviceAssignment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"policyRef": {"name": POLICY}, "vm": {"name": vm}, "devices": devices, **spec},
    }


def _policy() -> dict[str, Any]:
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "HostPassthroughPolicy",
        "metadata": {"name": POLICY},
        "spec": {
            "vcenter": {"secretRef": {"name": SECRET}},
            "hosts": {"names": ["esx-a.lab.local", "esx-ha-01.lab.local"]},
            "devices": [{"vendorID": "10de", "deviceID": "20b5"}],
            "consumers": {"namespaces": [NS]},
        },
    }


@pytest.fixture(scope="module")
def sim(operator: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    state = tmp_path_factory.mktemp("vcsim-vmda")
    inventory = state / "inventory.yaml"
    inventory.write_text(INVENTORY)
    simulator = vcsim.start(state, name="vcsim-vmda", inventory=Path(inventory))
    try:
        secret_for(operator, simulator, SECRET)
        for namespace in (NS, OUTSIDER):
            apply(operator, {"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": namespace}})  # fmt: skip
        apply(operator, _policy())
        yield simulator
    finally:
        vcsim.stop(state, "vcsim-vmda")


def _body(box: Sandbox, name: str, namespace: str = NS) -> dict[str, Any]:
    return get(box, "vmda", name, namespace)


def _condition(body: dict[str, Any], type_: str) -> tuple[str, str]:
    found = [c for c in body.get("status", {}).get("conditions", []) if c["type"] == type_]
    return (found[0]["status"], found[0]["reason"]) if found else ("", "")


def _until(
    box: Sandbox, name: str, type_: str, want: tuple[str, str] | Callable[[tuple[str, str]], bool]
) -> dict[str, Any]:
    """The object once condition `type_` is `want` (status, reason), for the current generation."""

    last: list[Any] = [None]

    def check() -> dict[str, Any] | None:
        body = last[0] = _body(box, name)
        if body.get("status", {}).get("observedGeneration") != body["metadata"]["generation"]:
            return None
        got = _condition(body, type_)
        return body if (want(got) if callable(want) else got == want) else None

    try:
        return eventually(check, timeout=TIMEOUT)
    except AssertionError:
        status = (last[0] or {}).get("status", {})
        raise AssertionError(f"{name}: {type_} never {want}; status: {status}") from None


def _vm(si: Any, name: str) -> Any:
    return find(si, vim.VirtualMachine, name)


def _pci(vm: Any) -> list[Any]:
    return [
        d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualPCIPassthrough)
    ]


def _power_state(si: Any, vm: Any) -> str:
    # One property, not `vm.runtime`: the simulator's full runtime object does not deserialize
    # in pyVmomi (an empty SharesInfo.Level enum), while the single path does.
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=vm)],
        propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.powerState"])],
    )
    return str(si.content.propertyCollector.RetrieveContents([spec])[0].propSet[0].val)


WRITES = frozenset(
    {"ReconfigVM_Task", "PowerOnVM_Task", "PowerOffVM_Task", "ReconfigureComputeResource_Task"}
)


def _counts(sim: Simulator) -> dict[str, int]:
    counters: Any = sim.admin("GET", "/counters")
    return dict(counters["counts"])


def test_powered_off_vm_gets_devices_and_full_reservation_in_one_reconfigure(
    operator: Sandbox, sim: Simulator
) -> None:
    kubectl(operator, "wait", "--for=condition=Ready", f"hpp/{POLICY}", "--timeout=60s")
    sim.admin("POST", "/counters/reset")
    apply(operator, _vmda("off", "off-vm", "3b"))
    _until(operator, "off", "Reconciling", lambda c: c[0] != "")
    kubectl(operator, "wait", "--for=condition=Ready", "vmda/off", "-n", NS, "--timeout=60s")

    assert _counts(sim).get("ReconfigVM_Task") == 1
    body = _body(operator, "off")
    assert body["status"]["attached"] == "1/1"
    assert body["status"]["devices"][0]["attached"] is True
    assert body["status"]["previous"]["memoryReservationLockedToMax"] is False
    with connect(sim) as si:
        vm = _vm(si, "off-vm")
        [device] = _pci(vm)
        assert device.backing.id == _address("3b")
        assert device.backing.deviceId == "20b5"  # hex, or power-on fails (govmomi #2248)
        assert vm.config.memoryReservationLockedToMax is True
        wait_task(vm.PowerOnVM_Task())  # the simulator enforces the reservation rule
        assert _power_state(si, vm) == "poweredOn"
    _until(operator, "off", "Ready", ("True", "Reconciled"))
    eventually(lambda: _body(operator, "off")["status"]["vm"]["powerState"] == "poweredOn")

    # Applying the same spec again: no vCenter write, no status write.
    sim.admin("POST", "/counters/reset")
    version = _body(operator, "off")["metadata"]["resourceVersion"]
    apply(operator, _vmda("off", "off-vm", "3b"))
    time.sleep(3)
    writes = {
        "ReconfigVM_Task",
        "PowerOnVM_Task",
        "PowerOffVM_Task",
        "ReconfigureComputeResource_Task",
    }
    assert {m: n for m, n in _counts(sim).items() if m in writes} == {}
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
    body = _until(batch, "wait", "PowerOffRequired", ("True", "VMPoweredOn"))
    assert _condition(body, "Ready")[0] == "False"
    with connect(sim) as si:
        vm = _vm(si, "wait-vm")
        assert _pci(vm) == []  # nothing changed while it runs
        wait_task(vm.PowerOffVM_Task())
        _until(batch, "wait", "Ready", ("True", "Reconciled"))
        assert [d.backing.id for d in _pci(vm)] == [_address("3c")]
        assert _power_state(si, vm) == "poweredOff"  # the operator did not power it off: stays

        # Someone removes the device in the vSphere Client: put back within seconds, through
        # vCenter change notification (DESIGN.md §3.2.10, §7), not by polling.
        [device] = _pci(vm)
        remove = vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)
        wait_task(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[remove])))
        started = time.monotonic()
        eventually(lambda: [d.backing.id for d in _pci(vm)] == [_address("3c")], timeout=5)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("name", "vm"), [("poweroff", "poweroff-vm"), ("shutdown", "shutdown-vm")])
def test_power_policies_restore_the_power_state(
    batch: Sandbox, sim: Simulator, name: str, vm: str
) -> None:
    body = _until(batch, name, "Ready", ("True", "Reconciled"))
    assert body["status"]["vm"]["powerState"] == "poweredOn"
    assert "power" not in body["status"]  # promise kept and forgotten
    with connect(sim) as si:
        found = _vm(si, vm)
        assert _power_state(si, found) == "poweredOn"
        assert [d.backing.id for d in _pci(found)] == [body["status"]["devices"][0]["address"]]


def test_dynamic_directpath_device_gets_its_allowed_device(batch: Sandbox, sim: Simulator) -> None:
    body = _until(batch, "dynamic", "Ready", ("True", "Reconciled"))
    assert body["status"]["devices"][0]["kind"] == "dynamic"
    with connect(sim) as si:
        [device] = _pci(_vm(si, "dynamic-vm"))
        backing = device.backing
        assert isinstance(backing, vim.vm.device.VirtualPCIPassthrough.DynamicBackingInfo)
        assert [(a.vendorId, a.deviceId) for a in backing.allowedDevice] == [(0x10DE, 0x20B5)]


@pytest.mark.parametrize(("older", "younger", "bus", "older_vm", "younger_vm"), RACES)
def test_the_older_assignment_wins_the_device(
    batch: Sandbox, sim: Simulator, older: str, younger: str, bus: str, older_vm: str,
    younger_vm: str,
) -> None:  # fmt: skip
    _until(batch, older, "Ready", ("True", "Reconciled"))
    lost = _until(
        batch, younger, "DevicesUnavailable",
        lambda c: c[0] == "True" and c[1] in ("ClaimedByAssignment", "InUseByVM"),
    )  # fmt: skip
    assert _condition(lost, "Ready")[0] == "False"
    with connect(sim) as si:
        assert [d.backing.id for d in _pci(_vm(si, older_vm))] == [_address(bus)]
        assert _pci(_vm(si, younger_vm)) == []


def test_a_vm_deleted_in_vcenter_just_releases_its_assignment(
    batch: Sandbox, sim: Simulator
) -> None:
    _until(batch, "zz-older", "Ready", ("True", "Reconciled"))
    with connect(sim) as si:
        wait_task(_vm(si, "race-vm-1").Destroy_Task())
    _until(batch, "zz-older", "Ready", ("False", "VMNotFound"))
    kubectl(batch, "delete", "vmda", "zz-older", "-n", NS, "--timeout=30s")


def test_each_feature_conflict_blocks_then_resolve_clears_the_resolvable(
    batch: Sandbox, sim: Simulator
) -> None:
    for name, (_, _, reasons, _) in CONFLICTS.items():
        body = _until(batch, name, "FeatureConflict", lambda c: c[0] == "True")
        found = {c["feature"] for c in body["status"]["featureConflicts"]}
        assert found == reasons, name
        assert body["status"]["devices"][0]["attached"] is False
    for name, (vm, bus, _, _) in CONFLICTS.items():
        apply(batch, _vmda(name, vm, bus, conflictPolicy="Resolve"))
    for name, (_, _, reasons, resolvable) in CONFLICTS.items():
        if resolvable:
            _until(batch, name, "Ready", ("True", "Reconciled"))
        else:
            body = _until(batch, name, "Ready", lambda c, r=reasons: c[1] in r)
            assert _condition(body, "FeatureConflict")[0] == "True"
    with connect(sim) as si:
        assert _vm(si, "hotadd-vm").config.cpuHotAddEnabled is False
        assert _vm(si, "hotadd-vm").config.memoryHotAddEnabled is False
        assert _vm(si, "nested-vm").config.nestedHVEnabled is False
        assert _pci(_vm(si, "snap-vm")) == []
        assert _pci(_vm(si, "ft-vm")) == []
        cluster = find(si, vim.ClusterComputeResource, "HA-Cluster")
        vm = _vm(si, "ha-vm")
        drs = [o for o in cluster.configurationEx.drsVmConfig if o.key == vm]
        das = [o for o in cluster.configurationEx.dasVmConfig if o.key == vm]
        assert [o.behavior for o in drs] == ["manual"]
        assert [o.dasSettings.restartPriority for o in das] == ["disabled"]


def test_deleting_the_assignment_restores_the_vm(batch: Sandbox, sim: Simulator) -> None:
    _until(batch, "ha", "Ready", ("True", "Reconciled"))
    kubectl(batch, "delete", "vmda", "ha", "-n", NS, "--timeout=60s")
    with connect(sim) as si:
        vm = _vm(si, "ha-vm")
        assert _pci(vm) == []
        assert vm.config.cpuHotAddEnabled is True  # status.previous put back
        assert vm.config.memoryReservationLockedToMax is False
        cluster = find(si, vim.ClusterComputeResource, "HA-Cluster")
        assert [o for o in cluster.configurationEx.drsVmConfig if o.key == vm] == []
        assert [o for o in cluster.configurationEx.dasVmConfig if o.key == vm] == []


def test_gen2_keeps_vmotion_until_a_pci_device_is_added(batch: Sandbox, sim: Simulator) -> None:
    _until(batch, "gen2", "VMotionCompatible", ("True", "DirectPathGen2"))
    with connect(sim) as si:
        [nic] = [d for d in _vm(si, "gen2-vm").config.hardware.device
                 if isinstance(d, vim.vm.device.VirtualVmxnet3)]  # fmt: skip
        assert nic.uptCompatibilityEnabled is True
    apply(batch, _vmda("gen2", "gen2-vm", "44", networkDirectPath=_gen2_adapter(sim)))
    _until(batch, "gen2", "VMotionCompatible", ("False", "StaticPassthrough"))


@pytest.mark.parametrize(
    ("name", "namespace", "type_", "want"),
    [
        ("no-vm", NS, "Ready", ("False", "VMNotFound")),
        ("no-policy", NS, "Forbidden", ("True", "PolicyNotFound")),
        ("outsider", OUTSIDER, "Forbidden", ("True", "NotAConsumer")),
    ],
)
def test_bad_input_gets_a_clear_condition(
    batch: Sandbox, name: str, namespace: str, type_: str, want: tuple[str, str]
) -> None:
    def check() -> dict[str, Any] | None:
        body = _body(batch, name, namespace)
        return body if _condition(body, type_) == want else None

    body = eventually(check, timeout=TIMEOUT)
    assert _condition(body, "Ready")[0] == "False"
    if type_ == "Forbidden":
        assert _condition(body, "Stalled") == ("True", want[1])
        assert "vm" not in body["status"]  # a non-consumer learns nothing about the VM


def test_deleting_a_forbidden_assignment_leaves_the_vm_alone(
    batch: Sandbox, sim: Simulator
) -> None:
    def forbidden() -> bool:
        body = _body(batch, "outsider", OUTSIDER)
        return _condition(body, "Forbidden") == ("True", "NotAConsumer")

    eventually(forbidden, timeout=TIMEOUT)
    kubectl(batch, "delete", "vmda", "outsider", "-n", OUTSIDER, "--timeout=30s")
    with connect(sim) as si:
        vm = _vm(si, "off-vm")
        assert [d.backing.id for d in _pci(vm)] == [_address("3b")]
        assert _power_state(si, vm) == "poweredOn"
