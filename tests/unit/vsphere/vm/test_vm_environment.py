"""EnvironmentBrowser caching: ConfigTarget per host passthrough state, ConfigOption per version."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pyVmomi import vim

from dpio.vsphere.single_flight import SingleFlight
from dpio.vsphere.vm.environment import EnvironmentCache, passthru_fingerprint

V: Any = vim


def _info(pci: str, active: bool, label: str = "") -> Any:
    return V.host.PciPassthruInfo(
        id=pci, dependentDevice=pci, passthruEnabled=True, passthruCapable=True,
        passthruActive=active, hardwareLabel=label,
    )  # fmt: skip


class Browser:
    """Counts the EnvironmentBrowser calls the cache lets through."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def QueryConfigTarget(self, host: Any) -> Any:  # vSphere's method names
        self.calls.append(f"target {host._moId}")
        pci = V.host.PciDevice(id="0000:3b:00.0", vendorId=0x10DE, deviceId=0x20B5)
        return V.vm.ConfigTarget(pciPassthrough=[V.vm.PciPassthroughInfo(pciDevice=pci)])

    def QueryConfigOption(self, key: str | None, host: Any) -> Any:
        self.calls.append(f"option {host._moId} {key}")
        return None


BASE = [_info("0000:3b:00.0", True, "a100"), _info("0000:af:00.0", False)]


@pytest.mark.parametrize(
    ("second", "asks_again"),
    [
        pytest.param(list(reversed(BASE)), False, id="same-state-any-order"),
        pytest.param([BASE[0], _info("0000:af:00.0", True)], True, id="device-activated"),
        pytest.param([_info("0000:3B:00.0", True, "h100"), BASE[1]], True, id="relabelled"),
        pytest.param([BASE[0]], True, id="device-gone"),
        pytest.param(None, True, id="state-unknown"),
    ],
)
def test_config_target_cached_while_passthrough_state_holds(
    second: list[Any] | None, asks_again: bool
) -> None:
    cache, browser, host = EnvironmentCache(), Browser(), V.HostSystem("host-1")
    first = cache.config_target(browser, host, passthru_fingerprint(BASE))
    again = cache.config_target(browser, host, passthru_fingerprint(second))
    assert again == first
    assert [p.id for p in again.pci_passthrough] == ["0000:3b:00.0"]
    assert len(browser.calls) == (2 if asks_again else 1)


def test_config_target_unknown_state_is_never_cached() -> None:
    cache, browser, host = EnvironmentCache(), Browser(), V.HostSystem("host-1")
    for _ in range(2):
        cache.config_target(browser, host, None)
    assert browser.calls == ["target host-1", "target host-1"]


def test_config_target_per_host() -> None:
    cache, browser = EnvironmentCache(), Browser()
    fingerprint = passthru_fingerprint(BASE)
    for moref in ("host-1", "host-2", "host-1"):
        cache.config_target(browser, V.HostSystem(moref), fingerprint)
    assert browser.calls == ["target host-1", "target host-2"]


def test_passthrough_limit_cached_per_versions_not_per_host() -> None:
    cache, browser = EnvironmentCache(), Browser()
    for moref, version, key in [
        ("host-1", "8.0.2", "vmx-19"),
        ("host-1", "8.0.2", "vmx-19"),
        ("host-1", "8.0.2", "vmx-21"),  # another hardware version
        ("host-1", "8.0.3", "vmx-19"),  # the host was upgraded
        ("host-2", "8.0.2", "vmx-19"),  # another host on the same release: no call
        ("host-2", "8.0.2", ""),  # unknown hardware version: no key
        ("host-3", "", "vmx-19"),  # unknown ESXi version: asked of that host
        ("host-4", "", "vmx-19"),
        ("host-4", "", "vmx-19"),
    ]:
        assert cache.passthrough_limit(browser, V.HostSystem(moref), version, key) is None
    assert browser.calls == [
        "option host-1 vmx-19",
        "option host-1 vmx-21",
        "option host-1 vmx-19",
        "option host-2 None",
        "option host-3 vmx-19",
        "option host-4 vmx-19",
    ]


class SlowBrowser(Browser):
    """Answers only after every other caller for the same answer waits for it (so calls
    overlap): those of its host for a target, all of them for an option."""

    def __init__(self, cache: EnvironmentCache, per_host: int, callers: int) -> None:
        super().__init__()
        self.cache, self.per_host, self.callers = cache, per_host, callers

    @staticmethod
    def _until_all_wait(flight: SingleFlight[Any], key: Hashable, others: int) -> None:
        deadline = time.monotonic() + 30
        while flight.waiters(key) < others and time.monotonic() < deadline:
            time.sleep(0.01)

    def QueryConfigTarget(self, host: Any) -> Any:
        key = (host._moId, passthru_fingerprint(BASE))
        self._until_all_wait(self.cache._target_calls, key, self.per_host - 1)
        return super().QueryConfigTarget(host)

    def QueryConfigOption(self, key: str | None, host: Any) -> Any:
        self._until_all_wait(self.cache._limit_calls, ("8.0.2", key), self.callers - 1)
        return super().QueryConfigOption(key, host)


def test_vms_reconciled_together_share_a_target_per_host_and_an_option_per_release() -> None:
    hosts = ["host-1", "host-2"] * 8
    cache = EnvironmentCache()
    browser = SlowBrowser(cache, per_host=8, callers=len(hosts))
    fingerprint = passthru_fingerprint(BASE)
    ready = threading.Barrier(len(hosts))

    def observe(moref: str) -> tuple[int, int | None]:
        host = V.HostSystem(moref)
        ready.wait()
        target = cache.config_target(browser, host, fingerprint)
        return len(target.pci_passthrough), cache.passthrough_limit(
            browser, host, "8.0.2", "vmx-19"
        )

    with ThreadPoolExecutor(len(hosts)) as pool:
        answers = list(pool.map(observe, hosts))
    assert answers == [(1, None)] * len(hosts)
    assert len(browser.calls) == 3
    assert sorted(browser.calls)[1:] == ["target host-1", "target host-2"]
    assert (
        browser.calls.count("option host-1 vmx-19") + browser.calls.count("option host-2 vmx-19")
        == 1
    )
