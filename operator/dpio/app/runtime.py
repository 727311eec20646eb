"""The operator's long-lived parts, built at startup and kept in kopf's memo."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dpio.api.common import GROUP, VERSION
from dpio.api.crd import HOST_PASSTHROUGH_POLICY, VM_DEVICE_ASSIGNMENT
from dpio.app.cache_sync import Watched, forget_ghosts, wait_until_cached
from dpio.app.dry_run import ReadOnlyVCenter, ReadOnlyVMCenters
from dpio.app.resync import Resyncs
from dpio.app.vm_wiring import VMCenters
from dpio.app.wiring import KubeObjects, VCenters
from dpio.kube import credentials
from dpio.kube.client import KubeClient
from dpio.kube.rest import ApiServer, custom_object_path, path
from dpio.reconcile.assignment.others import AssignmentIndex
from dpio.reconcile.assignment.reconciler import AssignmentReconciler
from dpio.reconcile.assignment.triggers import AssignmentTriggers
from dpio.reconcile.cache import Body, Key, ObjectCache
from dpio.reconcile.controller import DELETED, Controller
from dpio.reconcile.own_writes import ExpectedStatuses, OwnStatusWrites
from dpio.reconcile.policy.claims import PendingClaims
from dpio.reconcile.policy.reconciler import PolicyReconciler
from dpio.reconcile.policy.selections import Selections
from dpio.reconcile.policy.triggers import PolicyTriggers
from dpio.reconcile.queue import Backoff
from dpio.vsphere.host.adapter import HostAdapter
from dpio.vsphere.session import SessionCache

_log = logging.getLogger(__name__)
#: Where a watch event of one kind goes (`Runtime.policy_event` ...).
EventSink = Callable[[str, Body], None]


@dataclass(frozen=True)
class Config:
    """From the environment (the chart sets these; `make run` too)."""

    namespace: str = "dpio-system"
    vcenter_secret: str = "vcenter"
    workers: int = 4
    #: Plan and report, never write to vCenter (docs/design.md#suspend-and-dry-run).
    dry_run: bool = False

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            namespace=os.environ.get("DPIO_NAMESPACE", cls.namespace),
            vcenter_secret=os.environ.get("DPIO_VCENTER_SECRET", cls.vcenter_secret),
            workers=int(os.environ.get("DPIO_WORKERS", cls.workers)),
            dry_run=dry_run_from_env(),
        )


DRY_RUN_ENV = "DPIO_DRY_RUN"


def dry_run_from_env() -> bool:
    """`DPIO_DRY_RUN`: "true" or "false" (unset: false). Anything else is refused rather than
    guessed: a typo must not turn writes on."""
    value = os.environ.get(DRY_RUN_ENV, "false").strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f'{DRY_RUN_ENV} must be "true" or "false", not {value!r}')
    return value == "true"


@dataclass
class Runtime:
    config: Config
    kube: KubeClient
    sessions: SessionCache
    policies: Controller
    vcenters: VCenters
    assignments: Controller
    vms: VMCenters
    #: Which policies and which assignments to look at again when what they depend on changes.
    policy_triggers: PolicyTriggers
    assignment_triggers: AssignmentTriggers
    #: Started by `start`: the queues start once the caches are complete (app/cache_sync.py).
    starting: asyncio.Task[None] | None = field(default=None, repr=False)
    #: Started by `watch_for_ghosts`.
    ghosts: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, config: Config, creds: credentials.Credentials) -> Runtime:
        kube = KubeClient(ApiServer(creds))
        sessions = SessionCache()
        vcenters = VCenters(kube, sessions, config.namespace, config.vcenter_secret)
        # The policy side reads the assignments' cache too: devices they claim stay enabled.
        assignment_index, claims = AssignmentIndex(), PendingClaims()
        assignment_cache = ObjectCache(indexes=(assignment_index, claims))
        policies, policy_triggers = _policies(config, kube, vcenters, claims)
        loop = asyncio.get_running_loop()
        # Watcher threads hand changes to the event loop; the queue dedups a burst into one run.
        resyncs = Resyncs(policy_triggers.inventory_read)

        def on_change(adapter: HostAdapter, hosts: frozenset[str] | None) -> None:
            if hosts is None:
                loop.call_soon_threadsafe(resyncs.request, adapter, adapter.read_inventory)
                return
            loop.call_soon_threadsafe(policy_triggers.hosts_changed, hosts)

        def on_vm_hosts(_adapter: HostAdapter, hosts: frozenset[str]) -> None:
            loop.call_soon_threadsafe(policy_triggers.vm_hosts_changed, hosts)

        vcenters.on_change = on_change
        vcenters.on_vm_hosts = on_vm_hosts
        vms = VMCenters(vcenters.logins, config.vcenter_secret, watching=vcenters.watching)
        assignments, assignment_triggers = _assignments(
            config, kube, vms, policies.cache, assignment_cache, index=assignment_index
        )

        def on_vm_change(morefs: frozenset[str]) -> None:  # on the watcher's thread
            loop.call_soon_threadsafe(assignment_triggers.vms_changed, morefs)

        vcenters.on_vm_change = on_vm_change
        vcenters.on_changes = vms.changed
        return cls(
            config,
            kube,
            sessions,
            policies,
            vcenters,
            assignments,
            vms,
            policy_triggers,
            assignment_triggers,
        )

    # What the watches deliver (handlers/): one entry per kind, so that whatever else feeds the
    # caches (forget_ghosts) goes the same way.

    def policy_event(self, event_type: str, body: Body) -> None:
        self.policies.observe(event_type, body)
        self.assignment_triggers.policy_event(event_type, body)

    def assignment_event(self, event_type: str, body: Body) -> None:
        self.assignment_triggers.assignment_event(event_type, body)

    def namespace_event(self, event_type: str, body: Body) -> None:
        self.assignment_triggers.namespace_event(event_type, body)

    def watched(self) -> tuple[Watched, ...]:
        """What the reconciles read: both kinds' caches, and the namespaces' labels."""
        kube, namespaces = self.kube, self.assignment_triggers.namespaces

        def of_kind(controller: Controller, plural: str, event: EventSink) -> Watched:
            cache = controller.cache

            def forget(key: Key) -> None:
                body = cache.get(key)
                if body is not None:
                    event(DELETED, body)

            collection = custom_object_path(GROUP, VERSION, plural)
            return Watched(
                controller.kind,
                lambda: kube.list_keys(collection),
                cache.__contains__,
                cache.keys_snapshot,
                forget,
            )

        return (
            of_kind(self.policies, HOST_PASSTHROUGH_POLICY.plural, self.policy_event),
            of_kind(self.assignments, VM_DEVICE_ASSIGNMENT.plural, self.assignment_event),
            Watched(
                "Namespace",
                lambda: kube.list_keys(path("api", "v1", "namespaces")),
                lambda key: key[1] in namespaces,
                lambda: [("", name) for name in list(namespaces)],
                lambda key: self.namespace_event(DELETED, {"metadata": {"name": key[1]}}),
            ),
        )

    def watch_for_ghosts(self) -> None:
        """Every replica, leader or not: drop what the caches keep of deleted objects
        (app/cache_sync.py)."""
        if self.ghosts is None:
            self.ghosts = asyncio.create_task(forget_ghosts(self.watched()), name="cache ghosts")

    def start(self) -> None:
        """Start the work queues once the caches hold everything (app/cache_sync.py); events
        queue their keys meanwhile."""
        if self.starting is None:
            self.starting = asyncio.create_task(self._start_when_cached(), name="cache sync")

    async def _start_when_cached(self) -> None:
        began = time.monotonic()
        listed = await wait_until_cached(self.watched())
        _log.info(
            "Caches complete; reconciling",
            extra={"listed": listed, "seconds": round(time.monotonic() - began, 2)},
        )
        self.policies.start()
        self.assignments.start()

    async def stop_queues(self) -> None:
        """No reconcile runs from here on (a lost Lease, or shutdown)."""
        starting, self.starting = self.starting, None
        await _cancelled(starting)
        await self.policies.stop()
        await self.assignments.stop()

    async def stop(self) -> None:
        ghosts, self.ghosts = self.ghosts, None
        await _cancelled(ghosts)
        await self.stop_queues()
        self.vcenters.stop()
        self.sessions.close_all()
        await self.kube.close()


async def _cancelled(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` (if any) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _policies(
    config: Config, kube: KubeClient, vcenters: VCenters, claims: PendingClaims
) -> tuple[Controller, PolicyTriggers]:
    """The HostPassthroughPolicy controller; its reconciler reads every policy from the cache
    (policy conflicts: the older one wins) and what the assignments' cache says they claim
    (devices not to disable from under them)."""
    # The cache keeps the selections informed of which policies exist (those with no plan
    # are concerned by every vCenter report).
    selections = Selections()
    cache, own_writes = ObjectCache(indexes=(selections.cache_index(),)), ExpectedStatuses()
    reconciler = PolicyReconciler(
        vcenter=ReadOnlyVCenter(vcenters) if config.dry_run else vcenters,
        objects=OwnStatusWrites(KubeObjects(kube), own_writes),
        all_policies=cache.objects,
        policies_version=lambda: cache.spec_changes,
        pending_claims=claims,
        dry_run=config.dry_run,
        selections=selections,
    )
    # Capped exponential backoff for vCenter outages: 1 s up to 5 min (docs/design.md,
    # "Failures and retries").
    policies = Controller(
        "HostPassthroughPolicy",
        reconciler,
        cache=cache,
        own_writes=own_writes,
        workers=config.workers,
        backoff=Backoff(1, 300),
    )
    return policies, PolicyTriggers(policies, reconciler.selections)


def _assignments(
    config: Config,
    kube: KubeClient,
    vms: VMCenters,
    policies: ObjectCache,
    cache: ObjectCache,
    *,
    index: AssignmentIndex,
) -> tuple[Controller, AssignmentTriggers]:
    """The VMDeviceAssignment controller; it reads policies and namespaces from the caches, and
    the other assignments from the index its own cache keeps (device claims: the oldest one
    wins)."""
    namespaces: dict[str, dict[str, str]] = {}
    own_writes = ExpectedStatuses()
    reconciler = AssignmentReconciler(
        vcenter=ReadOnlyVMCenters(vms) if config.dry_run else vms,
        objects=OwnStatusWrites(KubeObjects(kube), own_writes),
        policy=lambda name: policies.get(("", name)),
        assignments=index,
        namespace_labels=namespaces.get,
        dry_run=config.dry_run,
        # The controller is built below, around this reconciler.
        upcoming=lambda limit: assignments.upcoming(limit),  # noqa: PLW0108
    )
    assignments = Controller(
        "VMDeviceAssignment",
        reconciler,
        cache=cache,
        own_writes=own_writes,
        workers=config.workers,
        backoff=Backoff(1, 300),
    )
    return assignments, AssignmentTriggers(assignments, namespaces)


def kube_credentials() -> credentials.Credentials:
    """The API server and who we are to it: the pod's ServiceAccount in a cluster, else the
    kubeconfig ($KUBECONFIG or ~/.kube/config). Raises credentials.ConfigError."""
    return credentials.load()
