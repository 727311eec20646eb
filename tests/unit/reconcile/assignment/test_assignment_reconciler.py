"""The VMDeviceAssignment reconciler against in-memory ports: call order, status before change,
errors as conditions, claims, deletion, and no writes at all when nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.planner.vm.builders import attached, consumer, converged_vm, observe, vm
from tests.unit.reconcile.assignment.fakes import World, body, condition, with_vm

from dpio.planner.vm.observed import ObservedCluster, VMObservation
from dpio.planner.vm.power import PowerAction
from dpio.reconcile.assignment.reconciler import STALLED_SECONDS
from dpio.reconcile.assignment.report import CLAIM_CHECK_SECONDS
from dpio.reconcile.constants import CONFIRM_SECONDS
from dpio.reconcile.finalizers import FINALIZER
from dpio.reconcile.ports import PortError

# A device this assignment added itself (only such a device is removed on delete).
OURS = {"name": "gpu0", "kind": "pci", "attached": True, "key": 13000, "added": True}
ATTACHED = {"devices": [OURS]}
UNREACHABLE = PortError("VCenterUnreachable", "connection refused", retryable=True)


def test_finalizer_comes_first_then_the_first_status_and_no_vcenter_call() -> None:
    world = World.make()
    result = world.run(body(finalizers=("other.io/keep",)))
    assert world.calls() == ["finalizers", "status"]
    assert world.log[0] == ("finalizers", ["other.io/keep", FINALIZER])
    status = world.statuses()[0]
    assert status["observedGeneration"] == 1
    assert condition(status, "Reconciling") == ("True", "AwaitingReconcile")
    assert condition(status, "Ready") == ("Unknown", "AwaitingReconcile")
    assert condition(status, "Stalled") == ("False", "AwaitingReconcile")
    # The finalizer's write moved resourceVersion on: this one carries no precondition.
    assert world.objects.versions == ["7", ""]
    assert result.requeue_after is None
    assert not result.failed


def test_a_status_that_exists_is_not_replaced_by_the_first_one() -> None:
    world = World.make()
    world.run(body(finalizers=(), status=ATTACHED))
    assert world.calls() == ["finalizers"]


def test_deleting_after_only_the_first_status_leaves_the_vm_alone() -> None:
    """The first status's Reconciling=True is not a call under way: nothing of ours can be on
    the VM, so deletion releases without reading or touching it."""
    first = World.make()
    first.run(body(finalizers=()))
    status = first.statuses()[0]
    world = World.make(observe(converged_vm()))
    world.run(body(deleting=True, status=status))
    assert world.calls() == ["finalizers"]


def test_powered_off_vm_gets_status_then_one_reconfigure_with_full_reservation() -> None:
    world = World.make()
    result = world.run(body())
    assert world.calls() == ["vms_for", "observe_vm", "status", "reconfigure"]
    change = world.arg("reconfigure")
    assert [a.name for a in change.adds] == ["gpu0"]
    assert change.memory_reservation_locked_to_max is True
    status = world.statuses()[0]
    # previous settings are recorded before the change that alters them
    # (mmio {}: the A100's 64-bit MMIO keys were absent, removed again on delete)
    assert status["previous"] == {"memoryReservationLockedToMax": False, "mmio": {}}
    assert condition(status, "Reconciling") == ("True", "Progressing")
    assert ("Normal", "Reconfigured") in world.events()
    assert result.requeue_after == CONFIRM_SECONDS


@pytest.mark.parametrize(
    ("policy", "first_calls", "power"),
    [
        ("PowerOff", ["status", "power"], PowerAction.POWER_OFF),
        ("ShutdownGuest", ["status", "power"], PowerAction.SHUTDOWN_GUEST),
        ("WaitForPowerOff", ["status"], None),
    ],
)
def test_powered_on_vm_power_tracking_is_written_before_the_power_call(
    policy: str, first_calls: list[str], power: PowerAction | None
) -> None:
    world = World.make(with_vm(observe(), power_state="poweredOn"))
    spec = {**body()["spec"], "powerPolicy": policy}
    world.run(body(spec=spec))
    assert world.calls()[2:] == first_calls
    status = world.statuses()[0]
    if power is None:
        assert "power" not in status
        assert condition(status, "PowerOffRequired") == ("True", "VMPoweredOn")
    else:
        assert world.arg("power") is power
        assert status["power"]["poweredOffByOperator"] is True
    assert "reconfigure" not in world.calls()  # never while powered on


def test_power_tracking_in_status_survives_a_restart_and_powers_the_vm_back_on() -> None:
    # The operator powered the VM off, then restarted: status is all it remembers.
    world = World.make(observe(converged_vm()))
    spec = {**body()["spec"], "powerPolicy": "PowerOff"}
    world.run(body(spec=spec, status={"power": {"poweredOffByOperator": True}}))
    assert ("power", PowerAction.POWER_ON) in world.log
    assert world.calls().index("status") < world.calls().index("power")


def test_powered_off_by_operator_vm_is_reconfigured_then_powered_on() -> None:
    world = World.make()
    spec = {**body()["spec"], "powerPolicy": "PowerOff"}
    world.run(body(spec=spec, status={"power": {"poweredOffByOperator": True}}))
    assert world.calls()[2:] == ["status", "reconfigure", "power"]
    assert world.arg("power") is PowerAction.POWER_ON


def test_resolve_sets_cluster_overrides_before_reconfiguring() -> None:
    cluster = ObservedCluster("GPU-Cluster", "domain-c7", ha_enabled=True, drs_enabled=True)
    world = World.make(with_vm(observe(), cluster=cluster, cpu_hot_add_enabled=True))
    spec = {**body()["spec"], "conflictPolicy": "Resolve"}
    world.run(body(spec=spec))
    assert world.calls()[2:] == ["status", "reconfigure_cluster", "reconfigure"]
    previous = world.statuses()[0]["previous"]
    assert previous["cpuHotAddEnabled"] is True
    assert previous["drsOverride"] == {"existed": False}


def test_converged_assignment_makes_no_write_at_all_the_second_time() -> None:
    world = World.make(observe(converged_vm()))
    world.run(body())
    assert world.calls() == ["vms_for", "observe_vm", "status"]
    written = world.statuses()[0]
    assert condition(written, "Ready") == ("True", "Reconciled")

    again = World.make(observe(converged_vm()))
    result = again.run(body(status=written))
    assert again.calls() == ["vms_for", "observe_vm"]  # no status, no vSphere write
    assert again.events() == []
    assert result.requeue_after is None


def test_a_stale_status_write_changes_nothing_in_vcenter() -> None:
    world = World.make()
    world.objects.fail_status = PortError("KubernetesAPIError", "409 Conflict", retryable=True)
    result = world.run(body())
    assert world.calls() == ["vms_for", "observe_vm", "status"]
    assert result.failed


def _message(status: dict[str, Any], type_: str) -> str:
    return str(next(c["message"] for c in status["conditions"] if c["type"] == type_))


@pytest.mark.parametrize("failing", ["vms_for", "observe_vm"])
def test_vcenter_errors_show_in_ready_and_are_retried(failing: str) -> None:
    world = World.make()
    world.vms.fail[failing] = UNREACHABLE
    result = world.run(body())
    assert result.failed
    status = world.statuses()[-1]
    assert condition(status, "Ready") == ("False", "VCenterUnreachable")
    # The tenant learns that the policy's vCenter is out of reach, not where it is or why:
    assert "connection refused" not in _message(status, "Ready")
    assert "gpu-hosts" in _message(status, "Ready")
    # the platform team reads the details on the policy.
    (event,) = world.events_on("HostPassthroughPolicy")
    assert event[:2] == ("Warning", "VCenterUnreachable")
    assert "connection refused" in event[2]
    assert "ml-team/trainer-gpu" in event[2]


@pytest.mark.parametrize(
    ("reason", "details"),
    [
        ("ConcurrentModification", "task VirtualMachine.reconfigVm failed: ConcurrentAccess"),
        ("InvalidPowerState", "task VirtualMachine.reconfigVm failed: the VM is powered on"),
    ],
)
def test_a_passing_fault_of_the_vm_itself_is_told_as_it_is(reason: str, details: str) -> None:
    """Someone edited the VM meanwhile: the tenant reads that, not 'vCenter unreachable'."""
    world = World.make()
    world.vms.fail["reconfigure"] = PortError(reason, details, retryable=True)
    result = world.run(body())
    assert result.failed
    status = world.statuses()[-1]
    assert condition(status, "Ready") == ("False", "ReconfigureFailed")
    assert _message(status, "Ready") == f"{reason}: {details}"
    assert world.events_on("HostPassthroughPolicy") == []  # nothing the tenant can't see


def test_a_passing_fault_of_unknown_kind_is_told_as_the_vcenter_out_of_reach() -> None:
    """Its text may name the server: the tenant gets the general words."""
    world = World.make()
    world.vms.fail["reconfigure"] = PortError(
        "VSphereError", "SystemError on https://vc.lab.local/sdk", retryable=True
    )
    world.run(body())
    message = _message(world.statuses()[-1], "Ready")
    assert message.startswith("VSphereError: The operator cannot reach the vCenter of")
    assert "vc.lab.local" not in message


@pytest.mark.parametrize(
    ("reason", "details"),
    [
        ("SecretNotFound", "Secret dpio-system/vc-prod not found"),
        ("SecretInvalid", "Secret dpio-system/vc-prod has no key password"),
        ("InvalidCredentials", "vc.lab.local refused the login of svc-dpio@vsphere.local"),
        ("TLSVerificationFailed", "certificate of vc.lab.local: unknown authority"),
        ("NotPermitted", "svc-dpio@vsphere.local lacks Host.Config.PciPassthru on vc.lab.local"),
    ],
)
def test_a_vcenter_problem_a_human_must_fix_stalls_and_is_looked_at_on_a_slow_timer(
    reason: str, details: str
) -> None:
    world = World.make()
    world.vms.fail["vms_for"] = PortError(reason, details, retryable=False)
    result = world.run(body())
    assert not result.failed
    assert result.requeue_after == STALLED_SECONDS
    status = world.statuses()[-1]
    assert condition(status, "Stalled") == ("True", reason)
    assert condition(status, "Ready") == ("False", reason)
    # Neither the Secret, nor the server, nor the account: those belong to the platform team,
    for word in ("vc-prod", "vc.lab.local", "svc-dpio", "password"):
        assert word not in _message(status, "Ready")
        assert word not in _message(status, "Stalled")
    # who finds them in the policy's Events.
    assert [(t, r) for t, r, _ in world.events_on("HostPassthroughPolicy")] == [("Warning", reason)]
    assert details in world.events_on("HostPassthroughPolicy")[0][2]


@pytest.mark.parametrize(("retryable", "stalled"), [(False, "True"), (True, "False")])
def test_a_refused_reconfigure_is_reported_with_its_fault(retryable: bool, stalled: str) -> None:
    """Retried with backoff either way; a fault retrying won't fix is also Stalled (kstatus
    Failed), a retryable one is not."""
    world = World.make()
    world.vms.fail["reconfigure"] = PortError("TaskFailed", "changeVersion", retryable=retryable)
    result = world.run(body())
    assert result.failed
    assert ("Warning", "ReconfigureFailed") in world.events()
    ready = next(c for c in world.statuses()[-1]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ReconfigureFailed")
    # A non-retryable fault's text is the tenant's to read; a retryable one's goes to admins.
    assert ("TaskFailed: changeVersion" in ready["message"]) is not retryable
    assert condition(world.statuses()[-1], "Stalled") == (stalled, "ReconfigureFailed")


@pytest.mark.parametrize(
    ("policies", "labels", "reason"),
    [
        ({}, {}, "PolicyNotFound"),
        (None, {}, "NotAConsumer"),  # the policy lists other namespaces only
    ],
)
def test_forbidden_asks_vcenter_nothing(
    policies: dict[str, Any] | None, labels: dict[str, dict[str, str]], reason: str
) -> None:
    world = World.make(labels=labels)
    if policies is not None:
        world.policies = policies
    else:
        world.policies["gpu-hosts"]["spec"]["consumers"] = [consumer(namespaces=["someone-else"])]
    world.run(body())
    assert world.calls() == ["status"]
    status = world.statuses()[0]
    assert condition(status, "Forbidden") == ("True", reason)
    assert condition(status, "Stalled") == ("True", reason)


@pytest.mark.parametrize(
    ("selector", "labels", "admitted", "requeue"),
    [
        ({"matchLabels": {"gpu": "yes"}}, {"gpu": "yes"}, True, CONFIRM_SECONDS),
        ({"matchLabels": {"gpu": "yes"}}, {"gpu": "no"}, False, None),
        # Labels not read yet: no selector matches, not even one NotIn would pass; the
        # assignment looks again soon (and when the namespace watch delivers them).
        ({"matchLabels": {"gpu": "yes"}}, None, False, CLAIM_CHECK_SECONDS),
        (
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["guest"]}]},
            None,
            False,
            CLAIM_CHECK_SECONDS,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["guest"]}]},
         {}, True, CONFIRM_SECONDS),
    ],
)  # fmt: skip
def test_namespace_selector_admits_by_label(
    selector: dict[str, Any],
    labels: dict[str, str] | None,
    admitted: bool,
    requeue: float | None,
) -> None:
    world = World.make(labels={"ml-team": labels})
    world.policies["gpu-hosts"]["spec"]["consumers"] = [
        consumer(namespaces=[], namespaceSelector=selector)
    ]
    result = world.run(body())
    assert ("reconfigure" in world.calls()) is admitted
    if not admitted:
        assert world.calls() == ["status"]  # vCenter is not asked
        assert condition(world.statuses()[0], "Forbidden") == ("True", "NotAConsumer")
    assert result.requeue_after == requeue


def _other(name: str, age_days: int, host: str | None) -> dict[str, Any]:
    status = {"observedGeneration": 1, "vm": {"host": host}} if host else None
    return body(name, age_days=age_days, status=status)


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize(
    ("other_age", "other_host", "wins", "requeue"),
    [
        (5, "esx01", False, None),  # older, same host: it wins
        (0, "esx01", True, CONFIRM_SECONDS),  # younger: we win
        (5, "esx02", True, CONFIRM_SECONDS),  # older but on another host
        (5, None, False, CLAIM_CHECK_SECONDS),  # older, not reconciled yet: wait and look again
    ],
)
def test_the_oldest_assignment_wins_a_device(
    order: int, other_age: int, other_host: str | None, wins: bool, requeue: float | None
) -> None:
    others = [_other("rival", other_age, other_host), _other("bystander", 9, "esx09")]
    world = World.make(assignments=others[order:] + others[:order])
    result = world.run(body(age_days=1))
    assert ("reconfigure" in world.calls()) is wins
    if not wins:
        ready = condition(world.statuses()[0], "DevicesUnavailable")
        assert ready == ("True", "ClaimedByAssignment")
    assert result.requeue_after == requeue


def test_deleting_without_our_finalizer_does_nothing() -> None:
    world = World.make()
    world.run(body(deleting=True, finalizers=("other.io/keep",)))
    assert world.log == []


def test_deleting_when_the_vm_is_gone_releases_the_finalizer() -> None:
    world = World.make(VMObservation(vm=None))
    world.run(body(deleting=True, finalizers=("other.io/keep", FINALIZER), status=ATTACHED))
    assert world.calls() == ["vms_for", "observe_vm", "finalizers"]
    assert world.log[-1] == ("finalizers", ["other.io/keep"])


STALE = PortError("KubernetesAPIError", "409 the object has been modified", retryable=True)


def test_a_finalizer_that_could_not_be_added_is_retried_with_nothing_else_done() -> None:
    world = World.make()
    world.objects.fail_finalizers = STALE
    result = world.run(body(finalizers=()))
    assert world.calls() == ["finalizers"]  # no first status, no vCenter call
    assert result.failed


def test_a_finalizer_that_could_not_be_released_is_retried() -> None:
    """A 409 (the copy was stale) or an API error: the run fails and goes again, rather than
    escape as an exception (the queue would log it as a bug)."""
    world = World.make(VMObservation(vm=None))
    world.objects.fail_finalizers = STALE
    result = world.run(body(deleting=True, status=ATTACHED))
    assert world.calls()[-1] == "finalizers"
    assert result.failed


def test_deleting_removes_our_device_and_restores_the_reservation_before_release() -> None:
    status = {"devices": [OURS], "previous": {"memoryReservationLockedToMax": False}}
    world = World.make(observe(converged_vm()))
    result = world.run(body(deleting=True, status=status))
    assert "finalizers" not in world.calls()
    change = world.arg("reconfigure")
    assert [r.key for r in change.removes] == [13000]
    assert change.memory_reservation_locked_to_max is False
    assert result.requeue_after == CONFIRM_SECONDS

    # The next look finds the VM as it was: the finalizer goes.
    clean = World.make(observe(vm()))
    clean.run(body(deleting=True, status=status))
    assert clean.calls()[-1] == "finalizers"


def test_deleting_a_running_vm_waits_for_power_off_and_says_so() -> None:
    world = World.make(observe(converged_vm(power_state="poweredOn")))
    world.run(body(deleting=True, status=ATTACHED))
    assert "reconfigure" not in world.calls()
    assert "finalizers" not in world.calls()
    assert condition(world.statuses()[0], "PowerOffRequired") == ("True", "VMPoweredOn")


def test_deleting_leaves_a_device_it_found_attached() -> None:
    # The device was on the VM before the assignment came (adopted: added false): it stays,
    # and so does the reservation lock the assignment set: a VM with a passthrough device
    # does not power on without its full memory reserved.
    found = {**OURS, "added": False}
    status = {"devices": [found], "previous": {"memoryReservationLockedToMax": False}}
    world = World.make(observe(converged_vm()))
    world.run(body(deleting=True, status=status))
    assert "reconfigure" not in world.calls()
    assert "power" not in world.calls()
    assert world.log[-1] == ("finalizers", [])


def test_deleting_after_the_policy_is_gone_touches_no_vcenter_and_says_so() -> None:
    # Without the policy neither the vCenter nor the namespace's right to the VM is known:
    # not even the operator's default vCenter is asked; the finalizer goes with a Warning.
    world = World.make(observe(converged_vm()))
    world.policies = {}
    result = world.run(
        body(deleting=True, finalizers=("other.io/keep", FINALIZER), status=ATTACHED)
    )
    assert world.calls() == ["finalizers"]
    assert world.log[-1] == ("finalizers", ["other.io/keep"])
    (event,) = world.events_on("VMDeviceAssignment")
    assert event[:2] == ("Warning", "CleanupSkipped")
    assert "gpu-hosts" in event[2]
    assert not result.failed


def test_devices_attached_by_hand_elsewhere_are_in_use() -> None:
    observed = observe(attached_to_vms={"0000:3b:00.0": ("other-vm",)})
    world = World.make(observed)
    world.run(body())
    assert "reconfigure" not in world.calls()
    assert condition(world.statuses()[0], "DevicesUnavailable") == ("True", "InUseByVM")


def test_ready_flip_is_announced_once() -> None:
    world = World.make(observe(converged_vm(pci_devices=(attached(),))))
    world.run(body())
    assert ("Normal", "Reconciled") in world.events()
    assert [e for e in world.events() if e[0] == "Warning"] == []


def test_power_tracking_is_cleared_with_an_explicit_null_once_the_vm_runs() -> None:
    # A JSON merge patch keeps fields it does not mention: forgetting must be said (null).
    world = World.make(observe(converged_vm(power_state="poweredOn")))
    old = {"power": {"poweredOffByOperator": True}, "vmotion": {"gen2Active": True}}
    world.run(body(status=old))
    status = world.statuses()[0]
    assert status["power"] is None
    assert status["vmotion"]["gen2Active"] is None  # nested objects merge too
    assert status["vmotion"]["reason"] == "StaticPassthrough"
    assert "power" not in world.calls()


@pytest.mark.parametrize(
    ("status", "touches_vcenter"),
    [
        (None, False),  # never reconciled
        ({"conditions": [{"type": "Forbidden", "status": "True", "reason": "NotAConsumer",
                          "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}, False),
        ({"conditions": [{"type": "Reconciling", "status": "True", "reason": "Progressing",
                          "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}, True),
        ({"previous": {"memoryReservationLockedToMax": False}}, True),
        ({"power": {"poweredOffByOperator": True}}, True),
        (ATTACHED, True),
    ],
)  # fmt: skip
def test_deleting_touches_the_vm_only_if_this_assignment_may_have_changed_it(
    status: dict[str, Any] | None, touches_vcenter: bool
) -> None:
    # The VM carries a device matching the spec, attached by someone else.
    world = World.make(observe(converged_vm(power_state="poweredOn")))
    spec = {**body()["spec"], "powerPolicy": "PowerOff"}
    world.run(body(deleting=True, spec=spec, status=status))
    assert ("observe_vm" in world.calls()) is touches_vcenter
    if not touches_vcenter:
        assert world.calls() == ["finalizers"]


DYNAMIC_SPEC = {
    "policyRef": {"name": "gpu-hosts"},
    "vm": {"name": "ml-trainer-01"},
    "devices": [{"name": "gpu0", "dynamic": {"vendorID": "10de", "deviceID": "20b5"}}],
}


def test_a_bios_vm_with_a_large_bar_gpu_gets_no_vcenter_call_and_says_why() -> None:
    world = World.make(observe(vm(firmware="bios")))
    world.run(body())
    assert world.calls() == ["vms_for", "observe_vm", "status"]
    (status,) = world.statuses()
    assert condition(status, "Stalled") == ("True", "FirmwareNotEFI")
    assert condition(status, "Ready")[0] == "False"
    assert status["vm"]["firmware"] == "bios"
    assert status["vm"]["mmioSizeGB"] == 128


def test_the_hardware_upgrade_is_recorded_then_made_alone_and_announced() -> None:
    world = World.make(observe(vm(hardware_version="vmx-15")))
    result = world.run(body(spec={**DYNAMIC_SPEC, "upgradeHardwareVersion": True}))
    assert world.calls() == ["vms_for", "observe_vm", "status", "upgrade"]
    change = world.arg("upgrade")
    assert (change.version, change.previous) == ("vmx-17", "vmx-15")
    # recorded before the call
    assert world.statuses()[0]["previous"] == {"hardwareVersion": "vmx-15"}
    (event,) = [e for e in world.events() if e[1] == "HardwareUpgraded"]
    assert event[0] == "Normal"
    assert result.requeue_after is not None


def test_without_opting_in_an_old_vm_is_refused_for_dynamic_directpath() -> None:
    world = World.make(observe(vm(hardware_version="vmx-15")))
    world.run(body(spec=DYNAMIC_SPEC))
    assert world.calls() == ["vms_for", "observe_vm", "status"]
    assert condition(world.statuses()[0], "Stalled") == ("True", "HardwareVersionTooOld")


def test_a_device_on_another_vm_is_told_once_though_three_conditions_flip() -> None:
    """Ready=False, Stalled=True and DevicesUnavailable=True, all InUseByVM with one message:
    one Warning Event, not three."""
    world = World.make(observe(attached_to_vms={"0000:3b:00.0": ("other-vm",)}))
    world.run(body())
    status = world.statuses()[-1]
    assert condition(status, "Stalled") == ("True", "InUseByVM")
    assert condition(status, "DevicesUnavailable") == ("True", "InUseByVM")
    assert [e for e in world.events() if e[1] == "InUseByVM"] == [("Warning", "InUseByVM")]
