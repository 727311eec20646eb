"""Which policies a vCenter change report queues: those its hosts concern, or, after a report
that named none, those whose hosts differ in a fresh read (all of them when the read failed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.unit.planner.builders import NOW, host, spec

from dpio.api.policy import HostSelector
from dpio.planner import PolicyPlan, plan_policy
from dpio.planner.observed import ObservedInventory
from dpio.reconcile.cache import Body, ObjectCache
from dpio.reconcile.constants import VM_SETTLE_SECONDS
from dpio.reconcile.controller import Controller
from dpio.reconcile.policy import triggers as triggers_module
from dpio.reconcile.policy.selections import Selections
from dpio.reconcile.policy.triggers import PolicyTriggers
from dpio.reconcile.queue import Result

READ = ObservedInventory(hosts=())


class FakeSelections(Selections):
    """`gpu` planned on host-1, `nic` on host-2, `nvme` on nothing yet; `nic` plans on other
    hosts in the fresh read."""

    def __init__(self) -> None:
        super().__init__()
        self.record("gpu", HostSelector(names=["esx01"]), _plan_on("esx01"))
        self.record("nic", HostSelector(names=["esx02"]), _plan_on("esx02"))

    def differs(self, name: str, inventory: ObservedInventory) -> bool:
        return name == "nic"


def _plan_on(host_name: str) -> PolicyPlan:
    """A plan of one policy on `host_name` (moref host-<name>)."""
    return plan_policy(
        name="p",
        creation_timestamp=NOW,
        spec=spec(hosts={"names": [host_name]}),
        inventory=ObservedInventory(hosts=(host(host_name),)),
        now=NOW,
    )


async def _queued(feed: str, arg: frozenset[str] | ObservedInventory | None) -> int:
    async def reconcile(body: Body) -> Result:
        return Result()

    selections = FakeSelections()
    cache = ObjectCache(indexes=(selections.cache_index(),))
    policies = Controller("HostPassthroughPolicy", reconcile, cache=cache)
    for name in ("gpu", "nic", "nvme"):
        policies.cache.put({"metadata": {"name": name}})
    triggers = PolicyTriggers(policies, selections)
    if feed == "hosts":
        assert isinstance(arg, frozenset)
        triggers.hosts_changed(arg)
    else:
        assert not isinstance(arg, frozenset)
        triggers.inventory_read(arg)
    return len(policies.queue)


@pytest.mark.parametrize(
    ("feed", "arg", "queued"),
    [
        ("hosts", frozenset({"host-esx01"}), 2),  # gpu, and nvme that has no plan yet
        ("hosts", frozenset({"host-esx09"}), 1),  # nvme only
        ("read", READ, 1),
        ("read", None, 3),  # the read failed: everything
    ],
)
def test_a_report_queues_only_the_policies_it_concerns(
    feed: str, arg: frozenset[str] | ObservedInventory | None, queued: int
) -> None:
    assert asyncio.run(_queued(feed, arg)) == queued


def test_vm_changes_queue_the_policies_of_their_hosts_after_a_short_settle() -> None:
    """A fleet of VMs converging changes devices on the policy's hosts one VM after the other;
    each change concerns the policy's status only: one run after the burst, not one per VM."""
    runs: list[str] = []

    async def main() -> tuple[int, int]:
        async def reconcile(body: Body) -> Result:
            runs.append(body["metadata"]["name"])
            return Result()

        selections = FakeSelections()
        cache = ObjectCache(indexes=(selections.cache_index(),))
        policies = Controller("HostPassthroughPolicy", reconcile, cache=cache)
        for name in ("gpu", "nic"):
            policies.cache.put({"metadata": {"name": name}})
        triggers = PolicyTriggers(policies, selections)
        policies.start()
        for _ in range(10):
            triggers.vm_hosts_changed(frozenset({"host-esx01"}))
        triggers.vm_hosts_changed(frozenset({"host-esx09"}))  # no policy's host
        right_away = len(policies.queue)
        await asyncio.sleep(VM_SETTLE_SECONDS + 0.5)
        settled = len(policies.queue)
        await policies.stop()
        return right_away, settled

    right_away, settled = asyncio.run(main())
    assert right_away == 0  # nothing at once
    assert (runs, settled) == (["gpu"], 0)


def test_a_policy_that_runs_long_waits_twice_its_run_after_vm_changes(monkeypatch: Any) -> None:
    """At 5,000 assignments a run of the policy over 625 hosts took seconds, and VM changes
    kept it running back to back (finding 26): the settle grows with the run."""
    monkeypatch.setattr(triggers_module, "VM_SETTLE_SECONDS", 0.1)
    started: list[float] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()

        async def reconcile(body: Body) -> Result:
            started.append(loop.time())
            await asyncio.sleep(0.3)  # a long run
            return Result()

        selections = FakeSelections()
        cache = ObjectCache(indexes=(selections.cache_index(),))
        policies = Controller("HostPassthroughPolicy", reconcile, cache=cache)
        policies.cache.put({"metadata": {"name": "gpu"}})
        triggers = PolicyTriggers(policies, selections)
        policies.start()
        triggers.vm_hosts_changed(frozenset({"host-esx01"}))  # no run yet: 0.1 s
        await asyncio.sleep(0.5)
        assert policies.last_seconds(("", "gpu")) >= 0.3
        again = loop.time()
        triggers.vm_hosts_changed(frozenset({"host-esx01"}))  # now twice 0.3 s
        await asyncio.sleep(1.0)
        await policies.stop()
        return again

    again = asyncio.run(main())
    assert len(started) == 2
    assert started[1] - again >= 0.55  # not 0.1 s after the change
