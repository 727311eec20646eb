"""The full examples (samples.py) parse into the models, with the values and defaults a
reconciler reads."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.api.samples import ASSIGNMENT, POLICY, assignment_spec, consumer, policy_spec

from dpio.api import (
    ApplyNow,
    ConditionStatus,
    ConflictPolicy,
    DeletionPolicy,
    DeviceKind,
    DeviceState,
    HostPassthroughPolicy,
    HostPassthroughPolicySpec,
    PowerPolicy,
    PowerState,
    RebootPhase,
    RebootPolicy,
    VMDeviceAssignment,
    VMDeviceAssignmentSpec,
    normalize_pci_address,
    parse_duration,
)
from dpio.api.conditions import REBOOT_REQUIRED


def test_policy_example_parses_spec_and_status() -> None:
    policy = HostPassthroughPolicy.model_validate(POLICY)

    assert policy.metadata.name == "gpu-hosts"
    assert policy.metadata.generation == 3
    assert policy.spec.vcenter is not None
    assert policy.spec.vcenter.secret_ref.name == "vcenter-prod"
    assert policy.spec.hosts.name_pattern == "^esx-gpu-"
    assert [d.vendor_id for d in policy.spec.devices] == [None, "10de", None]
    assert policy.spec.devices[1].hardware_label == "a100"
    ml, web = policy.spec.consumers
    assert ml.namespace_selector is not None
    assert ml.namespace_selector.match_expressions[0].values == ["ml", "vision"]
    assert ml.vms.resource_pools == ["/DC1/host/GPU-Cluster/Resources/ml-team"]
    assert ml.power_policies == [PowerPolicy.WAIT_FOR_POWER_OFF, PowerPolicy.SHUTDOWN_GUEST,
                                 PowerPolicy.POWER_OFF]  # fmt: skip
    assert ml.max_devices == 8
    assert (web.vms.folders, web.vms.resource_pools) == (["/DC1/vm/web"], [])
    assert web.conflict_policies == [ConflictPolicy.BLOCK]
    assert web.max_devices is None
    host = policy.status.hosts[0]
    assert (host.passthrough_supported, host.reboot_required) == (True, True)
    assert host.devices[0].state is DeviceState.PENDING_REBOOT
    assert host.devices[0].dependent_devices == ["0000:3b:00.1"]
    assert host.rolling_reboot is not None
    assert host.rolling_reboot.phase is RebootPhase.DRAINING
    assert policy.status.summary.pending_reboot == 1
    reboot = policy.status.conditions[1]
    assert (reboot.type, reboot.status) == (REBOOT_REQUIRED, ConditionStatus.TRUE)
    assert reboot.last_transition_time == datetime(2025, 1, 2, 3, 5, tzinfo=UTC)


def test_assignment_example_parses_spec_and_status() -> None:
    assignment = VMDeviceAssignment.model_validate(ASSIGNMENT)

    assert assignment.metadata.namespace == "ml-team"
    assert assignment.spec.policy_ref.name == "gpu-hosts"
    gpu0, gpu1 = assignment.spec.devices
    assert gpu0.pci is not None
    assert gpu0.pci.address == "0000:3b:00.0"
    assert gpu1.dynamic is not None
    assert (gpu1.dynamic.vendor_id, gpu1.dynamic.device_id, gpu1.dynamic.label) == (
        "10de",
        "20b5",
        "a100",
    )
    assert assignment.spec.network_direct_path[0].adapter == "Network adapter 1"
    status = assignment.status
    assert status.vm is not None
    assert status.vm.power_state is PowerState.POWERED_OFF
    assert status.vm.instance_uuid == "5003a1b2-0000-4000-8000-000000000042"
    assert status.vm.vcenter == "8b5bd3c1-6a3c-4c5d-9d3e-0a1b2c3d4e5f"
    assert parse_duration(assignment.spec.shutdown_timeout) == timedelta(minutes=10)
    assert status.devices[0].kind is DeviceKind.PCI
    assert status.devices[0].key == 13000
    assert status.devices[0].added is True
    assert "vMotion" in status.unavailable_features
    assert status.feature_conflicts[0].resolvable is False
    assert status.previous is not None
    assert status.previous.cpu_hot_add_enabled is True
    assert status.previous.nested_hv_enabled is None  # not recorded: nothing to restore


@pytest.mark.parametrize("body", [POLICY, ASSIGNMENT], ids=["hpp", "vmda"])
def test_object_without_status_gets_an_empty_status(body: dict[str, Any]) -> None:
    fresh = copy.deepcopy(body)
    del fresh["status"]
    model = type_of(fresh).model_validate(fresh)

    assert model.status.observed_generation is None
    assert model.status.conditions == []


def type_of(body: dict[str, Any]) -> type[HostPassthroughPolicy] | type[VMDeviceAssignment]:
    return HostPassthroughPolicy if body["kind"] == "HostPassthroughPolicy" else VMDeviceAssignment


def test_policy_defaults_are_design_defaults() -> None:
    spec = HostPassthroughPolicySpec.model_validate(policy_spec())

    assert spec.vcenter is None
    assert spec.exclusive is False
    assert spec.apply_now is ApplyNow.AUTO
    assert spec.reboot.policy is RebootPolicy.MANUAL
    assert (spec.reboot.max_unavailable, spec.reboot.drain_timeout) == (1, "30m")
    assert spec.allow_devices_in_use is False
    assert spec.deletion_policy is DeletionPolicy.RETAIN
    assert spec.consumers == []  # nobody may use the policy
    # An entry that says no more than namespaces and VMs allows the least: wait, and block.
    (entry,) = HostPassthroughPolicySpec.model_validate(
        policy_spec(consumers=[consumer()])
    ).consumers
    assert entry.power_policies == [PowerPolicy.WAIT_FOR_POWER_OFF]
    assert entry.conflict_policies == [ConflictPolicy.BLOCK]
    assert (entry.namespace_selector, entry.max_devices) == (None, None)


def test_assignment_defaults_are_design_defaults() -> None:
    spec = VMDeviceAssignmentSpec.model_validate(assignment_spec())

    assert spec.power_policy is PowerPolicy.WAIT_FOR_POWER_OFF
    assert spec.restore_power_state is True
    assert parse_duration(spec.shutdown_timeout) == timedelta(minutes=5)
    assert spec.conflict_policy.value == "Block"
    assert spec.network_direct_path == []


def test_models_are_frozen() -> None:
    spec = HostPassthroughPolicySpec.model_validate(policy_spec())

    with pytest.raises(ValueError, match="frozen"):
        spec.exclusive = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("2h0m5s", timedelta(hours=2, seconds=5)),
    ],
)
def test_parse_duration_reads_go_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "30 m", "m", "-5m", "1d"])
def test_parse_duration_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("address", "normalized"), [("0000:3B:00.0", "0000:3b:00.0"), ("0000:af:1f.7", "0000:af:1f.7")]
)
def test_addresses_compare_in_lower_case(address: str, normalized: str) -> None:
    assert normalize_pci_address(address) == normalized
