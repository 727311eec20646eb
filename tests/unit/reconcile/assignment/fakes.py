"""In-memory fakes of the assignment reconciler's ports, and object builders (no tests here).

Every call lands in one shared `log`, so tests can assert the order of Kubernetes and vSphere
calls across ports (status before change, cluster before power before reconfigure ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from tests.unit.planner.vm.builders import NOW, NS, observe, policy, row

from dpio.api.policy import VCenterRef
from dpio.planner.vm.changes import ReconfigureCluster, ReconfigVM, UpgradeVM
from dpio.planner.vm.observed import VMName, VMObservation
from dpio.planner.vm.power import PowerAction
from dpio.reconcile.assignment.others import AssignmentIndex
from dpio.reconcile.assignment.reconciler import AssignmentReconciler
from dpio.reconcile.finalizers import FINALIZER
from dpio.reconcile.ports import PortError
from dpio.reconcile.queue import Result

Call = tuple[Any, ...]


@dataclass
class FakeVMs:
    """`VMsPort` and `VCenterVMsPort` in one: `fail` maps a method name to the error it raises."""

    log: list[Call]
    observation: VMObservation = field(default_factory=observe)
    fail: dict[str, PortError] = field(default_factory=dict)
    #: The `ahead` of each observe_vm, in order.
    ahead: list[tuple[VMName, ...]] = field(default_factory=list)

    def _called(self, name: str, *args: Any) -> None:
        self.log.append((name, *args))
        if name in self.fail:
            raise self.fail[name]

    async def vms_for(self, vcenter: VCenterRef | None) -> FakeVMs:
        self._called("vms_for")
        return self

    async def observe_vm(
        self, *, name: str = "", instance_uuid: str = "", ahead: Sequence[VMName] = ()
    ) -> VMObservation:
        self._called("observe_vm", name or instance_uuid)
        self.ahead.append(tuple(ahead))
        return self.observation

    async def reconfigure(self, change: ReconfigVM) -> None:
        self._called("reconfigure", change)

    async def reconfigure_cluster(self, change: ReconfigureCluster) -> None:
        self._called("reconfigure_cluster", change)

    async def upgrade(self, change: UpgradeVM) -> None:
        self._called("upgrade", change)

    async def power(self, vm_moref: str, action: PowerAction) -> None:
        self._called("power", action)


@dataclass
class FakeObjects:
    """`ObjectsPort`: status writes, finalizers and Events go to the log."""

    log: list[Call]
    fail_status: PortError | None = None
    fail_finalizers: PortError | None = None
    #: The resourceVersion precondition of each write (status and finalizers), in order.
    versions: list[str] = field(default_factory=list)

    async def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        self.log.append(("status", dict(status)))
        self.versions.append(str(body["metadata"].get("resourceVersion", "")))
        if self.fail_status is not None:
            raise self.fail_status

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
        self.log.append(("finalizers", finalizers))
        self.versions.append(str(body["metadata"].get("resourceVersion", "")))
        if self.fail_finalizers is not None:
            raise self.fail_finalizers

    async def event(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        meta = body.get("metadata") or {}
        self.log.append(("event", type_, reason, body.get("kind"), meta.get("name"), message))


def policy_body(name: str = "gpu-hosts", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "HostPassthroughPolicy",
        "metadata": {"name": name, "generation": 1},
        "spec": policy(**spec).model_dump(mode="json", by_alias=True, exclude_none=True),
        "status": {
            "hosts": [
                {
                    "name": "esx01",
                    "passthroughSupported": True,
                    "rebootRequired": False,
                    "devices": [row().model_dump(mode="json", by_alias=True, exclude_none=True)],
                }
            ]
        },
    }


def body(
    name: str = "trainer-gpu",
    *,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    finalizers: tuple[str, ...] = (FINALIZER,),
    deleting: bool = False,
    age_days: int = 1,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "generation": 1,
        "resourceVersion": "7",
        "uid": f"uid-{name}",
        "creationTimestamp": (NOW - timedelta(days=age_days)).isoformat(),
        "finalizers": list(finalizers),
    }
    if deleting:
        meta["deletionTimestamp"] = NOW.isoformat()
    result: dict[str, Any] = {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "VMDeviceAssignment",
        "metadata": meta,
        "spec": spec
        or {
            "policyRef": {"name": "gpu-hosts"},
            "vm": {"name": "ml-trainer-01"},
            "devices": [{"name": "gpu0", "pci": {"address": "0000:3b:00.0"}}],
        },
    }
    if status is not None:
        result["status"] = status
    return result


@dataclass
class World:
    """A reconciler wired to fakes, with the caches it reads."""

    vms: FakeVMs
    objects: FakeObjects
    policies: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"gpu-hosts": policy_body()}
    )
    assignments: list[dict[str, Any]] = field(default_factory=list)
    #: Namespace labels as the namespace watch has them; a namespace missing here was seen
    #: without labels ({}), one mapped to None not seen yet (selectors fail closed).
    labels: dict[str, dict[str, str] | None] = field(default_factory=dict)
    dry_run: bool = False  # the operator's --dry-run
    #: The assignments queued after the one reconciled, in order (`Controller.upcoming`).
    queued: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def make(cls, observation: VMObservation | None = None, **kwargs: Any) -> World:
        log: list[Call] = []
        vms = FakeVMs(log, observation or observe())
        return cls(vms, FakeObjects(log), **kwargs)

    @property
    def log(self) -> list[Call]:
        return self.vms.log

    def reconciler(self) -> AssignmentReconciler:
        return AssignmentReconciler(
            vcenter=self.vms,
            objects=self.objects,
            policy=self.policies.get,
            assignments=AssignmentIndex.of(self.assignments),
            namespace_labels=lambda ns: self.labels.get(ns, {}),
            clock=lambda: NOW,
            dry_run=self.dry_run,
            upcoming=lambda limit: self.queued[:limit],
        )

    def run(self, obj: dict[str, Any]) -> Result:
        return asyncio.run(self.reconciler()(obj))

    def calls(self) -> list[str]:
        return [c[0] for c in self.log if c[0] != "event"]

    def arg(self, name: str) -> Any:
        """The first argument of the first call of `name`."""
        return next(c[1] for c in self.log if c[0] == name)

    def statuses(self) -> list[dict[str, Any]]:
        return [c[1] for c in self.log if c[0] == "status"]

    def events(self) -> list[tuple[str, str]]:
        return [(c[1], c[2]) for c in self.log if c[0] == "event"]

    def events_on(self, kind: str) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the Events on objects of `kind`."""
        return [(c[1], c[2], c[5]) for c in self.log if c[0] == "event" and c[3] == kind]


def condition(status: Mapping[str, Any], type_: str) -> tuple[str, str]:
    found = next(c for c in status["conditions"] if c["type"] == type_)
    return found["status"], found["reason"]


def with_vm(observation: VMObservation, **fields: Any) -> VMObservation:
    assert observation.vm is not None
    return replace(observation, vm=replace(observation.vm, **fields))
