"""The vSphere adapter against real dpio-vcsim simulators: TLS, one-call reads, passthrough
writes, reboot via maintenance mode, change notification, session expiry and outages."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlparse

import pytest
from pyVmomi import vim
from tests.integration.vsphere.helpers import connect, eventually, find

from dpio.planner.host.host_plan import PassthruChange
from dpio.planner.observed import ObservedHost, parse_version
from dpio.vsphere import errors
from dpio.vsphere.credentials import Credentials, from_secret_data
from dpio.vsphere.host.adapter import HostAdapter
from dpio.vsphere.session import VCenterClient
from dpio.vsphere.watch import Change
from dpio_sandbox import certs, vcsim

pytestmark = pytest.mark.sandbox

SimulatorFactory = Callable[..., vcsim.Simulator]
GPU01, GPU02 = "esx-gpu-01.lab.local", "esx-gpu-02.lab.local"
A100, T4, RTX, RTX_AUDIO = "0000:3b:00.0", "0000:af:00.0", "0000:5e:00.0", "0000:5e:00.1"


def _creds(sim: vcsim.Simulator, **trust: str) -> Credentials:
    data = {"server": sim.sdk_url, "username": sim.username, "password": sim.password}
    return from_secret_data({**data, **(trust or {"caBundle": sim.ca_file.read_text()})})


def _server_der(sim: vcsim.Simulator) -> bytes:
    url = urlparse(sim.sdk_url)
    pem = ssl.get_server_certificate((url.hostname or "", url.port or 443))
    return ssl.PEM_cert_to_DER_cert(pem)


def _counts(sim: vcsim.Simulator) -> dict[str, int]:
    answer = sim.admin("GET", "/counters")
    assert isinstance(answer, dict)
    return dict(answer["counts"])


@pytest.fixture
def sim(vcsim_factory: SimulatorFactory) -> vcsim.Simulator:
    return vcsim_factory()


@pytest.fixture
def client(sim: vcsim.Simulator) -> Iterator[VCenterClient]:
    client = VCenterClient(_creds(sim), max_workers=4, timeout=15)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def adapter(client: VCenterClient) -> HostAdapter:
    return HostAdapter(client)


def _host(adapter: HostAdapter, name: str) -> ObservedHost:
    host = asyncio.run(adapter.read_inventory(names=[name])).host(name)
    assert host is not None
    return host


def test_ca_bundle_verifies_and_logs_in(sim: vcsim.Simulator, client: VCenterClient) -> None:
    assert client.connection().content.about.apiType == "VirtualCenter"
    assert client.logins == 1


def _other_ca(tmp_path: Any) -> str:
    return certs.ensure_ca(tmp_path / "other-pki").cert.read_text()


@pytest.mark.parametrize(
    "trust",
    [
        pytest.param(lambda sim, tmp: {"caBundle": _other_ca(tmp)}, id="wrong-ca"),
        pytest.param(lambda sim, tmp: {"thumbprint": "ab" * 32}, id="wrong-sha256"),
        pytest.param(lambda sim, tmp: {"thumbprint": "cd" * 20}, id="wrong-sha1"),
    ],
)
def test_untrusted_server_is_refused_before_login(
    sim: vcsim.Simulator, tmp_path: Any, trust: Callable[..., dict[str, str]]
) -> None:
    """TLS first: with the right password but the wrong trust, no SOAP call is made at all."""
    sim.admin("POST", "/counters/reset")
    client = VCenterClient(_creds(sim, **trust(sim, tmp_path)), timeout=10)
    with pytest.raises(errors.TLSVerificationFailed) as info:
        client.connection()
    assert sim.password not in str(info.value)
    assert not info.value.retryable
    assert _counts(sim).get("Login", 0) == 0
    client.close()


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_thumbprint_pinning(sim: vcsim.Simulator, digest: str) -> None:
    hexdigest = hashlib.new(digest, _server_der(sim)).hexdigest().upper()
    pinned = ":".join(hexdigest[i : i + 2] for i in range(0, len(hexdigest), 2))
    client = VCenterClient(_creds(sim, thumbprint=pinned), timeout=10)
    try:
        assert client.connection().content.about.apiType == "VirtualCenter"
    finally:
        client.close()


def test_default_inventory_in_one_call(sim: vcsim.Simulator, adapter: HostAdapter) -> None:
    adapter.client.connection()
    sim.admin("POST", "/counters/reset")
    inventory = asyncio.run(adapter.read_inventory())
    # The first read also creates the ContainerView it keeps; later reads are one call.
    assert _counts(sim) == {"CreateContainerView": 1, "RetrievePropertiesEx": 1}
    sim.admin("POST", "/counters/reset")
    again = asyncio.run(adapter.read_inventory(clusters=["Compute-Cluster"]))
    assert _counts(sim) == {"RetrievePropertiesEx": 1}

    assert [h.name for h in again.hosts] == ["esx-legacy-01.lab.local", "esx-noiommu-01.lab.local"]
    assert len(inventory.hosts) == 6
    assert set(inventory.clusters["GPU-Cluster"]) == {GPU01, GPU02, "esx-gpu-03.lab.local"}
    gpu01 = inventory.host(GPU01)
    assert gpu01 is not None
    assert gpu01.cluster == "GPU-Cluster"
    assert gpu01.device_rebind_without_reboot_supported
    assert gpu01.in_use_by_host["0000:18:00.0"] == "vmnic0 carries vmkernel port vmk0"
    assert "0000:18:00.1" not in gpu01.in_use_by_host
    assert "vmhba0 is a storage adapter" in gpu01.in_use_by_host["0000:00:17.0"]
    assert gpu01.attached_to_vms[A100] == ("ml-inference-01",)
    assert gpu01.pci_device()["0000:18:00.0"].vendor_id == 0x8086  # masked (govmomi #2248)
    assert gpu01.passthru_info()[A100].hardware_label == "a100"
    gpu02 = inventory.host(GPU02)
    assert gpu02 is not None
    assert gpu02.passthru_info()[RTX_AUDIO].dependent_device == RTX
    assert inventory.host("esx-standalone-01.lab.local").cluster is None  # type: ignore[union-attr]


def test_update_passthru_config_in_one_call(sim: vcsim.Simulator, adapter: HostAdapter) -> None:
    gpu01 = _host(adapter, GPU01)
    sim.admin("POST", "/counters/reset")
    changes = [
        PassthruChange(T4, True, apply_now=True),
        PassthruChange(A100, False, apply_now=True),
    ]
    asyncio.run(adapter.update_passthru_config(gpu01.moref, changes))
    assert _counts(sim) == {"UpdatePassthruConfig": 1}  # the passthru system came from the read

    info = _host(adapter, GPU01).passthru_info()
    # 8.0.2 rebinds without a reboot: enabling is active at once, disabling too.
    assert (info[T4].passthru_enabled, info[T4].passthru_active) == (True, True)
    assert (info[A100].passthru_enabled, info[A100].passthru_active) == (False, False)

    sim.admin("POST", "/counters/reset")
    asyncio.run(adapter.update_passthru_config(gpu01.moref, []))
    assert _counts(sim) == {}


def test_hardware_label_reaches_the_host(sim: vcsim.Simulator, adapter: HostAdapter) -> None:
    """hardwareLabel exists from API 7.0.2 on; pyVmomi leaves it out of requests to older APIs."""
    api = adapter.client.connection().content.about.apiVersion
    if parse_version(api) < (7, 0, 2):
        pytest.skip(f"the simulated vCenter speaks API {api}: it can't carry hardwareLabel")
    gpu01 = _host(adapter, GPU01)
    asyncio.run(adapter.update_passthru_config(gpu01.moref, [PassthruChange(T4, True, True, "t4")]))
    assert _host(adapter, GPU01).passthru_info()[T4].hardware_label == "t4"


def test_refused_device_is_a_host_config_fault(adapter: HostAdapter) -> None:
    gpu02 = _host(adapter, GPU02)
    with pytest.raises(errors.HostConfigFault, match="not capable"):
        asyncio.run(
            adapter.update_passthru_config(
                gpu02.moref, [PassthruChange("0000:00:14.0", True, False)]
            )
        )


def test_reboot_through_maintenance_mode_activates(
    sim: vcsim.Simulator, adapter: HostAdapter
) -> None:
    gpu02 = _host(adapter, GPU02)
    asyncio.run(adapter.update_passthru_config(gpu02.moref, [PassthruChange(RTX, True, False)]))
    pending = _host(adapter, GPU02)
    assert pending.passthru_info()[RTX].passthru_enabled
    assert not pending.passthru_info()[RTX].passthru_active
    assert pending.passthru_info()[RTX_AUDIO].passthru_enabled  # dependent device follows

    async def cycle() -> None:
        task = await adapter.enter_maintenance_mode(gpu02.moref, timeout_seconds=60)
        await adapter.wait_for_task(task, timeout=60)
        await adapter.wait_for_task(await adapter.reboot_host(gpu02.moref), timeout=60)
        sim.admin("POST", "/reboots/complete")
        await asyncio.sleep(0)

    asyncio.run(cycle())
    eventually(lambda: _host(adapter, GPU02).connected, timeout=30)
    task = asyncio.run(adapter.exit_maintenance_mode(gpu02.moref, 60))
    asyncio.run(adapter.wait_for_task(task, timeout=60))
    after = _host(adapter, GPU02)
    assert not after.in_maintenance_mode
    assert after.passthru_info()[RTX].passthru_active
    assert after.boot_time != pending.boot_time


def test_reboot_outside_maintenance_mode_fails_the_task(adapter: HostAdapter) -> None:
    gpu01 = _host(adapter, GPU01)
    task = asyncio.run(adapter.reboot_host(gpu01.moref))
    with pytest.raises(errors.TaskFailed, match="maintenance mode") as info:
        asyncio.run(adapter.wait_for_task(task, timeout=30))
    assert info.value.fault == "InvalidState"


def test_watch_sees_a_hand_made_change(sim: vcsim.Simulator, adapter: HostAdapter) -> None:
    seen: list[Change] = []
    arrived = threading.Event()

    def on_change(changes: Sequence[Change]) -> None:
        seen.extend(changes)
        arrived.set()

    watcher = adapter.watch(on_change, max_wait_seconds=5)
    try:
        assert watcher.ready.wait(15)
        assert not seen  # the initial full state is not reported as a change
        with connect(sim) as si:
            host = find(si, vim.HostSystem, GPU01)
            config = vim.host.PciPassthruConfig(id=T4, passthruEnabled=True)
            host.configManager.pciPassthruSystem.UpdatePassthruConfig([config])
            started = time.monotonic()
            assert arrived.wait(10)
            assert time.monotonic() - started < 5  # target: drift visible within 5 s
            assert any(c.moref == host._moId and "config.pciPassthruInfo" in c.paths for c in seen)
    finally:
        watcher.stop()
    assert watcher.recreated == 1


def test_session_expiry_costs_one_relogin(sim: vcsim.Simulator, adapter: HostAdapter) -> None:
    asyncio.run(adapter.read_inventory())
    sim.admin("POST", "/sessions/expire")
    sim.admin("POST", "/counters/reset")
    inventory = asyncio.run(adapter.read_inventory())
    assert len(inventory.hosts) == 6
    assert adapter.client.logins == 2
    counts = _counts(sim)
    assert counts.get("Login") == 1
    # The ContainerView died with the session; the read made a new one after one refusal.
    assert counts.get("RetrievePropertiesEx", 0) <= 3


def test_watch_survives_session_expiry(sim: vcsim.Simulator, adapter: HostAdapter) -> None:
    arrived = threading.Event()
    watcher = adapter.watch(lambda changes: arrived.set(), max_wait_seconds=1)
    try:
        assert watcher.ready.wait(15)
        sim.admin("POST", "/sessions/expire")
        eventually(lambda: watcher.recreated >= 2, timeout=20)
        assert adapter.client.logins == 2
        with connect(sim) as si:
            host = find(si, vim.HostSystem, GPU01)
            config = vim.host.PciPassthruConfig(id=T4, passthruEnabled=True)
            host.configManager.pciPassthruSystem.UpdatePassthruConfig([config])
        assert arrived.wait(10)
    finally:
        watcher.stop()


def test_outage_then_recovery(sim: vcsim.Simulator, adapter: HostAdapter) -> None:
    asyncio.run(adapter.read_inventory())
    sim.admin("POST", "/outage", {"down": True})
    try:
        with pytest.raises(errors.VCenterUnreachable) as info:
            asyncio.run(adapter.read_inventory())
        assert info.value.retryable
    finally:
        sim.admin("POST", "/outage", {"down": False})
    inventory = eventually(lambda: _try_read(adapter), timeout=20)
    assert len(inventory.hosts) == 6


def _try_read(adapter: HostAdapter) -> Any:
    try:
        return asyncio.run(adapter.read_inventory())
    except errors.VCenterUnreachable:
        return None


def test_after_a_change_only_the_changed_host_is_read_and_the_result_is_whole(
    sim: vcsim.Simulator, adapter: HostAdapter
) -> None:
    """docs/benchmarks.md finding 9: once the watch says which hosts changed, the next shared
    read reads those hosts and their VMs only, and what it returns equals a whole read."""
    arrived = threading.Event()
    watcher = adapter.watch(lambda changes: arrived.set(), max_wait_seconds=5)
    try:
        assert watcher.ready.wait(15)
        before = asyncio.run(adapter.read_inventory())
        gpu01 = before.host(GPU01)
        assert gpu01 is not None
        assert gpu01.attached_to_vms[A100] == ("ml-inference-01",)
        # Out of band, as with the vSphere Client: the watch names the host.
        with connect(sim) as si:
            host = find(si, vim.HostSystem, GPU01)
            config = vim.host.PciPassthruConfig(id=T4, passthruEnabled=True)
            host.configManager.pciPassthruSystem.UpdatePassthruConfig([config])
        assert arrived.wait(10)  # counted before the callback is called
        sim.admin("POST", "/counters/reset")
        after = asyncio.run(adapter.read_inventory())
        calls = _counts(sim)
        calls.pop("WaitForUpdatesEx", None)  # the watch's long poll may come back meanwhile
        assert calls == {"RetrievePropertiesEx": 1}
        assert adapter.shared.partial_reads == 1
        whole = asyncio.run(adapter.client.run(adapter.reader.read))
    finally:
        watcher.stop()
    assert after == whole
    assert after != before
    changed = after.host(GPU01)
    assert changed is not None
    assert changed.passthru_info()[T4].passthru_enabled
    assert changed.attached_to_vms[A100] == ("ml-inference-01",)  # its VMs were read with it
