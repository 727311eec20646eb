"""The VM side of the vSphere adapter against dpio-vcsim through real SOAP: observe (every field
the inventory sets, the call budget, lookups of moved, renamed and missing VMs), reconfigure
(static + dynamic devices with the reservation lock, proven by a successful power-on; removal;
Gen2 NIC edit; stale changeVersion), cluster overrides, power actions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pyVmomi import vim
from tests.integration.vsphere.helpers import connect, find, wait_task

from dpio.planner.vm.changes import NicEdit, ReconfigureCluster, ReconfigVM
from dpio.planner.vm.conflicts import DasOverrideChange, DrsOverrideChange
from dpio.planner.vm.devices import DeviceAdd, DeviceRemove
from dpio.planner.vm.observed import DynamicBacking, ObservedVM, StaticBacking, VMObservation
from dpio.planner.vm.power import PowerAction
from dpio.vsphere import errors
from dpio.vsphere.credentials import from_secret_data
from dpio.vsphere.session import VCenterClient
from dpio.vsphere.vm.adapter import VMAdapter
from dpio.vsphere.watch import Change, Watcher
from dpio_sandbox import vcsim

pytestmark = pytest.mark.sandbox

SimulatorFactory = Callable[..., vcsim.Simulator]
GPU01, GPU02, GPU03 = "esx-gpu-01.lab.local", "esx-gpu-02.lab.local", "esx-gpu-03.lab.local"
A100, T4, X710 = "0000:3b:00.0", "0000:af:00.0", "0000:18:00.1"

# One host with an active A100 (label a100) and an active Intel X710 (vendor 8086: negative on
# the wire); a clean VM and a VM-FEX VM, both powered off.
DEVICES_INVENTORY = """
datacenters:
  - name: DC1
    dvs:
      - name: vmfex-dvs
        portgroups:
          - {name: vmfex-gen2, vmDirectPathGen2Allowed: true}
    clusters:
      - name: GPU-Cluster
        ha: {enabled: false}
        drs: {enabled: true, automationLevel: manual}
        hosts:
          - name: esx-a.lab.local
            version: "8.0.2"
            deviceRebindWithoutReboot: true
            gen2: {supported: true}
            pciDevices:
              - {address: "0000:3b:00.0", vendorId: "10de", deviceId: "20b5", classId: "0302",
                 name: "GA100 [A100 PCIe 80GB]", vendorName: "NVIDIA Corporation",
                 enabled: true, active: true, hardwareLabel: a100}
              - {address: "0000:18:00.1", vendorId: "8086", deviceId: "1572", classId: "0200",
                 name: "Ethernet Controller X710 for 10GbE SFP+", vendorName: "Intel(R)",
                 enabled: true, active: true}
    vms:
      - {name: trainer, host: esx-a.lab.local, memoryMB: 4096}
      - {name: fex, host: esx-a.lab.local, memoryMB: 4096,
         nics: [{type: vmxnet3, network: vmfex-gen2}]}
