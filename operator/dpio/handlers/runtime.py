"""The operator's long-lived parts, built at startup and kept in kopf's memo."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from kubernetes import client as k8s
from kubernetes import config as k8s_config

# Importing the handler module registers it with kopf (main.py imports this module's users).
from dpio.handlers import assignment as _assignment_handlers  # noqa: F401
from dpio.handlers.vm_wiring import VMCenters
from dpio.handlers.wiring import KubeObjects, VCenters
from dpio.kube.client import KubeClient
from dpio.reconcile import assignment_inputs
from dpio.reconcile.assignment import AssignmentReconciler
from dpio.reconcile.controller import Body, Controller, key_of
from dpio.reconcile.policy import PolicyReconciler
from dpio.reconcile.queue import Backoff
from dpio.vsphere.session import SessionCache


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
    #: Namespace name -> labels, from the namespace watch (consumers.namespaceSelector).
    namespaces: dict[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def build(cls, config: Config) -> Runtime:
        kube = KubeClient(_api_client())
        sessions = SessionCache()
        vcenters = VCenters(kube, sessions, config.namespace, config.vcenter_secret)
        holder: list[Controller] = []

        def all_policies() -> Iterator[Body]:  # for policy conflicts (DESIGN.md §3.1.8)
            return holder[0].objects()

        reconciler = PolicyReconciler(
            vcenter=vcenters, objects=KubeObjects(kube), all_policies=all_policies
        )
        # Capped exponential backoff for vCenter outages (DESIGN.md §3.3): 1 s up to 5 min.
        policies = Controller(
            "HostPassthroughPolicy", reconciler, workers=config.workers, backoff=Backoff(1, 300)
        )
        holder.append(policies)
        loop = asyncio.get_running_loop()

        # Watcher threads hand changes to the event loop; the queue dedups a burst into one run.
        def on_change() -> None:
            loop.call_soon_threadsafe(policies.enqueue_all)

        vcenters.on_change = on_change
        vms = VMCenters(kube, sessions, config.namespace, config.vcenter_secret)
        namespaces: dict[str, Mapping[str, str]] = {}

        def all_assignments() -> Iterator[Body]:  # for device claims (DESIGN.md §3.2.1)
            return holder[1].objects()

        assignment_reconciler = AssignmentReconciler(
            vcenter=vms,
            objects=KubeObjects(kube),
            policy=lambda name: policies.get(("", name)),
            all_assignments=all_assignments,
            namespace_labels=lambda ns: namespaces.get(ns, {}),
        )
        assignments = Controller(
            "VMDeviceAssignment",
            assignment_reconciler,
            workers=config.workers,
            backoff=Backoff(1, 300),
        )
        holder.append(assignments)
        runtime = cls(config, kube, sessions, policies, vcenters, assignments, vms, namespaces)

        def on_vm_change(morefs: frozenset[str]) -> None:
            loop.call_soon_threadsafe(runtime.vms_changed, morefs)

        vms.on_vm_change = on_vm_change
        return runtime

    # What assignments depend on besides their own object (the handlers call these).

    def assignment_changed(self, event_type: str, body: Body) -> None:
        """An assignment's own event; when its status moved or it went, its claims changed:
        assignments waiting for a device look again."""
        before = self.assignments.get(key_of(body))
        self.assignments.observe(event_type, body)
        moved = before is None or before.get("status") != body.get("status")
        if event_type == "DELETED" or moved:
            self._enqueue(lambda b: key_of(b) != key_of(body) and assignment_inputs.waiting(b))

    def policy_changed(self, name: str) -> None:
        self._enqueue(lambda b: assignment_inputs.references(b, name))

    def namespace_changed(self, event_type: str, body: Body) -> None:
        name = str(body.get("metadata", {}).get("name", ""))
        labels = dict(body.get("metadata", {}).get("labels") or {})
        before = self.namespaces.get(name)
        if event_type == "DELETED":
            self.namespaces.pop(name, None)
            return
        self.namespaces[name] = labels
        if before is not None and before != labels:
            self._enqueue(lambda b: key_of(b)[0] == name)

    def vms_changed(self, morefs: frozenset[str]) -> None:
        """vCenter says these VMs changed: their assignments, and those waiting on any VM."""
        self._enqueue(
            lambda b: assignment_inputs.vm_moref(b) in morefs or assignment_inputs.waiting(b)
        )

    def _enqueue(self, wanted: Callable[[Body], bool]) -> None:
        for body in self.assignments.objects():
            if wanted(body):
                self.assignments.enqueue(key_of(body))

    def start(self) -> None:
        self.policies.start()
        self.assignments.start()

    async def stop(self) -> None:
        await self.policies.stop()
        await self.assignments.stop()
        self.vcenters.stop()
        self.vms.stop()
        self.sessions.close_all()
        self.kube.close()


def _api_client() -> k8s.ApiClient:
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
    return k8s.ApiClient()
