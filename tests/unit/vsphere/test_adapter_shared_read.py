"""The host adapter shares whole-inventory reads: concurrent callers join one read, a finished
read is reused while the change watch reports nothing, and any change makes the next read new."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.unit.planner.builders import host

from dpio.api.policy import HostSelector
from dpio.planner.observed import ObservedInventory
from dpio.vsphere.adapter import HostAdapter
from dpio.vsphere.shared_reads import MAX_INVENTORY_AGE_SECONDS
from dpio.vsphere.watch import Change


@dataclass
class FakeReader:
    reads: int = 0
    vm_hosts: dict[str, str] = field(default_factory=lambda: {"vm-1": "host-1"})

    def read(self, conn: Any, **_: Any) -> ObservedInventory:
        self.reads += 1
        return ObservedInventory(hosts=(host("esx01"), host("esx02")))  # host-esx01, host-esx02

    def vm_host(self, vm_moref: str) -> str:
        return self.vm_hosts.get(vm_moref, "")


class FakeClient:
    """`VCenterClient.run`: a round trip of 10 ms, then the call (reads only)."""

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.01)
        return fn(None, *args, **kwargs) if getattr(fn, "__name__", "") == "read" else None


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
    ],
)  # fmt: skip
def test_which_hosts_a_change_concerns(
    changes: list[Change], expected: frozenset[str] | None
) -> None:
    hosts, _ = adapter(None, [0.0])
    assert hosts.changed_hosts(changes) == expected
