"""The host adapter shares whole-inventory reads: concurrent callers join one read, a finished
read is reused while the change watch reports nothing, and any change makes the next read new."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from tests.unit.planner.builders import host

from dpio.api.policy import HostSelector
from dpio.planner.observed import ObservedInventory
from dpio.vsphere.host.adapter import HostAdapter
from dpio.vsphere.host.shared_reads import MAX_INVENTORY_AGE_SECONDS
from dpio.vsphere.watch import Change


@dataclass
class FakeReader:
    reads: int = 0  # calls to vCenter, whole or some hosts
    partial: list[frozenset[str]] = field(default_factory=list)  # the hosts of each partial read
    vm_hosts: dict[str, str] = field(default_factory=lambda: {"vm-1": "host-1"})
    can_read_hosts: bool = True  # False: read_hosts answers "read everything" (None)
    version: int = 0  # bumped by every read: which read a host's data came from

    def read(self, conn: Any, **_: Any) -> ObservedInventory:
        self.reads += 1
        self.version += 1
        return ObservedInventory(hosts=(self._host("esx01"), self._host("esx02")))

    def read_hosts(self, conn: Any, morefs: frozenset[str]) -> ObservedInventory | None:
        self.reads += 1
        self.partial.append(morefs)
        if not self.can_read_hosts:
            return None
        self.version += 1
        names = sorted(m.removeprefix("host-") for m in morefs)
        return ObservedInventory(hosts=tuple(self._host(n) for n in names))

    def _host(self, name: str) -> Any:  # host-esx01, ...; its version says which read it is from
        return replace(host(name), version=str(self.version))

    def vm_host(self, vm_moref: str) -> str:
        return self.vm_hosts.get(vm_moref, "")


class FakeClient:
    """`VCenterClient.run`: a round trip of 10 ms, then the call (reads only)."""

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.01)
        reads = getattr(fn, "__name__", "") in {"read", "read_hosts"}
        return fn(None, *args, **kwargs) if reads else None


Steps = Callable[[HostAdapter, list[float]], Coroutine[Any, Any, None]]


@dataclass
class FakeWatcher:
    alive: bool = True
    since: float = 0.0


def adapter(watcher: FakeWatcher | None, clock: list[float]) -> tuple[HostAdapter, FakeReader]:
    result = HostAdapter(FakeClient(), monotonic=lambda: clock[0])  # type: ignore[arg-type]
    reader = FakeReader()
    result.reader = reader  # type: ignore[assignment]
    result.shared.watcher = watcher
    return result, reader


def reads(steps: Steps, watcher: Any) -> int:
    clock = [1000.0]
    hosts, reader = adapter(watcher, clock)
    asyncio.run(steps(hosts, clock))
    return reader.reads


async def concurrent(hosts: HostAdapter, clock: list[float]) -> None:
    await asyncio.gather(*(hosts.read_inventory() for _ in range(5)))


async def one_after_another(hosts: HostAdapter, clock: list[float]) -> None:
    for _ in range(3):
        await hosts.read_inventory()


async def with_a_reported_change(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory()
    hosts.shared.changed()  # the watch reported one
    await hosts.read_inventory()
    await hosts.read_inventory()


async def after_an_own_update(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory()
    await hosts.update_passthru_config("host-1", [object()])  # type: ignore[list-item]
    await hosts.read_inventory()


async def change_while_reading(hosts: HostAdapter, clock: list[float]) -> None:
    first = asyncio.ensure_future(hosts.read_inventory())
    await asyncio.sleep(0)  # the read is in flight
    hosts.shared.changed()
    await asyncio.gather(first, hosts.read_inventory(), hosts.read_inventory())


async def old_read(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory()
    clock[0] += MAX_INVENTORY_AGE_SECONDS + 1
    await hosts.read_inventory()


async def filtered(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory(names=["esx01"])
    await hosts.read_inventory(names=["esx01"])


WATCHING = FakeWatcher()


@pytest.mark.parametrize(
    ("steps", "watcher", "expected"),
    [
        pytest.param(concurrent, None, 1, id="concurrent-callers-join-one-read"),
        pytest.param(one_after_another, None, 3, id="no-watch-no-reuse"),
        pytest.param(one_after_another, FakeWatcher(since=math.inf), 3, id="watch-down"),
        pytest.param(one_after_another, FakeWatcher(alive=False), 3, id="watch-ended"),
        pytest.param(one_after_another, FakeWatcher(since=2000.0), 3, id="watch-newer-than-read"),
        pytest.param(one_after_another, WATCHING, 1, id="watched-and-unchanged"),
        pytest.param(with_a_reported_change, WATCHING, 2, id="reported-change"),
        pytest.param(after_an_own_update, WATCHING, 2, id="own-update"),
        pytest.param(change_while_reading, WATCHING, 2, id="change-during-read-not-joined"),
        pytest.param(old_read, WATCHING, 2, id="too-old"),
        pytest.param(filtered, WATCHING, 2, id="filtered-reads-not-shared"),
    ],
)  # fmt: skip
def test_when_a_read_goes_to_vcenter(steps: Steps, watcher: Any, expected: int) -> None:
    assert reads(steps, watcher) == expected


ESX01 = HostSelector(names=["esx01"])
ESX02 = HostSelector(names=["esx02"])


async def other_host_changed(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory(selector=ESX01)
    await hosts.update_passthru_config("host-esx02", [object()])  # type: ignore[list-item]
    await hosts.read_inventory(selector=ESX01)


async def own_host_changed(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory(selector=ESX01)
    hosts.shared.changed(["host-esx01"])
    await hosts.read_inventory(selector=ESX01)


async def any_host_may_have_changed(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory(selector=ESX01)
    hosts.shared.changed(None)  # e.g. a host was added
    await hosts.read_inventory(selector=ESX01)


async def other_host_changed_all_wanted(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory(selector=ESX01)
    hosts.shared.changed(["host-esx02"])
    await hosts.read_inventory()


async def stale_then_in_flight(hosts: HostAdapter, change: str) -> None:
    """esx01 changed since the last read; one caller reads anew, then `change` happens, then
    a second esx01 caller comes."""
    await hosts.read_inventory(selector=ESX01)
    hosts.shared.changed(["host-esx01"])
    first = asyncio.ensure_future(hosts.read_inventory(selector=ESX01))
    await asyncio.sleep(0)  # its read is in flight
    hosts.shared.changed([change])
    await asyncio.gather(first, hosts.read_inventory(selector=ESX01))


async def joins_despite_other_host(hosts: HostAdapter, clock: list[float]) -> None:
    await stale_then_in_flight(hosts, "host-esx02")


async def own_host_changed_while_joined(hosts: HostAdapter, clock: list[float]) -> None:
    await stale_then_in_flight(hosts, "host-esx01")


async def stale_callers_share_one_new_read(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory(selector=ESX01)
    hosts.shared.changed(["host-esx01"])
    await asyncio.gather(*(hosts.read_inventory(selector=ESX01) for _ in range(4)))


async def bad_pattern(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory(selector=HostSelector.model_construct(name_pattern="("))
    hosts.shared.changed(["host-esx02"])
    await hosts.read_inventory(selector=HostSelector.model_construct(name_pattern="("))


@pytest.mark.parametrize(
    ("steps", "watcher", "expected"),
    [
        pytest.param(other_host_changed, WATCHING, 1, id="another-hosts-change-reuses"),
        pytest.param(own_host_changed, WATCHING, 2, id="own-hosts-change-reads"),
        pytest.param(any_host_may_have_changed, WATCHING, 2, id="selection-change-reads"),
        pytest.param(other_host_changed_all_wanted, WATCHING, 2, id="unfiltered-caller-reads"),
        pytest.param(other_host_changed, None, 2, id="no-watch-no-reuse"),
        pytest.param(joins_despite_other_host, WATCHING, 2, id="joins-in-flight"),
        pytest.param(own_host_changed_while_joined, WATCHING, 3, id="own-host-changed-in-flight"),
        pytest.param(joins_despite_other_host, None, 3, id="no-watch-no-join-after-change"),
        pytest.param(stale_callers_share_one_new_read, WATCHING, 2, id="stale-callers-share"),
        pytest.param(bad_pattern, WATCHING, 2, id="unusable-selector-reads"),
    ],
)  # fmt: skip
def test_a_read_is_fresh_while_the_callers_hosts_are_unchanged(
    steps: Steps, watcher: Any, expected: int
) -> None:
    assert reads(steps, watcher) == expected


def test_a_failed_read_fails_every_caller_that_joined_it_and_is_not_reused() -> None:
    class Failing(FakeReader):
        def read(self, conn: Any, **_: Any) -> ObservedInventory:
            self.reads += 1
            raise ConnectionError("vCenter went away")

    async def main() -> tuple[list[Any], int]:
        hosts = HostAdapter(FakeClient(), monotonic=lambda: 0.0)  # type: ignore[arg-type]
        reader = hosts.reader = Failing()  # type: ignore[assignment]
        hosts.shared.watcher = WATCHING
        got = await asyncio.gather(*(hosts.read_inventory() for _ in range(3)),
                                   return_exceptions=True)  # fmt: skip
        await asyncio.gather(hosts.read_inventory(), return_exceptions=True)
        return got, reader.reads

    got, count = asyncio.run(main())
    assert [type(g) for g in got] == [ConnectionError] * 3
    assert count == 2


def change(kind: str, moref: str, operation: str = "modify", *paths: str) -> Change:
    return Change(kind, moref, operation, frozenset(paths))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param([change("HostSystem", "host-2", "modify", "config.pciPassthruInfo")],
                     frozenset({"host-2"}), id="host-passthrough"),
        pytest.param([change("VirtualMachine", "vm-1", "modify", "config.hardware.device")],
                     frozenset({"host-1"}), id="vm-devices-on-a-known-host"),
        pytest.param([change("VirtualMachine", "vm-1", "leave")], frozenset({"host-1"}),
                     id="vm-deleted"),
        pytest.param([], frozenset(), id="nothing"),
        pytest.param([change("HostSystem", "host-2", "modify", "name")], None, id="host-renamed"),
        pytest.param([change("HostSystem", "host-2", "modify", "parent")], None,
                     id="host-moved-to-a-cluster"),
        pytest.param([change("HostSystem", "host-9", "enter")], None, id="host-added"),
        pytest.param([change("HostSystem", "host-2", "leave")], None, id="host-removed"),
        pytest.param([change("VirtualMachine", "vm-1", "modify", "runtime.host")], None,
                     id="vmotion"),
        pytest.param([change("VirtualMachine", "vm-7", "modify", "config.hardware.device")],
                     None, id="vm-never-read"),
        pytest.param([change("VirtualMachine", "vm-8", "enter")], None, id="vm-created"),
        pytest.param([change("ClusterComputeResource", "domain-c1", "modify", "name")], None,
                     id="cluster-renamed"),
        pytest.param([change("VirtualMachine", "vm-1", "modify", "config.changeVersion",
                             "rootSnapshot")], frozenset(),
                     id="vm-paths-only-assignments-watch"),
        # Power decides drain blockers and Dynamic DirectPath demand (planner/host/drain.py).
        pytest.param([change("VirtualMachine", "vm-1", "modify", "runtime.powerState")],
                     frozenset({"host-1"}), id="vm-powered-on"),
        pytest.param([change("VirtualMachine", "vm-7", "modify", "runtime.powerState")],
                     None, id="vm-never-read-powered-on"),
        pytest.param([change("VirtualMachine", "vm-1", "modify", "config.changeVersion",
                             "config.hardware.device")], frozenset({"host-1"}),
                     id="vm-devices-with-its-change-version"),
    ],
)  # fmt: skip
def test_which_hosts_a_change_concerns(
    changes: list[Change], expected: frozenset[str] | None
) -> None:
    hosts, _ = adapter(None, [0.0])
    assert hosts.changed_hosts(changes) == expected


def partial_reads(steps: Steps) -> tuple[FakeReader, ObservedInventory]:
    """Run `steps`, then one more unfiltered read: the reader and what that read returned."""
    clock = [1000.0]
    hosts, reader = adapter(FakeWatcher(), clock)

    async def main() -> ObservedInventory:
        await steps(hosts, clock)
        return await hosts.read_inventory()

    return reader, asyncio.run(main())


def versions(inventory: ObservedInventory) -> dict[str, str]:
    return {h.name: h.version for h in inventory.hosts}


async def update_esx01(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory()
    await hosts.update_passthru_config("host-esx01", [object()])  # type: ignore[list-item]


def test_after_a_change_of_some_hosts_only_they_are_read_again() -> None:
    reader, inventory = partial_reads(update_esx01)
    assert reader.partial == [frozenset({"host-esx01"})]
    # esx01 from the second read, esx02 still from the whole first read.
    assert versions(inventory) == {"esx01": "2", "esx02": "1"}


async def esx01_then_esx02(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory()
    hosts.shared.changed(["host-esx01"])
    await hosts.read_inventory()
    hosts.shared.changed(["host-esx02"])


def test_partial_reads_build_on_each_other() -> None:
    reader, inventory = partial_reads(esx01_then_esx02)
    assert reader.partial == [frozenset({"host-esx01"}), frozenset({"host-esx02"})]
    assert versions(inventory) == {"esx01": "2", "esx02": "3"}


async def change_during_a_partial_read(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory()
    hosts.shared.changed(["host-esx01"])
    first = asyncio.ensure_future(hosts.read_inventory())
    await asyncio.sleep(0.005)  # reading esx01 (a round trip is 10 ms)
    hosts.shared.changed(["host-esx02"])
    await asyncio.gather(first, hosts.read_inventory())  # waits for the first, reads esx02


def test_reads_go_one_at_a_time_and_each_reads_what_changed_since_the_one_before() -> None:
    reader, inventory = partial_reads(change_during_a_partial_read)
    assert reader.partial == [frozenset({"host-esx01"}), frozenset({"host-esx02"})]
    assert reader.reads == 3
    assert versions(inventory) == {"esx01": "2", "esx02": "3"}


async def changes_of_no_host(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory()
    hosts.shared.changed([])  # e.g. a VM property that no host's planning reads


async def any_host(hosts: HostAdapter, clock: list[float]) -> None:
    await hosts.read_inventory()
    hosts.shared.changed(["host-esx01"])
    hosts.shared.changed(None)  # e.g. a host was added: the selection itself may change


async def whole_read_too_old(hosts: HostAdapter, clock: list[float]) -> None:
    await update_esx01(hosts, clock)
    clock[0] += MAX_INVENTORY_AGE_SECONDS + 1


@pytest.mark.parametrize(
    ("steps", "calls", "expected"),
    [
        pytest.param(changes_of_no_host, 1, {"esx01": "1", "esx02": "1"}, id="nothing-to-read"),
        pytest.param(any_host, 2, {"esx01": "2", "esx02": "2"}, id="selection-may-change"),
        pytest.param(whole_read_too_old, 2, {"esx01": "2", "esx02": "2"}, id="whole-read-too-old"),
    ],
)  # fmt: skip
def test_when_everything_is_read_again_or_nothing(
    steps: Steps, calls: int, expected: dict[str, str]
) -> None:
    reader, inventory = partial_reads(steps)
    assert reader.partial == []
    assert reader.reads == calls
    assert versions(inventory) == expected


def test_a_partial_read_that_cannot_stand_in_is_followed_by_a_whole_one() -> None:
    clock = [1000.0]
    hosts, reader = adapter(FakeWatcher(), clock)
    reader.can_read_hosts = False  # e.g. the host went away, or sits in a cluster never read

    async def main() -> ObservedInventory:
        await update_esx01(hosts, clock)
        return await hosts.read_inventory()

    inventory = asyncio.run(main())
    assert reader.partial == [frozenset({"host-esx01"})]
    assert reader.reads == 3
    assert versions(inventory) == {"esx01": "2", "esx02": "2"}


class ClusteredReader(FakeReader):
    """esx01 and esx02 are in one cluster."""

    def _host(self, name: str) -> Any:
        return replace(super()._host(name), cluster="gpu")


@pytest.mark.parametrize(
    ("reader", "whole_clusters", "expected"),
    [
        pytest.param(ClusteredReader, True, 2, id="cluster-mate-changed-reads"),
        pytest.param(ClusteredReader, False, 1, id="cluster-mate-changed-reuses-by-default"),
        pytest.param(FakeReader, True, 1, id="standalone-hosts-have-no-mates"),
    ],
)
def test_a_rolling_reboot_reads_anew_when_a_host_of_its_clusters_changed(
    reader: type[FakeReader], whole_clusters: bool, expected: int
) -> None:
    """Every host of a cluster counts against maxUnavailable, selected or not."""
    clock = [1000.0]
    hosts, _ = adapter(WATCHING, clock)
    fake = reader()
    hosts.reader = fake  # type: ignore[assignment]

    async def steps() -> None:
        await hosts.read_inventory(selector=ESX01, whole_clusters=whole_clusters)
        hosts.shared.changed(["host-esx02"])  # e.g. esx02 entered maintenance mode
        await hosts.read_inventory(selector=ESX01, whole_clusters=whole_clusters)

    asyncio.run(steps())
    assert fake.reads == expected
