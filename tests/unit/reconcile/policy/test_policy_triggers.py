"""Which policies a vCenter change report queues: those its hosts concern, or, after a report
that named none, those whose hosts differ in a fresh read (all of them when the read failed)."""

from __future__ import annotations

import asyncio

import pytest

from dpio.planner.observed import ObservedInventory
from dpio.reconcile.cache import Body
from dpio.reconcile.constants import VM_SETTLE_SECONDS
from dpio.reconcile.controller import Controller
from dpio.reconcile.policy.selections import Selections
from dpio.reconcile.policy.triggers import PolicyTriggers
from dpio.reconcile.queue import Result

READ = ObservedInventory(hosts=())


class FakeSelections(Selections):
    """`gpu` planned on host-1; `nic` plans on other hosts in the fresh read."""

    def concerns(self, name: str, hosts: frozenset[str] | None) -> bool:
        return name == "gpu" and hosts is not None and "host-1" in hosts

    def differs(self, name: str, inventory: ObservedInventory) -> bool:
        return name == "nic"


async def _queued(feed: str, arg: frozenset[str] | ObservedInventory | None) -> int:
    async def reconcile(body: Body) -> Result:
        return Result()

    policies = Controller("HostPassthroughPolicy", reconcile)
    for name in ("gpu", "nic", "nvme"):
        policies.cache.put({"metadata": {"name": name}})
    triggers = PolicyTriggers(policies, FakeSelections())
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
        ("hosts", frozenset({"host-1"}), 1),
        ("hosts", frozenset({"host-9"}), 0),
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

        policies = Controller("HostPassthroughPolicy", reconcile)
        for name in ("gpu", "nic"):
            policies.cache.put({"metadata": {"name": name}})
        triggers = PolicyTriggers(policies, FakeSelections())
        policies.start()
        for _ in range(10):
            triggers.vm_hosts_changed(frozenset({"host-1"}))
        triggers.vm_hosts_changed(frozenset({"host-9"}))  # no policy's host
        right_away = len(policies.queue)
        await asyncio.sleep(VM_SETTLE_SECONDS + 0.5)
        settled = len(policies.queue)
        await policies.stop()
        return right_away, settled

    right_away, settled = asyncio.run(main())
    assert right_away == 0  # nothing at once
    assert (runs, settled) == (["gpu"], 0)