"""


def _client(sim: vcsim.Simulator) -> VCenterClient:
    data = {
        "server": sim.sdk_url,
        "username": sim.username,
        "password": sim.password,
        "caBundle": sim.ca_file.read_text(),
    }
    return VCenterClient(from_secret_data(data), max_workers=2, timeout=15)


def _counts(sim: vcsim.Simulator) -> dict[str, int]:
    answer = sim.admin("GET", "/counters")
    assert isinstance(answer, dict)
    return dict(answer["counts"])


@pytest.fixture(scope="module")
def default_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[vcsim.Simulator]:
    """The default inventory, for tests that only read."""
    state = tmp_path_factory.mktemp("vm-adapter")
    try:
        yield vcsim.start(state, name="vcsim-vm-read")
    finally:
        vcsim.stop(state, "vcsim-vm-read")


def _adapter(sim: vcsim.Simulator) -> Iterator[VMAdapter]:
    client = _client(sim)
    try:
        yield VMAdapter(client, task_timeout=30)
    finally:
        client.close()


@pytest.fixture
def reader(default_sim: vcsim.Simulator) -> Iterator[VMAdapter]:
    yield from _adapter(default_sim)


@pytest.fixture
def sim(vcsim_factory: SimulatorFactory) -> vcsim.Simulator:
    return vcsim_factory()


@pytest.fixture
def adapter(sim: vcsim.Simulator) -> Iterator[VMAdapter]:
    yield from _adapter(sim)


@pytest.fixture
def devices_sim(vcsim_factory: SimulatorFactory) -> vcsim.Simulator:
    return vcsim_factory(DEVICES_INVENTORY)


@pytest.fixture
def devices_adapter(devices_sim: vcsim.Simulator) -> Iterator[VMAdapter]:
    yield from _adapter(devices_sim)


def _observe(adapter: VMAdapter, name: str = "", uuid: str = "") -> VMObservation:
    return asyncio.run(adapter.observe_vm(name=name, instance_uuid=uuid))


def _vm(adapter: VMAdapter, name: str) -> ObservedVM:
    found = _observe(adapter, name).vm
    assert found is not None, name
    return found


# --- observe ----------------------------------------------------------------------------------

INVENTORY_CASES: dict[str, dict[str, Any]] = {
    "ml-trainer-01": {
        "host": GPU01, "power_state": "poweredOff", "memory_mb": 16384,
        "memory_reservation_mb": 0, "memory_reservation_locked_to_max": False,
        "hardware_version": "vmx-19", "host_version": "8.0.2", "snapshot_count": 0,
        "ft_configured": False, "pci_devices": (),
        # Where tenancy scopes it: inventory paths as `govc ls` prints them.
        "folder": "/DC1/vm/ml-team", "resource_pool": "/DC1/host/GPU-Cluster/Resources/ml-team",
    },
    "ml-inference-01": {
        "host": GPU01, "power_state": "poweredOn", "memory_mb": 8192,
        "memory_reservation_mb": 8192, "memory_reservation_locked_to_max": True,
    },
    "snap-vm-01": {"host": GPU02, "snapshot_count": 2, "host_version": "7.0.3",
                   "folder": "/DC1/vm/lab/conflicts",  # nested folder, the cluster's root pool
                   "resource_pool": "/DC1/host/GPU-Cluster/Resources"},
    "hotadd-vm-01": {"cpu_hot_add_enabled": True, "memory_hot_add_enabled": True},
    "nested-vm-01": {"nested_hv_enabled": True, "cpu_hot_add_enabled": False},
    "ft-vm-01": {"host": GPU03, "ft_configured": True, "ft_role": 1, "power_state": "poweredOn"},
    "legacy-vm-01": {"hardware_version": "vmx-14", "host_version": "6.7.0", "folder": "/DC1/vm",
                     "resource_pool": "/DC1/host/Compute-Cluster/Resources"},
    "standalone-vm-01": {"host": "esx-standalone-01.lab.local", "cluster": None,
                         "folder": "/DC1/vm",
                         "resource_pool": "/DC1/host/esx-standalone-01.lab.local/Resources"},
}  # fmt: skip


@pytest.mark.parametrize(("name", "expected"), INVENTORY_CASES.items(), ids=INVENTORY_CASES)
def test_observe_vm_fields(reader: VMAdapter, name: str, expected: dict[str, Any]) -> None:
    vm = _vm(reader, name)
    assert vm.name == name
    assert vm.moref.startswith("vm-")
    assert vm.host_moref.startswith("host-")
    assert vm.change_version
    assert {field: getattr(vm, field) for field in expected} == expected


def test_observe_static_device_and_who_holds_it(reader: VMAdapter) -> None:
    """ml-inference-01 holds the A100 on esx-gpu-01: its backing as read, and the other VMs of
    the host see it in attached_to_vms (the VM itself does not)."""
    found = _observe(reader, "ml-inference-01")
    assert found.vm is not None
    (device,) = found.vm.pci_devices
    assert device.key > 0
    assert isinstance(device.backing, StaticBacking)
    assert (device.backing.id, device.backing.device_id, device.backing.vendor_id) == (
        A100, "20b5", 0x10DE,
    )  # fmt: skip
    assert device.backing.system_id == found.vm.host_system_id != ""
    assert dict(found.attached_to_vms) == {}
    neighbour = _observe(reader, "ml-trainer-01")
    assert dict(neighbour.attached_to_vms) == {A100: ("ml-inference-01",)}


@pytest.mark.parametrize(
    ("name", "pci", "dynamic", "limit"),
    [
        # esx-gpu-01 (8.0.2): the active A100, also offered as Dynamic DirectPath (label a100).
        ("ml-trainer-01", [(A100, 0x10DE, 0x20B5)], [(0x10DE, 0x20B5, "a100")], 128),
        # esx-gpu-02 (7.0.3): the T4 is enabled but not active yet, so nothing is offered.
        ("snap-vm-01", [], [], 16),
        # esx-legacy-01 (6.7): nothing active; 16 devices per VM.
        ("legacy-vm-01", [], [], 16),
    ],
)
def test_observe_config_target_and_limit(
    reader: VMAdapter,
    name: str,
    pci: list[tuple[str, int, int]],
    dynamic: list[tuple[int, int, str]],
    limit: int,
) -> None:
    found = _observe(reader, name)
    assert found.vm is not None
    target = found.config_target
    assert [(p.id, p.vendor_id, p.device_id) for p in target.pci_passthrough] == pci
    assert all(p.system_id == found.vm.host_system_id for p in target.pci_passthrough)
    got = [(d.vendor_id, d.device_id, d.custom_label) for d in target.dynamic_passthrough]
    assert got == dynamic
    assert found.max_passthrough_devices == limit


@pytest.mark.parametrize(
    ("name", "cluster"),
    [
        ("ml-trainer-01", ("GPU-Cluster", True, True, "fullyAutomated", None, None, None)),
        ("batch-01", ("GPU-Cluster", True, True, "fullyAutomated", "disabled", True, "manual")),
        ("legacy-vm-01", ("Compute-Cluster", False, True, "partiallyAutomated", None, None, None)),
    ],
)
def test_observe_cluster_and_overrides(
    reader: VMAdapter, name: str, cluster: tuple[Any, ...]
) -> None:
    found = _vm(reader, name).cluster
    assert found is not None
    assert found.moref.startswith("domain-c")
    assert (
        found.name,
        found.ha_enabled,
        found.drs_enabled,
        found.drs_automation,
        found.vm_das_restart_priority,
        found.vm_drs_enabled,
        found.vm_drs_behavior,
    ) == cluster


@pytest.mark.parametrize(
    ("name", "supported", "reasons", "nic"),
    [
        ("vmfex-std-01", True, (), ("vmxnet3", False, "vmfex-standard", False)),
        ("ml-trainer-01", True, (), ("vmxnet3", False, "VM Network", False)),
        (
            "e1000-vm-01",
            False,
            ("hostNptIncompatibleProduct", "VMDirectPath Gen2 is deprecated in vSphere 8.0"),
            ("e1000", False, "VM Network", False),
        ),
        ("snap-vm-01", False, ("hostNptIncompatibleHardware",), None),
    ],
)
def test_observe_gen2_capability_and_nics(
    reader: VMAdapter,
    name: str,
    supported: bool,
    reasons: tuple[str, ...],
    nic: tuple[Any, ...] | None,
) -> None:
    found = _observe(reader, name)
    assert found.vm is not None
    assert (found.gen2_supported, found.gen2_unsupported_reasons) == (supported, reasons)
    nics = [
        (n.kind, n.upt_compatibility_enabled, n.portgroup, n.gen2_allowed) for n in found.vm.nics
    ]
    assert nics == ([nic] if nic else [])


def test_observe_by_instance_uuid(reader: VMAdapter) -> None:
    by_name = _vm(reader, "ml-trainer-01")
    by_uuid = _observe(reader, uuid=by_name.instance_uuid.upper()).vm
    assert by_uuid is not None
    assert (by_uuid.moref, by_uuid.name) == (by_name.moref, "ml-trainer-01")


@pytest.mark.parametrize(
    ("name", "uuid"), [("no-such-vm", ""), ("", "00000000-0000-0000-0000-000000000000")]
)
def test_observe_missing_vm(reader: VMAdapter, name: str, uuid: str) -> None:
    found = _observe(reader, name, uuid)
    assert found.vm is None
    assert found.config_target.pci_passthrough == ()


def test_observe_needs_exactly_one_identity(reader: VMAdapter) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        _observe(reader, "ml-trainer-01", "5029")


def _raw(sim: vcsim.Simulator, action: Callable[[Any, Any], Any], vm_name: str) -> None:
    with connect(sim) as si:
        action(si, find(si, vim.VirtualMachine, vm_name))


def test_call_budget(default_sim: vcsim.Simulator, reader: VMAdapter) -> None:
    """At most 3 calls per converged VM (docs/design.md, "vCenter access"). Converged here: ONE
    read. The name lookup is one read for all VMs, shared; QueryConfigOption is cached per ESXi
    and hardware version, and QueryConfigTarget per host while its passthrough state stays the
    same."""
    reader.client.connection()
    default_sim.admin("POST", "/counters/reset")
    _observe(reader, "ml-trainer-01")
    assert _counts(default_sim) == {
        "CreateContainerView": 1,  # the lookup view, kept
        "RetrievePropertiesEx": 2,  # lookup of all VMs + the VM with host, cluster, neighbours
        "QueryConfigTarget": 1,
        "QueryConfigOption": 1,
    }
    new_host = {"RetrievePropertiesEx": 1, "QueryConfigTarget": 1, "QueryConfigOption": 1}
    for name, expected in [
        ("ml-trainer-01", {"RetrievePropertiesEx": 1}),
        ("web-01", {"RetrievePropertiesEx": 1}),  # same host, same versions: all cached
        ("snap-vm-01", new_host),  # another host, on ESXi 7.0.3: its own target and limit
        ("snap-vm-01", {"RetrievePropertiesEx": 1}),
        ("hotadd-vm-01", {"RetrievePropertiesEx": 1}),
    ]:
        default_sim.admin("POST", "/counters/reset")
        _observe(reader, name)
        assert _counts(default_sim) == expected, name
        assert sum(expected.values()) <= 3


def test_reads_at_the_same_time_share_a_call(sim: vcsim.Simulator) -> None:
    """Six VMs on three hosts observed at once (as a converging fleet's reconciles do) cost
    fewer reads than six, and each answer is its own VM's, with its own host's neighbours."""
    client = VCenterClient(
        from_secret_data(
            {"server": sim.sdk_url, "username": sim.username, "password": sim.password,
             "caBundle": sim.ca_file.read_text()}
        ),
        max_workers=6,
        timeout=15,
    )  # fmt: skip
    adapter = VMAdapter(client, task_timeout=30)
    names = ["ml-trainer-01", "web-01", "snap-vm-01", "hotadd-vm-01", "nested-vm-01", "ft-vm-01"]
    try:
        alone = {name: _observe(adapter, name) for name in names}  # warms the caches
        sim.admin("PUT", "/latency", {"ms": 200})
        sim.admin("POST", "/counters/reset")

        async def together() -> list[VMObservation]:
            return list(await asyncio.gather(*(adapter.observe_vm(name=n) for n in names)))

        answers = asyncio.run(together())
        reads = _counts(sim)["RetrievePropertiesEx"]
    finally:
        sim.admin("PUT", "/latency", {"ms": 0})
        client.close()
    print(f"{len(names)} VMs observed at once: {reads} RetrievePropertiesEx")
    assert reads < len(names)
    assert any(alone[n].attached_to_vms for n in names)  # some see devices their neighbours hold
    for name, answer in zip(names, answers, strict=True):
        before = alone[name].vm
        assert answer.vm is not None
        assert before is not None
        assert (answer.vm.name, answer.vm.host) == (name, before.host)
        assert dict(answer.attached_to_vms) == dict(alone[name].attached_to_vms)


def test_vms_named_ahead_are_read_with_the_first_and_answer_as_read_alone(
    sim: vcsim.Simulator, adapter: VMAdapter
) -> None:
    """The first observation names the next five VMs (as a restart's queue does): one read for
    all six; each later observation takes its own answer, the same as read alone. A change the
    watch reports to a VM drops what was read ahead for it and for its host's VMs."""
    names = ["ml-trainer-01", "web-01", "snap-vm-01", "hotadd-vm-01", "nested-vm-01", "ft-vm-01"]
    alone = {name: _observe(adapter, name) for name in names}  # warms the caches
    sim.admin("POST", "/counters/reset")
    ahead = [(n, "") for n in names[1:]]
    first = asyncio.run(adapter.observe_vm(name=names[0], ahead=ahead))
    rest = {name: _observe(adapter, name) for name in names[1:]}
    assert _counts(sim).get("RetrievePropertiesEx") == 1
    for name, answer in {names[0]: first, **rest}.items():
        assert answer == alone[name], name

    asyncio.run(adapter.observe_vm(name=names[0], ahead=ahead))
    trainer = alone["ml-trainer-01"].vm
    assert trainer is not None
    change = Change("VirtualMachine", trainer.moref, "modify", frozenset({"runtime.powerState"}))
    adapter.changed([change])
    sim.admin("POST", "/counters/reset")
    for name in names[1:]:
        _observe(adapter, name)
    hosts = {n: vm.host for n in names[1:] if (vm := alone[n].vm) is not None}
    neighbours = [n for n, host in hosts.items() if host == trainer.host]
    assert neighbours  # the change must drop some answers and keep others
    assert len(neighbours) < len(hosts)
    assert _counts(sim).get("RetrievePropertiesEx") == len(neighbours)


def test_an_own_write_drops_what_was_read_ahead_for_that_vm(
    sim: vcsim.Simulator, adapter: VMAdapter
) -> None:
    """No watch runs here: only the adapter's own drop before the write keeps the next
    observation of the VM from taking the answer read before it."""
    before = _vm(adapter, "snap-vm-01")
    assert before.memory_reservation_locked_to_max is False
    asyncio.run(adapter.observe_vm(name="web-01", ahead=[("snap-vm-01", "")]))
    change = ReconfigVM(before.moref, before.change_version, memory_reservation_locked_to_max=True)
    asyncio.run(adapter.reconfigure(change))
    assert _vm(adapter, "snap-vm-01").memory_reservation_locked_to_max is True


def test_config_target_follows_the_hosts_passthrough_state(
    sim: vcsim.Simulator, adapter: VMAdapter
) -> None:
    """Enabling the T4 with applyNow on a host that rebinds without reboot makes it active: the
    next observe asks QueryConfigTarget again and offers it."""
    before = _observe(adapter, "ml-trainer-01")
    assert [p.id for p in before.config_target.pci_passthrough] == [A100]

    def enable_t4(si: Any, vm: Any) -> None:
        config: Any = vim.host.PciPassthruConfig  # untyped constructor
        system = find(si, vim.HostSystem, GPU01).configManager.pciPassthruSystem
        system.UpdatePassthruConfig([config(id=T4, passthruEnabled=True, applyNow=True)])

    _raw(sim, enable_t4, "ml-trainer-01")
    sim.admin("POST", "/counters/reset")
    after = _observe(adapter, "ml-trainer-01")
    assert sorted(p.id for p in after.config_target.pci_passthrough) == [A100, T4]
    assert _counts(sim) == {"RetrievePropertiesEx": 1, "QueryConfigTarget": 1}


def test_observe_after_session_expiry(default_sim: vcsim.Simulator, reader: VMAdapter) -> None:
    """The kept lookup view belongs to the session: after a re-login a new one is made."""
    first = _vm(reader, "ml-trainer-01")
    default_sim.admin("POST", "/sessions/expire")
    again = _vm(reader, "snap-vm-01")  # in the index: read by moref in the new session
    assert reader.client.logins == 2
    assert again.snapshot_count == 2
    default_sim.admin("POST", "/counters/reset")
    assert _observe(reader, "no-such-vm").vm is None  # a lookup read: needs the view
    assert _counts(default_sim) == {"CreateContainerView": 1, "RetrievePropertiesEx": 1}
    assert _vm(reader, "ml-trainer-01").moref == first.moref


# --- lookups of VMs changed behind the index ---------------------------------------------------


def test_moved_renamed_and_deleted_vms(sim: vcsim.Simulator, adapter: VMAdapter) -> None:
    assert _vm(adapter, "ml-trainer-01").host == GPU01
    assert _vm(adapter, "web-01").host == GPU01

    def migrate(si: Any, vm: Any) -> None:
        host = find(si, vim.HostSystem, GPU03)
        spec: Any = vim.vm.RelocateSpec  # untyped constructor
        wait_task(vm.RelocateVM_Task(spec=spec(host=host)))

    _raw(sim, migrate, "ml-trainer-01")
    sim.admin("POST", "/counters/reset")
    moved = _observe(adapter, "ml-trainer-01")
    assert moved.vm is not None
    assert (moved.vm.host, moved.vm.host_version) == (GPU03, "8.0.3")
    assert moved.max_passthrough_devices == 128
    assert [p.id for p in moved.config_target.pci_passthrough] == []  # the A100 is not active
    # The stale host was read once, then the new one: no lookup of all VMs.
    assert _counts(sim)["RetrievePropertiesEx"] == 2

    _raw(sim, lambda si, vm: wait_task(vm.Rename_Task(newName="web-02")), "web-01")
    assert _observe(adapter, "web-01").vm is None
    assert _vm(adapter, "web-02").host == GPU01

    def destroy(si: Any, vm: Any) -> None:
        wait_task(vm.PowerOffVM_Task())
        wait_task(vm.Destroy_Task())

    _raw(sim, destroy, "web-02")
    assert _observe(adapter, "web-02").vm is None


# --- reconfigure --------------------------------------------------------------------------------


def _attach_change(observation: VMObservation, lock: bool) -> ReconfigVM:
    vm = observation.vm
    assert vm is not None
    static = observation.config_target.pci(X710)
    assert static is not None
    return ReconfigVM(
        vm.moref,
        vm.change_version,
        adds=(
            DeviceAdd(-100, "nic0", static.backing()),
            DeviceAdd(-101, "gpu0", DynamicBacking(((0x10DE, 0x20B5),), "a100")),
        ),
        memory_reservation_locked_to_max=True if lock else None,
    )


def test_attach_static_and_dynamic_then_power_on_and_remove(devices_adapter: VMAdapter) -> None:
    """The simulator refuses power-on for a wrong backing (decimal or upper-case deviceId, wrong
    systemId or vendorId, no free dynamic device) or without the full reservation: a successful
    power-on proves the backings and the reservation lock are right."""
    adapter = devices_adapter
    asyncio.run(adapter.reconfigure(_attach_change(_observe(adapter, "trainer"), lock=True)))
    vm = _vm(adapter, "trainer")
    assert vm.memory_reservation_locked_to_max
    assert vm.memory_reservation_mb == vm.memory_mb == 4096
    backings = sorted((type(d.backing).__name__, d.key) for d in vm.pci_devices)
    assert [b for b, _ in backings] == ["DynamicBacking", "StaticBacking"]
    assert all(key >= 0 for _, key in backings)  # vCenter replaced the temporary keys

    asyncio.run(adapter.power(vm.moref, PowerAction.POWER_ON))
    running = _vm(adapter, "trainer")
    assert running.power_state == "poweredOn"
    dynamic = next(d for d in running.pci_devices if isinstance(d.backing, DynamicBacking))
    assert dynamic.assigned_id == A100
    # The VM-FEX VM on the same host sees both devices held by "trainer".
    assert dict(_observe(adapter, "fex").attached_to_vms) == {
        A100: ("trainer",), X710: ("trainer",),
    }  # fmt: skip

    asyncio.run(adapter.power(vm.moref, PowerAction.POWER_OFF))
    stopped = _vm(adapter, "trainer")
    removes = tuple(DeviceRemove(d.key, d.label) for d in stopped.pci_devices)
    asyncio.run(adapter.reconfigure(ReconfigVM(stopped.moref, stopped.change_version, removes)))
    assert _vm(adapter, "trainer").pci_devices == ()


def test_power_on_fails_without_the_reservation_lock(devices_adapter: VMAdapter) -> None:
    adapter = devices_adapter
    asyncio.run(adapter.reconfigure(_attach_change(_observe(adapter, "trainer"), lock=False)))
    vm = _vm(adapter, "trainer")
    assert len(vm.pci_devices) == 2
    with pytest.raises(errors.TaskFailed, match="memory reservation") as info:
        asyncio.run(adapter.power(vm.moref, PowerAction.POWER_ON))
    assert info.value.fault == "GenericVmConfigFault"
    assert _vm(adapter, "trainer").power_state == "poweredOff"


def test_gen2_nic_edit(devices_adapter: VMAdapter) -> None:
    """uptCompatibilityEnabled and the full reservation make Gen2 active (docs/design.md,
    "VM side: DirectPath Gen2 and vMotion")."""
    adapter = devices_adapter
    vm = _vm(adapter, "fex")
    (nic,) = vm.nics
    assert (nic.kind, nic.portgroup, nic.gen2_allowed, nic.upt_compatibility_enabled) == (
        "vmxnet3", "vmfex-gen2", True, False,
    )  # fmt: skip
    change = ReconfigVM(
        vm.moref,
        vm.change_version,
        nic_edits=(NicEdit(nic.key, nic.label),),
        memory_reservation_locked_to_max=True,
    )
    asyncio.run(adapter.reconfigure(change))
    asyncio.run(adapter.power(vm.moref, PowerAction.POWER_ON))
    (after,) = _vm(adapter, "fex").nics
    assert (after.key, after.upt_compatibility_enabled, after.portgroup) == (
        nic.key,
        True,
        nic.portgroup,
    )
    assert (after.gen2_active, after.gen2_inactive_reasons) == (True, ())


@pytest.mark.parametrize("nic_edit", [False, True], ids=["flags", "nic-edit"])
def test_stale_change_version_is_a_concurrent_modification(
    devices_sim: vcsim.Simulator, devices_adapter: VMAdapter, nic_edit: bool
) -> None:
    adapter = devices_adapter
    vm = _vm(adapter, "fex")
    stale = "1"  # any value but the VM's config.changeVersion
    edits = (NicEdit(vm.nics[0].key, vm.nics[0].label),) if nic_edit else ()
    change = ReconfigVM(vm.moref, stale, nic_edits=edits, memory_reservation_locked_to_max=True)
    with pytest.raises(errors.ConcurrentModification) as info:
        asyncio.run(adapter.reconfigure(change))
    assert info.value.retryable
    assert info.value.fault == "ConcurrentAccess"
    after = _vm(adapter, "fex")
    assert not after.memory_reservation_locked_to_max
    assert after.change_version == vm.change_version


def test_device_change_on_a_powered_on_vm_is_refused(adapter: VMAdapter) -> None:
    found = _observe(adapter, "web-01")
    assert found.vm is not None
    backing = found.config_target.pci(A100)
    assert backing is not None
    change = ReconfigVM(
        found.vm.moref, found.vm.change_version, adds=(DeviceAdd(-100, "gpu", backing.backing()),)
    )
    with pytest.raises(errors.InvalidPowerState):
        asyncio.run(adapter.reconfigure(change))


def test_empty_changes_make_no_call(sim: vcsim.Simulator, adapter: VMAdapter) -> None:
    adapter.client.connection()
    sim.admin("POST", "/counters/reset")
    asyncio.run(adapter.reconfigure(ReconfigVM("vm-1", "cv")))
    asyncio.run(adapter.reconfigure_cluster(ReconfigureCluster("domain-c1", "vm-1")))
    assert _counts(sim) == {}


# --- cluster overrides and power --------------------------------------------------------------


def test_cluster_overrides_add_edit_remove(adapter: VMAdapter) -> None:
    vm = _vm(adapter, "ml-trainer-01")
    assert vm.cluster is not None
    steps = [
        (
            DrsOverrideChange("add", enabled=True, behavior="manual"),
            DasOverrideChange("add", "disabled"),
            (True, "manual", "disabled"),
        ),
        (
            DrsOverrideChange("edit", enabled=False, behavior="partiallyAutomated"),
            DasOverrideChange("edit", "high"),
            (False, "partiallyAutomated", "high"),
        ),
        (DrsOverrideChange("remove"), DasOverrideChange("remove"), (None, None, None)),
    ]
    for drs, das, expected in steps:
        change = ReconfigureCluster(vm.cluster.moref, vm.moref, drs, das)
        asyncio.run(adapter.reconfigure_cluster(change))
        cluster = _vm(adapter, "ml-trainer-01").cluster
        assert cluster is not None
        got = (cluster.vm_drs_enabled, cluster.vm_drs_behavior, cluster.vm_das_restart_priority)
        assert got == expected, drs.operation
    # Another VM's overrides (batch-01: manual / disabled) were left alone.
    other = _vm(adapter, "batch-01").cluster
    assert other is not None
    assert (other.vm_drs_behavior, other.vm_das_restart_priority) == ("manual", "disabled")


def test_power_actions(adapter: VMAdapter) -> None:
    vm = _vm(adapter, "web-01")
    assert vm.power_state == "poweredOn"
    for action, state in [
        (PowerAction.SHUTDOWN_GUEST, "poweredOff"),
        (PowerAction.POWER_ON, "poweredOn"),
        (PowerAction.POWER_OFF, "poweredOff"),
    ]:
        asyncio.run(adapter.power(vm.moref, action))
        assert _vm(adapter, "web-01").power_state == state, action
    with pytest.raises(errors.InvalidPowerState):
        asyncio.run(adapter.power(vm.moref, PowerAction.POWER_OFF))
    with pytest.raises(errors.InvalidPowerState):
        asyncio.run(adapter.power(vm.moref, PowerAction.SHUTDOWN_GUEST))


# --- task waits answered by the change watch ----------------------------------------------------


@pytest.fixture
def watched(devices_adapter: VMAdapter) -> Iterator[VMAdapter]:
    """The adapter with its vCenter's change watch running, as the operator has it."""
    watcher = Watcher(devices_adapter.client, lambda _changes: None)
    watcher.start()
    try:
        assert watcher.ready.wait(15)
        assert devices_adapter.client.tasks.live
        yield devices_adapter
    finally:
        watcher.stop()
    assert not devices_adapter.client.tasks.live


def test_a_watched_task_costs_only_the_call_that_starts_it(
    devices_sim: vcsim.Simulator, watched: VMAdapter
) -> None:
    """ReconfigVM_Task and PowerOnVM_Task: the task's end comes with the watch's answer, no read
    of the task (issue 17: at most 3 calls per changed VM)."""
    change = _attach_change(_observe(watched, "trainer"), lock=True)
    devices_sim.admin("POST", "/counters/reset")
    asyncio.run(watched.reconfigure(change))
    asyncio.run(watched.power(change.moref, PowerAction.POWER_ON))
    calls = _counts(devices_sim)
    assert calls.pop("ReconfigVM_Task") == 1
    assert calls.pop("PowerOnVM_Task") == 1
    assert set(calls) <= {"WaitForUpdatesEx"}  # the watch's long poll, nothing else
    vm = _vm(watched, "trainer")
    assert (vm.power_state, len(vm.pci_devices)) == ("poweredOn", 2)


def test_a_watched_task_that_fails_raises_its_typed_fault(
    devices_sim: vcsim.Simulator, watched: VMAdapter
) -> None:
    vm = _vm(watched, "fex")
    devices_sim.admin("POST", "/counters/reset")
    with pytest.raises(errors.ConcurrentModification) as info:
        asyncio.run(
            watched.reconfigure(ReconfigVM(vm.moref, "1", memory_reservation_locked_to_max=True))
        )
    assert info.value.fault == "ConcurrentAccess"
    assert "RetrievePropertiesEx" not in _counts(devices_sim)
