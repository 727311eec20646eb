"""Status and conditions of a HostPassthroughPolicy, from observation to what gets written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import GPU, NIC, NOW, X710, dev, gpu_host, host, info, spec

from dpio.api.conditions import (
    CERTIFICATE_VERIFIED,
    DEGRADED,
    DEVICE_IN_USE,
    INSECURE_CONNECTION,
    READY,
    REBOOT_REQUIRED,
    RECONCILING,
    STALLED,
    SUSPENDED,
    VCENTER_UNREACHABLE,
    ConditionStatus,
)
from dpio.api.policy import (
    DeviceSelector,
    DeviceState,
    HostPassthroughPolicySpec,
    HostPassthroughPolicyStatus,
    RebootPolicy,
)
from dpio.planner.conditions import find, status_changed
from dpio.planner.host.plan import plan_policy
from dpio.planner.host.status import policy_status, vcenter_unreachable_status
from dpio.planner.observed import ObservedHost, ObservedInventory

T, F = ConditionStatus.TRUE, ConditionStatus.FALSE


def reconcile(
    hosts: tuple[ObservedHost, ...],
    previous: HostPassthroughPolicyStatus | None = None,
    policy: HostPassthroughPolicySpec | None = None,
    **spec_fields: Any,
) -> HostPassthroughPolicyStatus:
    chosen = policy or spec(hosts={"names": [h.name for h in hosts]}, **spec_fields)
    result = plan_policy(
        name="gpu-hosts",
        creation_timestamp=NOW,
        spec=chosen,
        inventory=ObservedInventory(hosts=hosts),
        now=NOW,
        previous=previous,
    )
    return policy_status(
        result, reboot_policy=chosen.reboot.policy, previous=previous, generation=4, now=NOW
    )


def statuses(status: HostPassthroughPolicyStatus) -> dict[str, tuple[ConditionStatus, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (
            (gpu_host(enabled=True, active=True),),
            {
                READY: (T, "Reconciled"),
                RECONCILING: (F, "Reconciled"),
                STALLED: (F, "Reconciled"),
                REBOOT_REQUIRED: (F, "AsExpected"),
                DEGRADED: (F, "AsExpected"),
            },
        ),
        (
            (gpu_host(),),  # enabling now, takes effect after a (manual) reboot
            {
                READY: (F, "PendingReboot"),
                RECONCILING: (T, "Progressing"),
                STALLED: (F, "Progressing"),
                REBOOT_REQUIRED: (T, "PendingReboot"),
                DEGRADED: (F, "AsExpected"),
            },
        ),
        (
            (gpu_host(enabled=True),),  # nothing to do but wait for a reboot
            {
                READY: (F, "PendingReboot"),
                RECONCILING: (F, "PendingReboot"),
                STALLED: (F, "PendingReboot"),
                REBOOT_REQUIRED: (T, "PendingReboot"),
                DEGRADED: (F, "AsExpected"),
            },
        ),
        (
            (
                host(
                    "esx01",
                    (dev(NIC, X710), dev(GPU)),
                    (info(NIC), info(GPU)),
                    in_use_by_host={GPU: "vmnic4 carries vmk1"},
                ),
            ),
            {
                READY: (F, DEVICE_IN_USE),
                RECONCILING: (F, DEVICE_IN_USE),
                STALLED: (T, DEVICE_IN_USE),  # a human frees it
                REBOOT_REQUIRED: (F, "AsExpected"),
                DEGRADED: (T, DEVICE_IN_USE),
            },
        ),
    ],
)
def test_conditions(
    hosts: tuple[ObservedHost, ...], expected: dict[str, tuple[ConditionStatus, str]]
) -> None:
    status = reconcile(hosts)
    assert statuses(status) == {
        **expected,
        INSECURE_CONNECTION: (F, CERTIFICATE_VERIFIED),
        SUSPENDED: (F, "AsExpected"),
    }
    assert status.observed_generation == 4
    assert all(c.observed_generation == 4 for c in status.conditions)


def test_reboot_required_names_the_hosts() -> None:
    status = reconcile((gpu_host("esx01", enabled=True), gpu_host("esx02", enabled=True)))
    reboot = find(status.conditions, REBOOT_REQUIRED)
    assert reboot is not None
    assert "esx01" in reboot.message
    assert "esx02" in reboot.message
    assert status.summary.pending_reboot == 2


def test_host_and_device_status_and_summary() -> None:
    hosts = (
        host(
            "esx01",
            (dev(GPU), dev(NIC, X710)),
            (info(GPU, enabled=True, active=True, label="a100"), info(NIC)),
        ),
        gpu_host("esx02"),
    )
    status = reconcile(
        hosts, devices=[{"vendorID": "10de", "deviceID": "20b5", "hardwareLabel": "a100"}]
    )
    first = status.hosts[0]
    assert (first.name, first.passthrough_supported, first.reboot_required) == (
        "esx01",
        True,
        False,
    )
    row = first.devices[0]
    assert (row.address, row.vendor_id, row.device_id, row.name) == (
        GPU,
        "10de",
        "20b5",
        "GA100 [A100]",
    )
    assert (row.capable, row.enabled, row.active, row.hardware_label, row.state) == (
        True,
        True,
        True,
        "a100",
        DeviceState.ACTIVE,
    )
    assert status.hosts[1].devices[0].state is DeviceState.PENDING_REBOOT
    assert status.summary.model_dump() == {
        "hosts": 2,
        "devices": 2,
        "active": 1,
        "pending_reboot": 1,
    }


def test_steady_state_writes_nothing() -> None:
    hosts = (gpu_host(enabled=True, active=True),)
    first = reconcile(hosts)
    read_back = HostPassthroughPolicyStatus.model_validate(
        first.model_dump(mode="json", by_alias=True)
    )
    second = reconcile(hosts, previous=read_back)
    assert not status_changed(read_back, second)
    assert status_changed(None, second)
    changed = reconcile((gpu_host(enabled=True),), previous=read_back)
    assert status_changed(read_back, changed)


def test_ready_transition_time_kept_across_reconciles() -> None:
    hosts = (gpu_host(enabled=True, active=True),)
    first = reconcile(hosts)
    later = plan_policy(
        name="gpu-hosts",
        creation_timestamp=NOW,
        spec=spec(),
        inventory=ObservedInventory(hosts=hosts),
        now=NOW + timedelta(hours=1),
    )
    second = policy_status(
        later,
        reboot_policy=RebootPolicy.MANUAL,
        previous=first,
        generation=5,
        now=NOW + timedelta(hours=1),
    )
    ready = find(second.conditions, READY)
    assert ready is not None
    assert ready.last_transition_time == NOW
    assert ready.observed_generation == 5


def test_spec_the_planner_cannot_use_is_stalled() -> None:
    # Admission rejects this; a spec that slips through (older CRD) must not crash the planner.
    bad = spec().model_copy(
        update={
            "devices": [
                DeviceSelector.model_construct(
                    address=None,
                    vendor_id=None,
                    device_id=None,
                    name_pattern="(",
                    hardware_label=None,
                )
            ]
        }
    )
    previous = reconcile((gpu_host(enabled=True, active=True),))
    status = reconcile((gpu_host(),), previous=previous, policy=bad)
    assert statuses(status)[STALLED] == (T, "InvalidSpec")
    assert statuses(status)[READY] == (F, "InvalidSpec")
    assert status.hosts == previous.hosts  # nothing observed against this spec


def test_vcenter_unreachable_keeps_what_was_known() -> None:
    previous = reconcile((gpu_host(enabled=True),))
    status = vcenter_unreachable_status(previous, "connection refused", 4, NOW)
    assert statuses(status)[READY] == (F, VCENTER_UNREACHABLE)
    assert statuses(status)[DEGRADED] == (T, VCENTER_UNREACHABLE)
    assert statuses(status)[REBOOT_REQUIRED] == (T, "PendingReboot")
    assert status.hosts == previous.hosts


def test_rolling_reboot_is_recorded_in_host_status() -> None:
    status = reconcile((gpu_host(enabled=True),), reboot={"policy": "Rolling"})
    record = status.hosts[0].rolling_reboot
    assert record is not None
    assert record.entered_by_operator
    assert statuses(status)[RECONCILING] == (T, "Progressing")
    assert statuses(status)[REBOOT_REQUIRED] == (T, "RollingReboot")
    # Next reconcile, host in maintenance mode: RebootHost, and the record moves on.
    again = reconcile(
        (gpu_host(enabled=True, in_maintenance_mode=True),),
        previous=status,
        reboot={"policy": "Rolling"},
    )
    moved = again.hosts[0].rolling_reboot
    assert moved is not None
    assert moved.phase.value == "Rebooting"


@pytest.mark.parametrize(("phase", "degraded"), [("Rebooting", F), (None, T)])
def test_host_down_while_rebooting_is_not_degraded(
    phase: str | None, degraded: ConditionStatus
) -> None:
    previous = HostPassthroughPolicyStatus.model_validate(
        {
            "hosts": [
                {
                    "name": "esx01",
                    "rollingReboot": {
                        "phase": phase,
                        "since": NOW.isoformat(),
                        "enteredByOperator": True,
                    },
                }
            ]
        }
        if phase
        else {}
    )
    down = gpu_host(enabled=True, in_maintenance_mode=True, connection_state="notResponding")
    status = reconcile((down,), previous=previous, reboot={"policy": "Rolling"})
    assert statuses(status)[DEGRADED][0] is degraded


@pytest.mark.parametrize(
    ("selector", "device", "expected"),
    [
        # The table of well-known devices: an A100 80GB maps 128 GB.
        ({"vendorID": "10de", "deviceID": "20b5"}, dev(GPU), (128, "KnownDevices")),
        # The selector's mmioSizeGB wins over the table.
        ({"address": GPU, "mmioSizeGB": 96}, dev(GPU), (96, "Spec")),
        # Neither knows the X710: unknown, not 0.
        ({"address": NIC}, dev(NIC, X710), (None, None)),
        ({"namePattern": "X710", "mmioSizeGB": 0}, dev(NIC, X710), (0, "Spec")),
    ],
)
def test_device_status_shows_the_memory_each_device_maps(
    selector: dict[str, Any], device: Any, expected: tuple[int | None, str | None]
) -> None:
    the_host = host("esx01", (device,), (info(device.id, enabled=True, active=True),))
    status = reconcile((the_host,), devices=[selector])
    (row,) = status.hosts[0].devices
    source = row.mmio_size_source.value if row.mmio_size_source else None
    assert (row.mmio_size_gb, source) == expected
