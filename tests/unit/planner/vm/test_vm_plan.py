"""The VM plan: one ReconfigVM, Block/Resolve, power policies, previous, Gen2, deletion."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.planner.vm.builders import (
    GPU,
    NOW,
    NS,
    assignment,
    attached,
    converged_vm,
    observe,
    plan,
    vm,
    vmxnet3,
)

from dpio.api.assignment import VMDeviceAssignmentStatus
from dpio.api.conditions import (
    DIRECT_PATH_GEN2,
    DRS_AUTOMATION,
    FAULT_TOLERANCE,
    HIGH_AVAILABILITY,
    HOT_ADD,
    NESTED_HV,
    SNAPSHOTS,
    STATIC_PASSTHROUGH,
)
from dpio.api.vm_settings import DasVmOverride, DrsVmOverride, PreviousMmio, PreviousSettings
from dpio.planner.vm.deletion import plan_assignment_deletion
from dpio.planner.vm.gen2 import (
    DYNAMIC_PASSTHROUGH,
    GEN2_NOT_ALLOWED_BY_PORT_GROUP,
    GEN2_UNSUPPORTED_HOST,
    INVALID_NETWORK_ADAPTER,
)
from dpio.planner.vm.observed import ObservedCluster, ObservedVM, VMObservation
from dpio.planner.vm.power import GUEST_SHUTDOWN_TIMEOUT, PowerAction, PowerTracking

HA_DRS = ObservedCluster("gpu", "domain-c1", ha_enabled=True, drs_enabled=True)


def test_first_attach_is_one_reconfigure_with_lock_and_change_version() -> None:
    result = plan(observe())
    change = result.calls.reconfigure
    assert change is not None
    assert change.change_version == "cv-1"
    assert change.memory_reservation_locked_to_max is True
    (add,) = change.adds
    assert add.key < 0
    assert add.backing.device_id == "20b5"  # type: ignore[union-attr]
    # The A100 80GB maps 128 GB: the same reconfigure opens the 64-bit MMIO window, and the
    # absent keys are recorded as absent (PreviousMmio with nothing set) to be removed on delete.
    assert change.extra_config == (
        ("pciPassthru.use64bitMMIO", "TRUE"),
        ("pciPassthru.64bitMMIOSizeGB", "128"),
    )
    assert result.outcome.previous == PreviousSettings(
        memory_reservation_locked_to_max=False, mmio=PreviousMmio()
    )


def test_converged_vm_gives_an_empty_plan() -> None:
    result = plan(observe(converged_vm()))
    assert result.empty
    assert result.calls.reconfigure is None


def test_drift_device_removed_by_hand_is_put_back() -> None:
    status = VMDeviceAssignmentStatus.model_validate(
        {"devices": [{"name": "gpu0", "kind": "pci", "attached": True, "key": 13000}]}
    )
    result = plan(observe(vm(memory_reservation_locked_to_max=True)), previous=status)
    assert result.calls.reconfigure is not None
    assert [a.name for a in result.calls.reconfigure.adds] == ["gpu0"]


def test_removes_go_with_adds_in_one_reconfigure() -> None:
    status = VMDeviceAssignmentStatus.model_validate(
        {
            "devices": [
                {"name": "gpu0", "kind": "pci", "attached": True, "key": 13009, "added": True}
            ]
        }
    )
    old = attached(13009, "0000:99:00.0")
    result = plan(observe(converged_vm(pci_devices=(old,))), previous=status)
    change = result.calls.reconfigure
    assert change is not None
    assert [r.key for r in change.removes] == [13009]
    assert [a.name for a in change.adds] == ["gpu0"]


@pytest.mark.parametrize(
    ("fields", "policy", "features", "blocked", "vm_off"),
    [
        ({"snapshot_count": 2}, "Block", [SNAPSHOTS], [SNAPSHOTS], {}),
        ({"snapshot_count": 2}, "Resolve", [SNAPSHOTS], [SNAPSHOTS], {}),
        ({"ft_configured": True}, "Resolve", [FAULT_TOLERANCE], [FAULT_TOLERANCE], {}),
        ({"cpu_hot_add_enabled": True}, "Block", [HOT_ADD], [HOT_ADD], {}),
        (
            {"cpu_hot_add_enabled": True, "memory_hot_add_enabled": True},
            "Resolve",
            [HOT_ADD],
            [],
            {"cpu_hot_add_enabled": False, "memory_hot_add_enabled": False},
        ),
        ({"nested_hv_enabled": True}, "Resolve", [NESTED_HV], [], {"nested_hv_enabled": False}),
        ({"nested_hv_enabled": True}, "Block", [NESTED_HV], [NESTED_HV], {}),
        (
            {"cluster": HA_DRS},
            "Block",
            [HIGH_AVAILABILITY, DRS_AUTOMATION],
            [HIGH_AVAILABILITY, DRS_AUTOMATION],
            {},
        ),
        ({"cluster": HA_DRS}, "Resolve", [HIGH_AVAILABILITY, DRS_AUTOMATION], [], {}),
        # Overrides already in place: no conflict.
        (
            {
                "cluster": ObservedCluster(
                    "c",
                    "c1",
                    ha_enabled=True,
                    drs_enabled=True,
                    vm_das_restart_priority="disabled",
                    vm_drs_behavior="manual",
                )
            },
            "Block",
            [],
            [],
            {},
        ),
    ],
)
def test_feature_conflicts_block_or_resolve(
    fields: dict[str, Any],
    policy: str,
    features: list[str],
    blocked: list[str],
    vm_off: dict[str, bool],
) -> None:
    result = plan(observe(vm(**fields)), assignment(conflictPolicy=policy))
    assert [c.feature for c in result.outcome.conflicts] == features
    assert [c.feature for c in result.outcome.blocked_by] == blocked
    if blocked:
        assert result.empty
        return
    change = result.calls.reconfigure
    assert change is not None
    for name, value in vm_off.items():
        assert getattr(change, name) is value
        assert getattr(result.outcome.previous, name) is True  # recorded before the change
    if "cluster" in fields and features:
        assert result.calls.cluster is not None
        assert result.calls.cluster.drs is not None
        assert result.calls.cluster.drs.behavior == "manual"
        assert result.calls.cluster.das is not None
        assert result.calls.cluster.das.restart_priority == "disabled"
        assert result.outcome.previous is not None
        assert result.outcome.previous.drs_override == DrsVmOverride(existed=False)
        assert result.outcome.previous.das_override == DasVmOverride(existed=False)


@pytest.mark.parametrize(
    ("power_state", "policy", "tracking", "now", "before", "pending", "reconfigure"),
    [
        ("poweredOff", "WaitForPowerOff", PowerTracking(), NOW, None, False, True),
        ("poweredOn", "WaitForPowerOff", PowerTracking(), NOW, None, True, False),
        ("poweredOn", "PowerOff", PowerTracking(), NOW, PowerAction.POWER_OFF, True, False),
        (
            "poweredOn",
            "ShutdownGuest",
            PowerTracking(),
            NOW,
            PowerAction.SHUTDOWN_GUEST,
            True,
            False,
        ),
        # Guest shutdown asked, still within the timeout: wait.
        (
            "poweredOn",
            "ShutdownGuest",
            PowerTracking(True, NOW),
            NOW + timedelta(minutes=1),
            None,
            True,
            False,
        ),
        # Past the timeout: hard power-off.
        (
            "poweredOn",
            "ShutdownGuest",
            PowerTracking(True, NOW),
            NOW + GUEST_SHUTDOWN_TIMEOUT,
            PowerAction.POWER_OFF,
            True,
            False,
        ),
        ("suspended", "ShutdownGuest", PowerTracking(), NOW, None, True, False),
        ("suspended", "PowerOff", PowerTracking(), NOW, PowerAction.POWER_OFF, True, False),
    ],
)
def test_power_policies(
    power_state: str,
    policy: str,
    tracking: PowerTracking,
    now: Any,
    before: PowerAction | None,
    pending: bool,
    reconfigure: bool,
) -> None:
    result = plan(
        observe(vm(power_state=power_state)),
        assignment(powerPolicy=policy),
        tracking=tracking,
        now=now,
    )
    assert result.calls.power_before is before
    assert result.outcome.change_pending is pending
    assert (result.calls.reconfigure is not None) is reconfigure
    if before is not None:
        assert result.outcome.tracking.powered_off_by_operator  # recorded before acting


@pytest.mark.parametrize(
    ("the_vm", "restore", "tracking", "after", "kept"),
    [
        # Change made while off after the operator powered it off: power on afterwards.
        (vm(), True, PowerTracking(True), PowerAction.POWER_ON, True),
        (vm(), False, PowerTracking(True), None, True),
        (vm(), True, PowerTracking(False), None, False),
        # Converged and off: power on; tracking stays until the VM is seen running.
        (converged_vm(), True, PowerTracking(True), PowerAction.POWER_ON, True),
        (converged_vm(power_state="poweredOn"), True, PowerTracking(True), None, False),
        (converged_vm(), False, PowerTracking(True), None, False),
    ],
)
def test_restore_power_state(
    the_vm: ObservedVM,
    restore: bool,
    tracking: PowerTracking,
    after: PowerAction | None,
    kept: bool,
) -> None:
    result = plan(observe(the_vm), assignment(restorePowerState=restore), tracking=tracking)
    assert result.calls.power_after is after
    assert result.outcome.tracking.powered_off_by_operator is kept


def test_previous_is_recorded_once_and_never_overwritten() -> None:
    first = plan(observe(vm(cpu_hot_add_enabled=True)), assignment(conflictPolicy="Resolve"))
    assert first.outcome.previous == PreviousSettings(
        memory_reservation_locked_to_max=False, cpu_hot_add_enabled=True, mmio=PreviousMmio()
    )
    status = VMDeviceAssignmentStatus(previous=first.outcome.previous)
    # Later the VM reads as changed by the operator; the user's values stay recorded.
    again = plan(
        observe(vm(memory_reservation_locked_to_max=True, nested_hv_enabled=True)),
        assignment(conflictPolicy="Resolve"),
        previous=status,
    )
    assert again.outcome.previous == PreviousSettings(
        memory_reservation_locked_to_max=False,
        cpu_hot_add_enabled=True,
        nested_hv_enabled=True,
        mmio=PreviousMmio(),
    )


@pytest.mark.parametrize(
    ("nic", "gen2", "devices", "reason", "compatible"),
    [
        (vmxnet3(gen2_allowed=True), True, [], DIRECT_PATH_GEN2, True),
        (vmxnet3(gen2_allowed=True), False, [], GEN2_UNSUPPORTED_HOST, False),
        (vmxnet3(gen2_allowed=False), True, [], GEN2_NOT_ALLOWED_BY_PORT_GROUP, False),
        (
            vmxnet3(gen2_allowed=True),
            True,
            [{"name": "g", "pci": {"address": GPU}}],
            STATIC_PASSTHROUGH,
            False,
        ),
        (
            vmxnet3(gen2_allowed=True),
            True,
            [{"name": "g", "dynamic": {"vendorID": "10de", "deviceID": "20b5", "label": "a100"}}],
            DYNAMIC_PASSTHROUGH,
            False,
        ),
    ],
)
def test_vmotion_compatibility(
    nic: Any, gen2: bool, devices: list[dict[str, Any]], reason: str, compatible: bool
) -> None:
    spec = assignment(devices=devices, networkDirectPath=[{"adapter": "Network adapter 1"}])
    result = plan(observe(vm(nics=(nic,)), gen2_supported=gen2), spec)
    assert result.outcome.vmotion is not None
    assert (result.outcome.vmotion.reason, result.outcome.vmotion.compatible) == (
        reason,
        compatible,
    )
    assert "deprecated" in (result.outcome.vmotion.message or "")  # host 8.0.2


def test_gen2_plans_upt_and_reservation() -> None:
    spec = assignment(devices=[], networkDirectPath=[{"adapter": "Network adapter 1"}])
    result = plan(
        observe(vm(nics=(vmxnet3(),), power_state="poweredOn"), gen2_supported=True), spec
    )
    change = result.calls.reconfigure
    assert change is not None
    assert [e.key for e in change.nic_edits] == [4000]
    assert change.memory_reservation_locked_to_max is True
    assert result.outcome.conflicts == ()  # Gen2 keeps the features passthrough rules out


@pytest.mark.parametrize(
    "nics", [(), (vmxnet3(kind="e1000e"),), (vmxnet3(label="Network adapter 2"),)]
)
def test_gen2_adapter_must_be_an_existing_vmxnet3(nics: tuple[Any, ...]) -> None:
    spec = assignment(devices=[], networkDirectPath=[{"adapter": "Network adapter 1"}])
    result = plan(observe(vm(nics=nics)), spec)
    assert result.outcome.stalled is not None
    assert result.outcome.stalled.reason == INVALID_NETWORK_ADAPTER
    assert result.empty


def _deleting(
    the_vm: ObservedVM | None, previous: PreviousSettings | None = None, **spec: Any
) -> Any:
    status = VMDeviceAssignmentStatus.model_validate(
        {
            "devices": [
                {"name": "gpu0", "kind": "pci", "attached": True, "key": 13000, "added": True}
            ]
        }
    ).model_copy(update={"previous": previous})
    return plan_assignment_deletion(
        namespace=NS,
        spec=assignment(**spec),
        observed=observe(the_vm) if the_vm else VMObservation(vm=None),
        now=NOW,
        previous=status,
    )


def test_deletion_of_a_vm_gone_releases_at_once() -> None:
    result = _deleting(None)
    assert result.outcome.release
    assert result.empty


def test_deletion_removes_devices_and_restores_previous() -> None:
    previous = PreviousSettings(
        memory_reservation_locked_to_max=False,
        cpu_hot_add_enabled=True,
        drs_override=DrsVmOverride(existed=False),
        das_override=DasVmOverride(existed=True, restart_priority="high"),
    )
    cluster = ObservedCluster(
        "gpu", "c1", True, True, vm_drs_behavior="manual", vm_das_restart_priority="disabled"
    )
    result = _deleting(converged_vm(cluster=cluster), previous)
    change = result.calls.reconfigure
    assert change is not None
    assert [r.key for r in change.removes] == [13000]
    assert change.memory_reservation_locked_to_max is False
    assert change.cpu_hot_add_enabled is True
    assert result.calls.cluster is not None
    assert result.calls.cluster.drs is not None
    assert result.calls.cluster.drs.operation == "remove"
    assert result.calls.cluster.das is not None
    assert (result.calls.cluster.das.operation, result.calls.cluster.das.restart_priority) == (
        "edit",
        "high",
    )
    assert not result.outcome.release


@pytest.mark.parametrize(
    ("power", "policy", "before", "reconfigure"),
    [
        ("poweredOn", "WaitForPowerOff", None, False),
        ("poweredOn", "PowerOff", PowerAction.POWER_OFF, False),
        ("poweredOff", "WaitForPowerOff", None, True),
    ],
)
def test_deletion_follows_the_power_policy(
    power: str, policy: str, before: PowerAction | None, reconfigure: bool
) -> None:
    result = _deleting(converged_vm(power_state=power), powerPolicy=policy)
    assert result.calls.power_before is before
    assert (result.calls.reconfigure is not None) is reconfigure
    assert not result.outcome.release


def test_deletion_when_already_clean_releases() -> None:
    result = _deleting(vm(), PreviousSettings(memory_reservation_locked_to_max=False))
    assert result.empty
    assert result.outcome.release


_pci = st.builds(
    lambda key, bus, kind: attached(key, f"0000:{bus:02x}:00.0") if kind else attached(key),
    st.integers(-5, 20000),
    st.integers(0, 255),
    st.booleans(),
)
_vms = st.builds(
    vm,
    power_state=st.sampled_from(["poweredOn", "poweredOff", "suspended", "", "weird"]),
    host_version=st.text(max_size=8),
    snapshot_count=st.integers(0, 3),
    cpu_hot_add_enabled=st.booleans(),
    nested_hv_enabled=st.booleans(),
    ft_configured=st.booleans(),
    memory_reservation_locked_to_max=st.booleans(),
    pci_devices=st.lists(_pci, max_size=4).map(tuple),
    nics=st.lists(
        st.builds(
            vmxnet3,
            kind=st.sampled_from(["vmxnet3", "e1000"]),
            upt_compatibility_enabled=st.booleans(),
        ),
        max_size=2,
    ).map(tuple),
    cluster=st.none()
    | st.builds(ObservedCluster, st.just("c"), st.just("c1"), st.booleans(), st.booleans()),
)


@settings(max_examples=150, deadline=None)
@given(
    the_vm=_vms,
    policy=st.sampled_from(["Block", "Resolve"]),
    power=st.sampled_from(["WaitForPowerOff", "ShutdownGuest", "PowerOff"]),
    gen2=st.booleans(),
    limit=st.none() | st.integers(-1, 200),
)
def test_planner_never_raises_on_odd_vms(
    the_vm: ObservedVM, policy: str, power: str, gen2: bool, limit: int | None
) -> None:
    spec = assignment(
        conflictPolicy=policy,
        powerPolicy=power,
        networkDirectPath=[{"adapter": "Network adapter 1"}],
    )
    observed = observe(the_vm, gen2_supported=gen2, max_passthrough_devices=limit)
    result = plan(observed, spec)
    if result.calls.reconfigure is not None:
        keys = [a.key for a in result.calls.reconfigure.adds]
        assert all(k < 0 for k in keys)
        assert len(set(keys)) == len(keys)
    _deleting(the_vm, powerPolicy=power)


@settings(max_examples=100, deadline=None)
@given(power=st.sampled_from(["poweredOn", "poweredOff"]), extra_keys=st.integers(13001, 20000))
def test_a_converged_vm_always_gives_an_empty_plan(power: str, extra_keys: int) -> None:
    the_vm = converged_vm(
        power_state=power, nics=(vmxnet3(upt_compatibility_enabled=True, gen2_allowed=True),)
    )
    spec = assignment(networkDirectPath=[{"adapter": "Network adapter 1"}])
    result = plan(observe(the_vm, gen2_supported=True), spec)
    assert result.empty
