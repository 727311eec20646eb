"""A suspended HostPassthroughPolicy (spec.suspend, or the operator's --dry-run) against fakes
of its ports: it reads and reports, never writes to vCenter, and its deletion waits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import GPU, NOW, gpu_host
from tests.unit.reconcile.policy.test_policy_reconciler import (
    DeletingObjects,
    FakeHosts,
    FakeObjects,
    FakeVCenter,
    body,
    conditions,
)

from dpio.planner import ObservedInventory, RebootAction
from dpio.reconcile.policy.reconciler import PolicyReconciler
from dpio.reconcile.queue import Result


@dataclass
class RecordingHosts(FakeHosts):
    """Every write the reconciler makes: passthrough updates and reboot steps."""

    started: list[RebootAction] = field(default_factory=list)

    async def start(self, action: RebootAction) -> None:
        self.started.append(action)


def suspended(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    result = body(status)
    result["spec"].update(suspend=True, **spec)
    return result


def message(objects: FakeObjects, type_: str) -> str:
    assert objects.status is not None
    return str(next(c["message"] for c in objects.status["conditions"] if c["type"] == type_))


@pytest.mark.parametrize(
    ("obj", "dry_run", "reason"),
    [
        pytest.param(suspended(), False, "Suspended", id="spec-suspend"),
        pytest.param(body(None), True, "DryRun", id="dry-run"),
    ],
)
def test_a_suspended_policy_reads_and_reports_but_writes_nothing(
    obj: dict[str, Any], dry_run: bool, reason: str
) -> None:
    hosts = RecordingHosts(ObservedInventory(hosts=(gpu_host(enabled=False),)))
    objects = FakeObjects()
    reconciler = PolicyReconciler(
        FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW, dry_run=dry_run
    )

    got = asyncio.run(reconciler(obj))

    assert (hosts.updates, hosts.started) == ([], [])
    assert got == Result()  # no call made: nothing to confirm
    assert conditions(objects)["Suspended"] == ("True", reason)
    assert conditions(objects)["Ready"] == ("False", reason)
    assert f"update passthrough on esx01 (enable {GPU})" in message(objects, "Suspended")
    assert ("Warning", reason) in objects.events  # Ready turned False, for this reason


def test_a_suspended_rolling_policy_starts_no_reboot_step() -> None:
    # Enabled, not active, reboot.policy Rolling: the next step would be maintenance mode.
    hosts = RecordingHosts(ObservedInventory(hosts=(gpu_host(enabled=True),)))
    objects = FakeObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW)

    asyncio.run(reconciler(suspended(reboot={"policy": "Rolling"})))

    assert (hosts.updates, hosts.started) == ([], [])
    assert "put esx01 in maintenance mode" in message(objects, "Suspended")


def test_a_suspended_reboot_in_flight_starts_nothing_and_sets_no_drain_timer() -> None:
    # esx01 is in maintenance mode on the operator's request, rebooted: next, exit it.
    back = gpu_host(enabled=True, active=True, in_maintenance_mode=True, boot_time=NOW)
    hosts = RecordingHosts(ObservedInventory(hosts=(back,)))
    objects = FakeObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW)
    since = (NOW - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    record = {"phase": "Rebooting", "since": since, "enteredByOperator": True}
    status = {"observedGeneration": 1, "hosts": [{"name": "esx01", "rollingReboot": record}]}

    got = asyncio.run(reconciler(suspended(status, reboot={"policy": "Rolling"})))

    assert (hosts.updates, hosts.started) == ([], [])
    assert got == Result()  # the watch, not a timer, brings it back
    assert "take esx01 out of maintenance mode" in message(objects, "Suspended")
    assert objects.status is not None
    (host,) = objects.status["hosts"]
    assert host["rollingReboot"] == record
    assert "spec.suspend is true" in host["message"]


@pytest.mark.parametrize("dry_run", [False, True], ids=["spec-suspend", "dry-run"])
def test_a_suspended_deletion_that_would_disable_devices_waits(dry_run: bool) -> None:
    hosts = RecordingHosts(ObservedInventory(hosts=(gpu_host(enabled=True, active=True),)))
    objects = DeletingObjects()
    reconciler = PolicyReconciler(
        FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW, dry_run=dry_run
    )
    policy = suspended(deletionPolicy="Disable") if not dry_run else body(None)
    policy["spec"]["deletionPolicy"] = "Disable"
    policy["metadata"]["deletionTimestamp"] = "2025-01-02T00:00:00Z"

    assert asyncio.run(reconciler(policy)) == Result()

    assert objects.finalizers is None  # kept: the cleanup waits
    assert hosts.updates == []
    assert "Deletion waits" in message(objects, "Suspended")
    assert objects.status is not None
    assert objects.status["observedGeneration"] == 1  # the spec that says suspend was seen
    assert ("Warning", "CleanupSuspended") in objects.events

    # Resumed (suspend false, or the operator without --dry-run): the cleanup runs.
    policy["spec"]["suspend"] = False
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW)
    assert asyncio.run(reconciler(policy)) == Result()
    assert [c.id for u in hosts.updates for c in u.changes] == [GPU]
    assert objects.finalizers == []


def test_a_suspended_retain_policy_deletes_without_vcenter() -> None:
    hosts = RecordingHosts(ObservedInventory(hosts=(gpu_host(enabled=True, active=True),)))
    objects = DeletingObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW)
    policy = suspended()  # deletionPolicy Retain (the default): no write to hold back
    policy["metadata"]["deletionTimestamp"] = "2025-01-02T00:00:00Z"

    assert asyncio.run(reconciler(policy)) == Result()

    assert objects.finalizers == []
    assert hosts.updates == []


def test_a_suspended_reboot_still_under_way_is_not_ready() -> None:
    # esx01 was sent into its reboot and is not back yet: no step is due, but it is not done.
    down = gpu_host(enabled=True, in_maintenance_mode=True, connection_state="notResponding")
    hosts = RecordingHosts(ObservedInventory(hosts=(down,)))
    objects = FakeObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, lambda: [], clock=lambda: NOW)
    since = (NOW - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    record = {"phase": "Rebooting", "since": since, "enteredByOperator": True}
    status = {"observedGeneration": 1, "hosts": [{"name": "esx01", "rollingReboot": record}]}

    asyncio.run(reconciler(suspended(status, reboot={"policy": "Rolling"})))

    assert (hosts.updates, hosts.started) == ([], [])
    assert conditions(objects)["Ready"] == ("False", "Suspended")
    assert "continue the rolling reboot of esx01 (Rebooting)" in message(objects, "Suspended")
