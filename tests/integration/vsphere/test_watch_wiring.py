"""One change watch per vCenter serves both kinds: policies (hosts) and assignments (VMs)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pyVmomi import vim
from tests.integration.vsphere.helpers import connect, eventually, find

from dpio.api.policy import HostPassthroughPolicySpec
from dpio.app.vm_wiring import VMCenters
from dpio.app.wiring import VCenters
from dpio.vsphere.credentials import from_secret_data
from dpio.vsphere.session import SessionCache, VCenterClient
from dpio_sandbox import vcsim

pytestmark = pytest.mark.sandbox


class OneVCenter:
    """`Logins`' face: every Secret logs in to the one simulator."""

    def __init__(self, client: VCenterClient) -> None:
        self._client = client

    async def client(self, secret: str) -> VCenterClient:
        return self._client


@pytest.fixture
def client(vcsim_factory: Callable[..., vcsim.Simulator]) -> Iterator[VCenterClient]:
    sim = vcsim_factory()
    data = {"server": sim.sdk_url, "username": sim.username, "password": sim.password,
            "caBundle": sim.ca_file.read_text()}  # fmt: skip
    client = VCenterClient(from_secret_data(data), max_workers=2, timeout=15)
    client.sim = sim  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        client.close()


def test_one_watch_per_vcenter_reports_to_both_kinds(client: VCenterClient) -> None:
    sim: vcsim.Simulator = client.sim  # type: ignore[attr-defined]
    hosts_changed: list[frozenset[str] | None] = []
    vms_changed: list[frozenset[str]] = []
    lock = threading.Lock()
    vcenters = VCenters(None, SessionCache(), "dpio-system", "vc")  # type: ignore[arg-type]
    vcenters.logins = OneVCenter(client)  # type: ignore[assignment]
    vcenters.on_change = lambda _adapter, hosts: _append(lock, hosts_changed, hosts)
    vcenters.on_vm_change = lambda vms: _append(lock, vms_changed, vms)
    vms = VMCenters(vcenters.logins, "vc", watching=vcenters.watching)
    vcenters.on_changes = vms.changed  # as the runtime wires it
    spec = HostPassthroughPolicySpec.model_validate(
        {"hosts": {"names": ["esx-gpu-01.lab.local"]}, "devices": [{"address": "0000:3b:00.0"}]}
    )

    async def both_kinds() -> None:
        await vms.vms_for(None)  # an assignment first, then a policy of the same vCenter
        await vcenters.hosts_for(spec)

    try:
        asyncio.run(both_kinds())
        assert len(vcenters.watchers) == 1
        watcher = next(iter(vcenters.watchers.values()))
        assert watcher.ready.wait(15)
        assert watcher.recreated == 1
        eventually(lambda: hosts_changed)  # the first full state: any host may be new
        assert vms_changed == []  # ... but it is no change any assignment waits for
        # web-01 read ahead with its host neighbour: kept until a change makes it stale.
        adapter = vms.adapters[client.server]
        asyncio.run(adapter.observe_vm(name="ml-trainer-01", ahead=[("web-01", "")]))
        assert len(adapter.reader.batch.ahead) == 1
        with connect(sim) as si:
            vm = find(si, vim.VirtualMachine, "web-01")
            vm.PowerOffVM_Task()
            moref = vm._moId
        eventually(lambda: vms_changed)
        with lock:
            assert vms_changed == [frozenset({moref})]
            assert len(adapter.reader.batch.ahead) == 0  # dropped before the report went on
            # The host side saw the same report (the simulator changes the VM's devices on
            # power-off, and this VM's host was never read: any host may be concerned).
            assert hosts_changed[-1] is None
        assert watcher.recreated == 1
    finally:
        vcenters.stop()


def test_a_watch_recovery_reports_only_the_vms_that_changed(client: VCenterClient) -> None:
    """The session expires: the watch logs in again, builds a new collector, and vCenter sends
    its full state again. Before, every VM in it was reported (the assignment of each queued,
    one observe_vm each); now only a VM that differs from what the watch saw before is."""
    sim: vcsim.Simulator = client.sim  # type: ignore[attr-defined]
    hosts_changed: list[frozenset[str] | None] = []
    vms_changed: list[frozenset[str]] = []
    lock = threading.Lock()
    vcenters = VCenters(None, SessionCache(), "dpio-system", "vc")  # type: ignore[arg-type]
    vcenters.logins = OneVCenter(client)  # type: ignore[assignment]
    vcenters.on_change = lambda _adapter, hosts: _append(lock, hosts_changed, hosts)
    vcenters.on_vm_change = lambda vms: _append(lock, vms_changed, vms)
    vms = VMCenters(vcenters.logins, "vc", watching=vcenters.watching)
    try:
        asyncio.run(vms.vms_for(None))
        watcher = next(iter(vcenters.watchers.values()))
        assert watcher.ready.wait(15)
        eventually(lambda: hosts_changed)  # the first full state is in
        states = vcenters.vm_states[client.server]
        assert len(states) > 1
        with lock:  # counted before the expiry: the recovery may deliver before we look again
            seen_before = len(hosts_changed)
        sim.admin("POST", "/sessions/expire")
        eventually(lambda: watcher.recreated >= 2, timeout=30)
        # The recovery's full state reaches the host side (a resync: it names no hosts).
        eventually(lambda: len(hosts_changed) > seen_before, timeout=30)
        with connect(sim) as si:
            vm = find(si, vim.VirtualMachine, "web-01")
            vm.PowerOffVM_Task()
            moref = vm._moId
        eventually(lambda: vms_changed)
        with lock:  # the full state came before the power-off: it reported no VM
            assert vms_changed == [frozenset({moref})]
    finally:
        vcenters.stop()


def _append(lock: threading.Lock, into: list[Any], value: Any) -> None:
    with lock:
        into.append(value)
