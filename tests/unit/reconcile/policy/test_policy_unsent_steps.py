"""The reconciler's second pass: a recorded rolling-reboot step that shows no effect is checked
against vCenter's recent tasks (one read), sent again only when vCenter has no task of it, and
never asked about twice once this process sent it or saw it (planner/host/steps.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tests.unit.planner.builders import NOW, gpu_host
from tests.unit.reconcile.policy.test_policy_reconciler import FakeObjects, FakeVCenter, body

from dpio.planner import EnterMaintenanceMode, ObservedInventory, RebootAction, RebootHost
from dpio.planner.host.steps import ENTER_MAINTENANCE_MODE, REBOOT, HostTask
from dpio.planner.observed import ObservedHost
from dpio.reconcile.constants import CONFIRM_SECONDS
from dpio.reconcile.policy.host_calls import REBOOT_STEP_RESENT
from dpio.reconcile.policy.reconciler import PolicyReconciler
from dpio.reconcile.ports import PortError

SINCE = NOW - timedelta(minutes=5)
OLD_BOOT = NOW - timedelta(days=3)
DRAINING = gpu_host("esx01", enabled=True)  # needs a reboot, not in maintenance mode
REBOOTING = gpu_host("esx01", enabled=True, in_maintenance_mode=True, boot_time=OLD_BOOT)


@dataclass
class TaskHosts:
    """One host; `tasks` is its recentTask (None: the read fails); every read and step kept."""

    host: ObservedHost
    tasks: list[HostTask] | None = field(default_factory=list)
    reads: list[list[str]] = field(default_factory=list)
    started: list[RebootAction] = field(default_factory=list)
    insecure: bool = False

    async def read_inventory(self) -> ObservedInventory:
        return ObservedInventory(hosts=(self.host,))

    async def update_passthru_config(self, update: object) -> None:
        raise AssertionError(f"nothing to update: {update}")

    async def start(self, action: RebootAction) -> None:
        self.started.append(action)

    async def recent_tasks(
        self, host_morefs: Collection[str]
    ) -> Mapping[str, tuple[HostTask, ...]]:
        self.reads.append(list(host_morefs))
        if self.tasks is None:
            raise PortError("VCenterUnreachable", "connection refused", retryable=True)
        return {m: tuple(self.tasks) for m in host_morefs}


def policy(phase: str, since: datetime = SINCE) -> dict[str, Any]:
    record = {"phase": phase, "since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "enteredByOperator": True}  # fmt: skip
    result = body({"observedGeneration": 1, "hosts": [{"name": "esx01", "rollingReboot": record}]})
    result["spec"]["reboot"] = {"policy": "Rolling", "drainTimeout": "30m"}
    return result


def reconciler(hosts: TaskHosts, objects: FakeObjects, now: datetime = NOW) -> PolicyReconciler:
    return PolicyReconciler(FakeVCenter(hosts), objects, list, clock=lambda: now)  # type: ignore[arg-type]


def record_of(objects: FakeObjects) -> dict[str, Any]:
    assert objects.status is not None
    return dict(objects.status["hosts"][0]["rollingReboot"])


def test_a_drain_vcenter_never_got_is_sent_again_with_the_time_left_once() -> None:
    hosts = TaskHosts(DRAINING)
    objects = FakeObjects()
    run = reconciler(hosts, objects)

    result = asyncio.run(run(policy("Draining")))

    assert hosts.reads == [["host-esx01"]]  # one fresh read, of the one host in doubt
    assert hosts.started == [EnterMaintenanceMode("esx01", "host-esx01", 25 * 60)]
    assert ("Warning", REBOOT_STEP_RESENT) in objects.events
    assert ("Normal", "EnteringMaintenanceMode") in objects.events
    assert result.requeue_after == CONFIRM_SECONDS
    # `since` stays: drainTimeout counts from the first attempt.
    assert record_of(objects)["since"] == "2025-01-01T11:55:00Z"

    # The next run (the host still draining) neither asks again nor sends again.
    asyncio.run(run(policy("Draining")))
    assert len(hosts.reads) == 1
    assert len(hosts.started) == 1


def test_a_reboot_vcenter_never_got_is_sent_again_once() -> None:
    hosts = TaskHosts(REBOOTING, tasks=[HostTask(ENTER_MAINTENANCE_MODE, "success", SINCE)])
    objects = FakeObjects()
    run = reconciler(hosts, objects)

    asyncio.run(run(policy("Rebooting")))
    asyncio.run(run(policy("Rebooting")))

    assert hosts.started == [RebootHost("esx01", "host-esx01")]
    assert len(hosts.reads) == 1
    assert ("Warning", REBOOT_STEP_RESENT) in objects.events


def test_a_step_vcenter_has_is_waited_for_and_not_asked_about_again() -> None:
    queued = SINCE + timedelta(seconds=1)
    hosts = TaskHosts(REBOOTING, tasks=[HostTask(REBOOT, "running", queued)])
    objects = FakeObjects()
    run = reconciler(hosts, objects)

    asyncio.run(run(policy("Rebooting")))
    asyncio.run(run(policy("Rebooting")))

    assert hosts.started == []
    assert hosts.reads == [["host-esx01"]]
    assert REBOOT_STEP_RESENT not in {reason for _, reason in objects.events}


def test_when_the_tasks_cannot_be_read_nothing_is_sent_and_the_host_says_why() -> None:
    hosts = TaskHosts(REBOOTING, tasks=None)
    objects = FakeObjects()
    run = reconciler(hosts, objects)

    asyncio.run(run(policy("Rebooting")))

    assert hosts.started == []
    assert objects.status is not None
    message = objects.status["hosts"][0]["message"]
    assert "can't tell whether the Rebooting step's task" in message
    assert record_of(objects)["phase"] == "Rebooting"
    # Asked again on the next run; once vCenter answers, the step goes out.
    hosts.tasks = []
    asyncio.run(run(policy("Rebooting")))
    assert len(hosts.reads) == 2
    assert hosts.started == [RebootHost("esx01", "host-esx01")]


def test_a_fresh_record_is_not_asked_about() -> None:
    hosts = TaskHosts(DRAINING)
    asyncio.run(reconciler(hosts, FakeObjects())(policy("Draining", NOW - timedelta(seconds=30))))
    assert hosts.reads == []
    assert hosts.started == []


def test_a_step_this_process_started_is_never_asked_about() -> None:
    hosts = TaskHosts(DRAINING)
    objects = FakeObjects()
    fresh = body(None)
    fresh["spec"]["reboot"] = {"policy": "Rolling"}
    clock = [NOW + timedelta(microseconds=654321)]  # status keeps whole seconds
    run = PolicyReconciler(FakeVCenter(hosts), objects, list, clock=lambda: clock[0])  # type: ignore[arg-type]

    asyncio.run(run(fresh))
    assert [type(a) for a in hosts.started] == [EnterMaintenanceMode]
    assert objects.status is not None
    # Ten minutes on, the drain still runs; the status has the record this process wrote.
    clock[0] = NOW + timedelta(minutes=10)
    asyncio.run(run(fresh | {"status": objects.status}))

    assert hosts.reads == []
    assert len(hosts.started) == 1


class StaleObjects(FakeObjects):
    """The API server has a newer copy: every status write fails with 409 Conflict."""

    async def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        raise PortError("KubernetesAPIError", "409 Conflict", retryable=True)


def test_a_run_on_a_stale_copy_sends_nothing_again() -> None:
    """Sending a step again is a status change too (the host's message says when), so its write
    carries the resourceVersion precondition like the first record's, and a stale run stops."""
    hosts = TaskHosts(REBOOTING)
    objects = StaleObjects()

    result = asyncio.run(reconciler(hosts, objects)(policy("Rebooting")))

    assert hosts.reads == [["host-esx01"]]
    assert hosts.started == []
    assert result.failed
