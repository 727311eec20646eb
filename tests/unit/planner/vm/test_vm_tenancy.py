"""Tenancy rules (planner.vm.tenancy and how plan_assignment / plan_assignment_deletion use
them): every refusal plans no vCenter call and tells the tenant nothing about VMs or objects
that are not theirs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.vm.builders import (
    A100_DEVICE,
    A100_VENDOR,
    FOLDER,
    GPU,
    NOW,
    NS,
    POOL,
    assignment,
    attached,
    consumer,
    converged_vm,
    observe,
    plan,
    policy,
    row,
    target_pci,
    vm,
    vmxnet3,
)

from dpio.api.assignment import VMDeviceAssignmentStatus
from dpio.api.conditions import (
    CONFLICT_POLICY_NOT_ALLOWED,
    HOST_NOT_IN_POLICY,
    IN_USE_BY_VM,
    NOT_A_CONSUMER,
    POWER_POLICY_NOT_ALLOWED,
    QUOTA_EXCEEDED,
    VCENTER_CHANGED,
    VM_NOT_FOUND,
    VM_OUT_OF_SCOPE,
    VM_REPLACED,
)
from dpio.planner.vm.deletion import plan_assignment_deletion
from dpio.planner.vm.observed import (
    ConfigTarget,
    ConfigTargetDynamic,
    ConfigTargetPci,
    ObservedCluster,
    PolicyView,
    QuotaUse,
    VMObservation,
)
from dpio.planner.vm.power import PowerAction, PowerTracking
from dpio.planner.vm.status import assignment_status

WAIT_ONLY = {"powerPolicies": ["WaitForPowerOff"]}
BLOCK_ONLY = {"conflictPolicies": ["Block"]}
ADDED = {"name": "gpu0", "kind": "pci", "attached": True, "key": 13000, "added": True}
UUID = "4211aaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
VCENTER = "vc-uuid-1"


def view(*consumers: dict[str, Any], **fields: Any) -> PolicyView:
    return PolicyView("gpu-hosts", policy(consumers=list(consumers), **fields), (row(),))


def reason(result: Any) -> str | None:
    return result.outcome.forbidden.reason if result.outcome.forbidden else None


@pytest.mark.parametrize(
    ("entry", "labels", "expected"),
    [
        ({}, {}, None),
        ({"namespaces": ["other"]}, {}, NOT_A_CONSUMER),
        ({"namespaces": [], "namespaceSelector": {}}, {}, None),  # {} selects every namespace
        ({"namespaces": [], "namespaceSelector": {"matchLabels": {"t": "ml"}}}, {"t": "ml"}, None),
        (
            {"namespaces": [], "namespaceSelector": {"matchLabels": {"t": "ml"}}},
            {"t": "web"},
            NOT_A_CONSUMER,
        ),
        (
            {
                "namespaces": [],
                "namespaceSelector": {
                    "matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["x"]}]
                },
            },
            {"t": "x"},
            NOT_A_CONSUMER,
        ),
        # Labels not read yet: NotIn would match an empty set; the selector fails closed.
        (
            {
                "namespaces": [],
                "namespaceSelector": {
                    "matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["x"]}]
                },
            },
            None,
            NOT_A_CONSUMER,
        ),
    ],
)
def test_the_namespace_must_be_served_by_an_entry(
    entry: dict[str, Any], labels: dict[str, str] | None, expected: str | None
) -> None:
    observed = observe(
        policy=view(consumer(**entry)),
        namespace_labels=labels or {},
        namespace_labels_known=labels is not None,
    )
    result = plan(observed)
    assert reason(result) == expected
    if expected is not None:
        assert result.empty


def test_a_policy_without_consumers_serves_nobody() -> None:
    result = plan(observe(policy=view()))
    assert reason(result) == NOT_A_CONSUMER
    assert result.empty


@pytest.mark.parametrize(
    ("scope", "folder", "pool", "allowed"),
    [
        ({"folders": [FOLDER]}, FOLDER, "", True),
        ({"folders": [FOLDER]}, FOLDER + "/prod/a", "", True),  # subfolders count
        ({"folders": [FOLDER]}, FOLDER + "-2", "", False),  # a prefix is not a parent
        ({"folders": [FOLDER]}, "/DC1/vm", "", False),  # a parent is not in scope
        ({"folders": [FOLDER]}, "", POOL, False),
        ({"resourcePools": [POOL]}, "/DC1/vm", POOL, True),
        ({"resourcePools": [POOL]}, "/DC1/vm", POOL + "/batch", True),  # child pools count
        ({"folders": ["/DC2/vm"], "resourcePools": [POOL]}, FOLDER, POOL, True),  # either
        ({"folders": [FOLDER]}, "", "", False),  # unknown placement matches nothing
    ],
)
def test_the_vm_must_be_in_the_entrys_folders_or_pools(
    scope: dict[str, Any], folder: str, pool: str, allowed: bool
) -> None:
    observed = observe(vm(folder=folder, resource_pool=pool), policy=view(consumer(vms=scope)))
    result = plan(observed)
    assert reason(result) == (None if allowed else VM_OUT_OF_SCOPE)
    assert (result.calls.reconfigure is not None) is allowed


def test_out_of_scope_and_not_found_read_the_same_and_show_nothing_of_the_vm() -> None:
    elsewhere = plan(observe(vm(folder="/DC1/vm/other-team", power_state="poweredOn")))
    missing = plan(VMObservation(vm=None, policy=observe().policy))
    assert elsewhere.outcome.forbidden == missing.outcome.forbidden
    assert elsewhere.outcome.forbidden is not None
    assert elsewhere.outcome.forbidden.reason == VM_OUT_OF_SCOPE
    assert elsewhere.empty
    status = assignment_status(elsewhere, previous=None, generation=1, now=NOW)
    text = status.model_dump_json()
    for secret in ("esx01", "vm-42", "poweredOn", "other-team", "vmx-"):
        assert secret not in text
    assert status.devices == []


@pytest.mark.parametrize(
    ("entry", "spec", "expected"),
    [
        (WAIT_ONLY, {"powerPolicy": "PowerOff"}, POWER_POLICY_NOT_ALLOWED),
        (WAIT_ONLY, {"powerPolicy": "ShutdownGuest"}, POWER_POLICY_NOT_ALLOWED),
        (BLOCK_ONLY, {"conflictPolicy": "Resolve"}, CONFLICT_POLICY_NOT_ALLOWED),
        ({"powerPolicies": ["PowerOff"]}, {"powerPolicy": "PowerOff"}, None),
        ({}, {"powerPolicy": "PowerOff", "conflictPolicy": "Resolve"}, None),
    ],
)
def test_power_and_conflict_policies_must_be_allowed(
    entry: dict[str, Any], spec: dict[str, Any], expected: str | None
) -> None:
    result = plan(observe(policy=view(consumer(**entry))), assignment(**spec))
    assert reason(result) == expected
    assert result.empty is (expected is not None)


def test_defaults_allow_only_waiting_and_blocking() -> None:
    bare = {"namespaces": [NS], "vms": {"folders": [FOLDER]}}
    assert reason(plan(observe(policy=view(bare)))) is None
    powered = assignment(powerPolicy="PowerOff")
    assert reason(plan(observe(policy=view(bare)), powered)) == POWER_POLICY_NOT_ALLOWED


def test_any_entry_that_allows_everything_wins_and_the_closest_refusal_is_reported() -> None:
    narrow = consumer(powerPolicies=["WaitForPowerOff"])
    other_scope = consumer(vms={"folders": ["/DC1/vm/else"]}, powerPolicies=["PowerOff"])
    spec = assignment(powerPolicy="PowerOff")
    assert reason(plan(observe(policy=view(narrow, other_scope)), spec)) == (
        POWER_POLICY_NOT_ALLOWED
    )
    wide = consumer(powerPolicies=["PowerOff"])
    assert reason(plan(observe(policy=view(narrow, wide)), spec)) is None


def test_a_network_only_assignment_needs_scope_and_a_selected_host() -> None:
    spec = assignment(devices=[], networkDirectPath=[{"adapter": "Network adapter 1"}])
    nic = (vmxnet3(portgroup="gen2", gen2_allowed=True),)
    outside = plan(observe(vm(nics=nic, folder="/DC1/vm/other")), spec)
    assert reason(outside) == VM_OUT_OF_SCOPE
    assert outside.empty
    off_host = plan(observe(replace(vm(nics=nic), host="esx99")), spec)
    assert reason(off_host) == HOST_NOT_IN_POLICY
    assert off_host.empty
    on_host = plan(observe(vm(nics=nic)), spec)
    assert reason(on_host) is None
    assert on_host.calls.reconfigure is not None


def test_a_device_found_attached_is_adopted_but_never_removed() -> None:
    found = plan(observe(converged_vm(pci_devices=(attached(),))))
    assert found.empty  # already as wanted: no call
    status = assignment_status(found, previous=None, generation=1, now=NOW)
    (device,) = status.devices
    assert device.attached
    assert not device.added
    gone = plan_assignment_deletion(
        namespace=NS,
        spec=assignment(),
        observed=observe(converged_vm(pci_devices=(attached(),))),
        now=NOW,
        previous=status,
    )
    assert gone.calls.reconfigure is None
    assert gone.calls.power_before is None
    assert gone.outcome.release


def test_a_device_the_operator_adds_is_recorded_as_added() -> None:
    result = plan(observe())
    assert result.calls.reconfigure is not None
    status = assignment_status(result, previous=None, generation=1, now=NOW)
    assert [d.added for d in status.devices] == [True]


def test_a_dynamic_device_no_free_host_device_can_back_is_not_attached() -> None:
    """Power-off, add, power-on would fail at power-on: vSphere finds no free device."""
    spec = assignment(
        devices=[{"name": "g", "dynamic": {"vendorID": "10de", "deviceID": "20b5"}}],
        powerPolicy="PowerOff",
    )
    target = ConfigTarget(
        pci_passthrough=(target_pci(),),
        dynamic_passthrough=(ConfigTargetDynamic(A100_VENDOR, A100_DEVICE, "a100"),),
    )
    running = vm(power_state="poweredOn")
    taken = plan(observe(running, config_target=target, attached_to_vms={GPU: ("x",)}), spec)
    assert [c.problem.reason for c in taken.outcome.unavailable] == [IN_USE_BY_VM]
    assert "x" not in taken.outcome.unavailable[0].problem.message.split()
    assert taken.empty
    free = plan(observe(running, config_target=target), spec)
    assert free.calls.power_before is PowerAction.POWER_OFF


def test_resolve_changes_the_cluster_only_in_the_step_that_adds_the_devices() -> None:
    cluster = ObservedCluster("gpu", "domain-c1", ha_enabled=True, drs_enabled=True)
    spec = assignment(conflictPolicy="Resolve")  # WaitForPowerOff by default
    waiting = plan(observe(vm(power_state="poweredOn", cluster=cluster)), spec)
    assert waiting.outcome.change_pending
    assert waiting.calls.cluster is None
    assert waiting.empty
    assert waiting.outcome.previous is not None
    assert waiting.outcome.previous.das_override is None
    ready = plan(observe(vm(cluster=cluster)), spec)
    assert ready.calls.cluster is not None
    assert ready.calls.reconfigure is not None


def _pinned(uuid: str = UUID, vcenter: str = VCENTER) -> VMDeviceAssignmentStatus:
    return VMDeviceAssignmentStatus.model_validate(
        {"vm": {"moref": "vm-42", "instanceUUID": uuid, "vcenter": vcenter}}
    )


def test_the_first_observation_pins_the_vm_and_later_ones_keep_it() -> None:
    result = plan(observe(vm(instance_uuid=UUID), vcenter_uuid=VCENTER))
    status = assignment_status(result, previous=None, generation=1, now=NOW)
    assert status.vm is not None
    assert (status.vm.instance_uuid, status.vm.vcenter) == (UUID, VCENTER)
    again = plan(observe(vm(instance_uuid=UUID), vcenter_uuid=VCENTER), previous=status)
    assert again.outcome.stalled is None
    later = assignment_status(again, previous=status, generation=1, now=NOW)
    assert later.vm is not None
    assert later.vm.instance_uuid == UUID


@pytest.mark.parametrize(
    ("uuid", "vcenter", "expected"),
    [
        ("4211ffff-bbbb-cccc-dddd-eeeeeeeeeeee", VCENTER, VM_REPLACED),
        (UUID.upper(), VCENTER, None),
        (UUID, "vc-uuid-2", VCENTER_CHANGED),
    ],
)
def test_another_vm_or_vcenter_than_the_pinned_one_is_left_alone(
    uuid: str, vcenter: str, expected: str | None
) -> None:
    observed = observe(vm(instance_uuid=uuid), vcenter_uuid=vcenter)
    result = plan(observed, previous=_pinned())
    assert (result.outcome.stalled.reason if result.outcome.stalled else None) == expected
    assert result.empty is (expected is not None)
    deleting = plan_assignment_deletion(
        namespace=NS, spec=assignment(), observed=observed, now=NOW, previous=_pinned()
    )
    if expected is not None:
        assert deleting.outcome.release
        assert deleting.empty


def _use(name: str, days: int, devices: int, namespace: str = NS) -> QuotaUse:
    return QuotaUse(namespace, name, NOW - timedelta(days=days), devices, {})


@pytest.mark.parametrize(
    ("uses", "limit", "over"),
    [
        ((), 1, False),
        ((_use("older", 5, 1),), 1, True),
        ((_use("older", 5, 1),), 2, False),
        ((_use("newer", 0, 5),), 1, False),  # newer ones come after us
        ((_use("older", 5, 5),), 2, False),  # one that did not fit holds nothing
        ((_use("a", 5, 1), _use("b", 4, 1)), 2, True),
        ((_use("older", 5, 1, "other-team"),), 1, False),  # not served by this entry
        (None, 1, False),  # maxDevices unset: no limit
    ],
)
def test_quota_is_shared_oldest_first(
    uses: tuple[QuotaUse, ...] | None, limit: int, over: bool
) -> None:
    entry = consumer(maxDevices=limit) if uses is not None else consumer()
    result = plan(observe(policy=view(entry), quota_uses=uses or ()))
    reasons = [c.problem.reason for c in result.outcome.unavailable]
    assert reasons == ([QUOTA_EXCEEDED] if over else [])
    assert (result.calls.reconfigure is None) is over
    if over:
        assert result.outcome.stalled is not None


def test_quota_counts_every_namespace_of_a_selector_entry() -> None:
    entry = consumer(namespaces=[], namespaceSelector={"matchLabels": {"t": "ml"}}, maxDevices=1)
    sibling = QuotaUse("ml-two", "x", NOW - timedelta(days=5), 1, {"t": "ml"})
    result = plan(observe(policy=view(entry), namespace_labels={"t": "ml"}, quota_uses=(sibling,)))
    assert [c.problem.reason for c in result.outcome.unavailable] == [QUOTA_EXCEEDED]


@pytest.mark.parametrize(
    ("allowed", "timeout", "waited", "action"),
    [
        (["ShutdownGuest", "PowerOff"], "5m", timedelta(minutes=6), PowerAction.POWER_OFF),
        (["ShutdownGuest"], "5m", timedelta(minutes=6), None),
        (["ShutdownGuest", "PowerOff"], "30m", timedelta(minutes=6), None),
        (["ShutdownGuest", "PowerOff"], "30m", timedelta(minutes=31), PowerAction.POWER_OFF),
    ],
)
def test_a_guest_that_does_not_shut_down_is_powered_off_only_where_allowed(
    allowed: list[str], timeout: str, waited: timedelta, action: PowerAction | None
) -> None:
    spec = assignment(powerPolicy="ShutdownGuest", shutdownTimeout=timeout)
    tracking = PowerTracking(powered_off_by_operator=True, shutdown_requested_at=NOW - waited)
    result = plan(
        observe(vm(power_state="poweredOn"), policy=view(consumer(powerPolicies=allowed))),
        spec,
        tracking=tracking,
    )
    assert result.calls.power_before is action
    assert result.calls.reconfigure is None
    if action is None and waited > timedelta(minutes=29):
        assert "does not allow PowerOff" in result.outcome.power_message


@pytest.mark.parametrize(
    ("the_vm", "entry"),
    [
        (vm(folder="/DC1/vm/else"), consumer()),  # moved out of scope since
        (vm(), consumer(powerPolicies=["WaitForPowerOff"])),  # PowerOff no longer allowed
    ],
)
def test_deletion_touches_nothing_the_namespace_may_no_longer_act_on(
    the_vm: Any, entry: dict[str, Any]
) -> None:
    status = VMDeviceAssignmentStatus.model_validate({"devices": [ADDED]})
    result = plan_assignment_deletion(
        namespace=NS,
        spec=assignment(powerPolicy="PowerOff"),
        observed=observe(the_vm, policy=view(entry)),
        now=NOW,
        previous=status,
    )
    assert result.outcome.release
    assert result.empty
    assert result.outcome.not_ready is not None


def test_deletion_of_a_missing_vm_releases_and_says_so() -> None:
    result = plan_assignment_deletion(
        namespace=NS, spec=assignment(), observed=VMObservation(vm=None), now=NOW
    )
    assert result.outcome.release
    assert result.outcome.not_ready is not None
    assert result.outcome.not_ready.reason == VM_NOT_FOUND


def test_claims_of_other_tenants_are_not_named() -> None:
    other = ConfigTargetPci(GPU, "sys-1", A100_VENDOR, A100_DEVICE)
    result = plan(
        observe(config_target=ConfigTarget((other,)), attached_to_vms={GPU: ("secret-vm",)})
    )
    (check,) = result.outcome.unavailable
    assert "secret-vm" not in check.problem.message
