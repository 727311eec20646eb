"""The operator's long-lived parts, built at startup and kept in kopf's memo."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from dpio.app.resync import Resyncs
from dpio.app.vm_wiring import VMCenters
from dpio.app.wiring import KubeObjects, VCenters
from dpio.kube.client import KubeClient
from dpio.planner.observed import ObservedInventory
from dpio.reconcile.assignment.reconciler import AssignmentReconciler
from dpio.reconcile.assignment.triggers import AssignmentTriggers
from dpio.reconcile.controller import Body, Controller
from dpio.reconcile.own_writes import OwnStatusWrites
from dpio.reconcile.policy.reconciler import PolicyReconciler
from dpio.reconcile.queue import Backoff
from dpio.vsphere.host.adapter import HostAdapter
from dpio.vsphere.session import SessionCache

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """From the environment (the chart sets these; `make run` too)."""

    namespace: str = "dpio-system"
    vcenter_secret: str = "vcenter"
    workers: int = 4

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            namespace=os.environ.get("DPIO_NAMESPACE", cls.namespace),
            vcenter_secret=os.environ.get("DPIO_VCENTER_SECRET", cls.vcenter_secret),
            workers=int(os.environ.get("DPIO_WORKERS", cls.workers)),
        )


@dataclass
class Runtime:
    config: Config
    kube: KubeClient
    sessions: SessionCache
    policies: Controller
    vcenters: VCenters
    assignments: Controller
    vms: VMCenters
    #: Which assignments to look at again when what they depend on changes.
    triggers: AssignmentTriggers

    @classmethod
    def build(cls, config: Config) -> Runtime:
        kube = KubeClient(api_client())
        sessions = SessionCache()
        vcenters = VCenters(kube, sessions, config.namespace, config.vcenter_secret)
        holder: list[Controller] = []
        assignment_holder: list[Controller] = []

        def all_policies() -> Iterator[Body]:  # for policy conflicts (the older one wins)
            return holder[0].objects()

        def all_assignments() -> Iterator[Body]:  # devices not to disable from under them
            return iter(assignment_holder[0].objects()) if assignment_holder else iter(())

        objects = OwnStatusWrites(KubeObjects(kube), lambda: holder[0])
        reconciler = PolicyReconciler(
            vcenter=vcenters,
            objects=objects,
            all_policies=all_policies,
            policies_version=lambda: holder[0].desired_changes,
            all_assignments=all_assignments,
        )
        # Capped exponential backoff for vCenter outages: 1 s up to 5 min (docs/design.md,
        # "Failures and retries").
        policies = Controller(
            "HostPassthroughPolicy", reconciler, workers=config.workers, backoff=Backoff(1, 300)
        )
        holder.append(policies)
        loop = asyncio.get_running_loop()

        # Watcher threads hand changes to the event loop; the queue dedups a burst into one run.
        # Only policies whose hosts changed are queued, not all of them; a report that names no
        # hosts is resolved by one read (`resync`). Why: docs/benchmarks.md, findings 4 and 13.
        def changed_in(inventory: ObservedInventory | None) -> None:
            queued = policies.enqueue_where(
                lambda key: inventory is None or reconciler.differs(key[1], inventory)
            )
            _log.info("vCenter reported changes of unnamed hosts: policies queued",
                      extra={"queued": queued, "policies": len(policies)})  # fmt: skip

        resyncs = Resyncs(changed_in)

        def on_change(adapter: HostAdapter, hosts: frozenset[str] | None) -> None:
            if hosts is None:
                loop.call_soon_threadsafe(resyncs.request, adapter, adapter.read_inventory)
                return
            loop.call_soon_threadsafe(
                policies.enqueue_where, lambda key: reconciler.concerns(key[1], hosts)
            )

        vcenters.on_change = on_change
        vms = VMCenters(vcenters.logins, config.vcenter_secret, watching=vcenters.watching)
        assignments, triggers = _assignments(config, kube, vms, policies)
        assignment_holder.append(assignments)

        def on_vm_change(morefs: frozenset[str]) -> None:  # on the watcher's thread
            loop.call_soon_threadsafe(triggers.vms_changed, morefs)

        vcenters.on_vm_change = on_vm_change
        return cls(config, kube, sessions, policies, vcenters, assignments, vms, triggers)

    def start(self) -> None:
        self.policies.start()
        self.assignments.start()

    async def stop(self) -> None:
        await self.policies.stop()
        await self.assignments.stop()
        self.vcenters.stop()
        self.sessions.close_all()
        self.kube.close()


def _assignments(
    config: Config, kube: KubeClient, vms: VMCenters, policies: Controller
) -> tuple[Controller, AssignmentTriggers]:
    """The VMDeviceAssignment controller; it reads policies and namespaces from the caches."""
    namespaces: dict[str, dict[str, str]] = {}
    holder: list[Controller] = []

    def all_assignments() -> Iterator[Body]:  # for device claims (the oldest one wins)
        return holder[0].objects()

    reconciler = AssignmentReconciler(
        vcenter=vms,
        objects=OwnStatusWrites(KubeObjects(kube), lambda: holder[0]),
        policy=lambda name: policies.get(("", name)),
        all_assignments=all_assignments,
        namespace_labels=namespaces.get,
    )
    assignments = Controller(
        "VMDeviceAssignment", reconciler, workers=config.workers, backoff=Backoff(1, 300)
    )
    holder.append(assignments)
    return assignments, AssignmentTriggers(assignments, namespaces)


def api_client() -> k8s.ApiClient:
    """A client of the API server: the pod's ServiceAccount in a cluster, else the kubeconfig."""
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
    return k8s.ApiClient()
