"""Adapters plugged into the reconcilers' ports: `dpio.vsphere` and `dpio.kube` behind
`dpio.reconcile.ports`, with vSphere's typed errors turned into `PortError`s by
`dpio.app.faults`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dpio.api.conditions import KUBERNETES_API_ERROR
from dpio.api.crd import HOST_PASSTHROUGH_POLICY, VM_DEVICE_ASSIGNMENT
from dpio.api.policy import HostPassthroughPolicySpec, HostSelector, RebootPolicy
from dpio.app.faults import translate_faults
from dpio.app.logins import Logins
from dpio.app.vm_resync import VMStates
from dpio.kube.client import KubeClient, KubeError, NotFoundError, ObjectRef
from dpio.planner import (
    EnterMaintenanceMode,
    ExitMaintenanceMode,
    ObservedInventory,
    RebootAction,
    UpdatePassthruConfig,
)
from dpio.planner.host.steps import HostTask
from dpio.reconcile.ports import PortError
from dpio.vsphere.credentials import Credentials
from dpio.vsphere.host.adapter import HostAdapter
from dpio.vsphere.inventory_map import VM
from dpio.vsphere.session import SessionCache, VCenterClient
from dpio.vsphere.watch import Change, Watcher

POLICY = (HOST_PASSTHROUGH_POLICY.plural, HOST_PASSTHROUGH_POLICY.kind)
ASSIGNMENT = (VM_DEVICE_ASSIGNMENT.plural, VM_DEVICE_ASSIGNMENT.kind)


@dataclass
class VSphereHosts:
    """`HostsPort` over the adapter's `HostAdapter`: only the error translation is added here."""

    adapter: HostAdapter
    #: The policy's `spec.hosts`: a shared read is fresh enough while these hosts are unchanged.
    selector: HostSelector | None = None
    #: A rolling reboot: fresh for every host of the selected hosts' clusters, since all of
    #: them count against maxUnavailable.
    whole_clusters: bool = False

    @property
    def insecure(self) -> bool:
        return self.adapter.client.credentials.insecure

    @translate_faults
    async def read_inventory(self) -> ObservedInventory:
        return await self.adapter.read_inventory(
            selector=self.selector, whole_clusters=self.whole_clusters
        )

    @translate_faults
    async def update_passthru_config(self, update: UpdatePassthruConfig) -> None:
        await self.adapter.update_passthru_config(update.moref, update.changes)

    @translate_faults
    async def start(self, action: RebootAction) -> None:
        if isinstance(action, EnterMaintenanceMode):
            await self.adapter.enter_maintenance_mode(action.moref, action.timeout)
        elif isinstance(action, ExitMaintenanceMode):
            await self.adapter.exit_maintenance_mode(action.moref)
        else:
            await self.adapter.reboot_host(action.moref)

    @translate_faults
    async def recent_tasks(
        self, host_morefs: Collection[str]
    ) -> Mapping[str, tuple[HostTask, ...]]:
        return await self.adapter.recent_tasks(host_morefs)


