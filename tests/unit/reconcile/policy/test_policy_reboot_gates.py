"""The reconciler's side of the cluster budget and of reboot windows: two policies on one
cluster through one reconciler, and when a waiting policy is looked at again."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.unit.planner.builders import NOW, gpu_host
from tests.unit.reconcile.policy.test_policy_reconciler import FakeObjects, FakeVCenter, body

from dpio.planner import ObservedInventory, RebootAction, UpdatePassthruConfig
from dpio.planner.host.steps import HostTask
from dpio.reconcile.constants import CONFIRM_SECONDS
from dpio.reconcile.policy.reconciler import DRAIN_CHECK_SECONDS, PolicyReconciler
from dpio.reconcile.policy.reservations import RebootReservations

# NOW is Wednesday 2025-01-01 12:00 UTC; this window opens at 21:00 UTC (22:00 in Berlin).
CLOSED_NOW = {"days": ["Wed"], "start": "22:00", "duration": "4h", "timeZone": "Europe/Berlin"}


@dataclass
class RecordingHosts:
    """Every host of cluster gpu needs a reboot; the tasks the reconciler starts are kept."""

    inventory: ObservedInventory
    started: list[RebootAction] = field(default_factory=list)
    insecure: bool = False

    async def read_inventory(self) -> ObservedInventory:
        return self.inventory

    async def update_passthru_config(self, update: UpdatePassthruConfig) -> None:
        raise AssertionError(f"nothing to update: {update}")

    async def start(self, action: RebootAction) -> None:
        self.started.append(action)

    async def recent_tasks(
        self, host_morefs: Collection[str]
    ) -> Mapping[str, tuple[HostTask, ...]]:
        raise AssertionError(f"no recent tasks expected: {host_morefs}")


def policy(name: str, host: str, **reboot: Any) -> dict[str, Any]:
    result = body(None)
    result["metadata"] = dict(result["metadata"], name=name, uid=name)
    result["spec"]["hosts"] = {"names": [host]}
    result["spec"]["reboot"] = {"policy": "Rolling", **reboot}
    return result


INVENTORY = ObservedInventory(
    hosts=(gpu_host("esx01", enabled=True, cluster="gpu"),
           gpu_host("esx02", enabled=True, cluster="gpu"))
)  # fmt: skip


def test_two_policies_on_one_cluster_take_one_slot_between_them() -> None:
    hosts = RecordingHosts(INVENTORY)
    bodies = [policy("a", "esx01"), policy("b", "esx02")]
    objects = {"a": FakeObjects(), "b": FakeObjects()}

    def reconciler(name: str) -> PolicyReconciler:
        return PolicyReconciler(
            FakeVCenter(hosts),  # type: ignore[arg-type]
            objects[name],
            lambda: bodies,
            clock=lambda: NOW,
            reservations=shared,
        )

    shared = RebootReservations()  # one reconciler per kind in the operator: one of these

    async def both() -> list[Any]:
        return list(await asyncio.gather(reconciler("a")(bodies[0]), reconciler("b")(bodies[1])))

    results = asyncio.run(both())
    # vCenter does not show esx01 draining yet: only the reservation keeps b from a second slot.
    assert [(type(a).__name__, a.host) for a in hosts.started] == [
        ("EnterMaintenanceMode", "esx01")
    ]
    assert results[0].requeue_after == CONFIRM_SECONDS
    assert results[1].requeue_after == DRAIN_CHECK_SECONDS  # a slot frees without b's hosts moving
    status = objects["b"].status
    assert status is not None
    reboot = next(c for c in status["conditions"] if c["type"] == "RebootRequired")
    assert reboot["reason"] == "ClusterBudgetExhausted"
    assert "unavailable in cluster gpu: 1 (esx01), maxUnavailable is 1" in reboot["message"]


def test_outside_the_windows_nothing_starts_and_the_reconcile_comes_back_when_one_opens() -> None:
    hosts = RecordingHosts(INVENTORY)
    objects = FakeObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, list, clock=lambda: NOW)  # type: ignore[arg-type]

    result = asyncio.run(reconciler(policy("a", "esx01", windows=[CLOSED_NOW])))

    assert hosts.started == []
    assert result.requeue_after == 9 * 3600  # 12:00 -> 21:00 UTC
    assert objects.status is not None
    assert objects.status["reboot"] == {"windowOpen": False, "nextWindow": "2025-01-01T21:00:00Z"}


def test_inside_a_window_the_reboot_starts() -> None:
    hosts = RecordingHosts(INVENTORY)
    objects = FakeObjects()
    reconciler = PolicyReconciler(
        FakeVCenter(hosts),  # type: ignore[arg-type]
        objects,
        list,
        clock=lambda: NOW.replace(hour=21, minute=30),
    )
    asyncio.run(reconciler(policy("a", "esx01", windows=[CLOSED_NOW])))
    assert [a.host for a in hosts.started] == ["esx01"]
    assert objects.status is not None
    assert objects.status["reboot"] == {"windowOpen": True, "windowCloses": "2025-01-02T01:00:00Z"}


def test_status_reboot_is_removed_once_no_host_waits() -> None:
    """Status is written as a merge patch: a field that went away is written as null."""
    hosts = RecordingHosts(
        ObservedInventory(hosts=(gpu_host("esx01", enabled=True, active=True, cluster="gpu"),))
    )
    objects = FakeObjects()
    reconciler = PolicyReconciler(FakeVCenter(hosts), objects, list, clock=lambda: NOW)  # type: ignore[arg-type]
    before = {"reboot": {"windowOpen": False, "nextWindow": "2025-01-01T21:00:00Z"}}

    asyncio.run(reconciler(policy("a", "esx01", windows=[CLOSED_NOW]) | {"status": before}))

    assert objects.status is not None
    assert objects.status["reboot"] is None
    assert "hosts" in objects.status  # the rest is written whole, as before