@dataclass
class VCenters:
    """`VCenterPort`: the Secret named by the policy, else the operator's default Secret.

    Logging in is `Logins`' job (its errors say whether a human must act); this adds one
    adapter and one change watcher per vCenter session.
    """

    kube: KubeClient
    sessions: SessionCache
    namespace: str
    default_secret: str
    #: Called (on a watcher thread) when vCenter reports a change to a host, VM or cluster,
    #: with the vCenter's adapter and the morefs of the hosts whose planning it can affect
    #: (None: possibly any host).
    on_change: Callable[[HostAdapter, frozenset[str] | None], None] = lambda _a, _hosts: None
    #: The hosts whose VMs changed (not the hosts themselves): their policies may wait a little
    #: (`PolicyTriggers.vm_hosts_changed`). Unset, they go to `on_change` like the others.
    on_vm_hosts: Callable[[HostAdapter, frozenset[str]], None] | None = None
    #: Called (on a watcher thread) with the morefs of VMs that changed, for the assignments:
    #: the same watch serves both kinds (one WaitForUpdatesEx per vCenter, not one per kind).
    on_vm_change: Callable[[frozenset[str]], None] = lambda _morefs: None
    #: Called (on a watcher thread) with every batch of changes of a vCenter (by server),
    #: before the callbacks above: what was read ahead for the VMs is dropped if stale.
    on_changes: Callable[[str, Sequence[Change]], None] = lambda _server, _changes: None
    #: One adapter (and its inventory view and watcher) per vCenter session.
    adapters: dict[str, HostAdapter] = field(default_factory=dict)
    watchers: dict[str, Watcher] = field(default_factory=dict)
    #: What the watch last saw of each VM, per vCenter: a recovery's full state reports only
    #: the VMs that differ (`dpio.app.vm_resync`).
    vm_states: dict[str, VMStates] = field(default_factory=dict)
    #: Secrets to logged-in sessions; share it with the VM side so both kinds remember the same
    #: refused logins (`VMCenters(..., logins=vcenters.logins)`).
    logins: Logins = field(init=False)

    def __post_init__(self) -> None:
        self.logins = Logins(self.kube, self.sessions, self.namespace)

    async def hosts_for(self, spec: HostPassthroughPolicySpec) -> VSphereHosts:
        secret = spec.vcenter.secret_ref.name if spec.vcenter else self.default_secret
        client = await self.logins.client(secret)
        rolling = spec.reboot.policy is RebootPolicy.ROLLING
        return VSphereHosts(await self.watching(client), spec.hosts, rolling)

    async def watching(self, client: VCenterClient) -> HostAdapter:
        """The host adapter of `client`'s vCenter, its change watch started (or restarted)."""
        adapter = self.adapters.get(client.server)
        if adapter is None or adapter.client is not client:  # first use, or new credentials
            adapter = self.adapters[client.server] = HostAdapter(client)
        watcher = self.watchers.get(client.server)
        if watcher is None or watcher.client is not client or not watcher.alive:
            old = self.watchers.pop(client.server, None)
            if old is not None:
                await asyncio.to_thread(old.stop)
            # Drift shows within seconds through WaitForUpdatesEx, not by polling
            # (docs/design.md, "vCenter access").
            # The initial set is delivered too: for a large inventory it can arrive after the
            # first reconciles' writes, which would otherwise never trigger a confirming read.
            self.watchers[client.server] = adapter.watch(
                lambda changes: self._changed(adapter, changes), deliver_initial=True
            )
        return adapter

    def _changed(self, adapter: HostAdapter, changes: Sequence[Change]) -> None:
        self.on_changes(adapter.client.server, changes)
        for hosts, through_vms in _hosts_changed(adapter, changes, split=bool(self.on_vm_hosts)):
            if through_vms and hosts is not None and self.on_vm_hosts is not None:
                self.on_vm_hosts(adapter, hosts)
            else:
                self.on_change(adapter, hosts)
        # The first full state lists every VM: not a change any assignment waits for; a
        # recovery's full state is compared with what the watch saw before.
        states = self.vm_states.setdefault(adapter.client.server, VMStates())
        vms = states.changed(changes)
        if vms:
            self.on_vm_change(vms)

    async def credentials(self, secret: str, where: str) -> Credentials:
        """`Logins.credentials`, kept here for callers that hold only the `VCenters`."""
        return await self.logins.credentials(secret, where)

    def stop(self) -> None:
        for watcher in self.watchers.values():
            watcher.stop()
        self.watchers.clear()


@dataclass
class KubeObjects:
    """`ObjectsPort` over the Kubernetes adapter."""

    kube: KubeClient

    async def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        rv = str(body["metadata"].get("resourceVersion", ""))
        await self._guard(self.kube.patch_status(ref_of(body), status, rv))

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
        """A 404 is done: the object is gone, so nothing holds it and nothing is to be held
        (a second release racing the watch event of the first one's deletion)."""
        rv = str(body["metadata"].get("resourceVersion", ""))
        try:
            await self._guard(self.kube.set_finalizers(ref_of(body), finalizers, rv))
        except PortError as err:
            if not isinstance(err.__cause__, NotFoundError):
                raise

    async def event(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        ref = ref_of(body)
        await self.kube.emit_event(
            ref, type_=type_, reason=reason, message=message, namespace=ref.namespace or "default"
        )

    @staticmethod
    async def _guard(call: Any) -> None:
        try:
            await call
        except KubeError as err:
            raise PortError(KUBERNETES_API_ERROR, str(err), retryable=err.retryable) from err


def ref_of(body: Mapping[str, Any]) -> ObjectRef:
    meta = body["metadata"]
    plural, kind = ASSIGNMENT if body.get("kind") == ASSIGNMENT[1] else POLICY
    return ObjectRef(
        plural=plural,
        kind=kind,
        name=meta["name"],
        namespace=meta.get("namespace"),
        uid=meta.get("uid", ""),
    )


def _hosts_changed(
    adapter: HostAdapter, changes: Sequence[Change], *, split: bool
) -> list[tuple[frozenset[str] | None, bool]]:
    """(hosts, whether only through their VMs) for `changes`: the hosts of modified VMs apart
    from the rest when `split`; one entry of None (any host) if either part concerns any host."""
    if not split:
        return [(adapter.changed_hosts(changes), False)]
    through_vms = [c for c in changes if c.kind == VM and c.operation == "modify"]
    rest = [c for c in changes if not (c.kind == VM and c.operation == "modify")]
    direct = adapter.changed_hosts(rest)
    by_vms = adapter.changed_hosts(through_vms) if through_vms else frozenset()
    if direct is None or by_vms is None:
        return [(None, False)]
    found: list[tuple[frozenset[str] | None, bool]] = []
    if direct or not by_vms:
        found.append((direct, False))
    if by_vms:
        found.append((by_vms, True))
    return found
