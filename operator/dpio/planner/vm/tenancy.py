"""Tenancy: which namespace may act on which VM, with which actions, how many devices.

A HostPassthroughPolicy's `consumers` grant some namespaces some VMs (by vSphere folder or
resource pool, which vSphere administrators control with vCenter permissions) and some actions
(power and conflict policies), within a device quota. An assignment is allowed when ONE entry
matches its namespace, scopes its VM and allows both of its policies. Everything here is
checked before any vCenter write, deletion included (docs/design.md, "Tenancy").

What a refusal says is written for the tenant: a VM that does not exist and a VM outside the
scope read the same (reason VMOutOfScope, one message), so a namespace can't probe vCenter for
VM names; other VMs, other tenants' objects, the vCenter and its account are never named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dpio.api.assignment import PowerPolicy, VMDeviceAssignmentSpec
from dpio.api.common import LabelSelector, LabelSelectorOperator
from dpio.api.conditions import (
    CONFLICT_POLICY_NOT_ALLOWED,
    HOST_NOT_IN_POLICY,
    NOT_A_CONSUMER,
    POLICY_NOT_FOUND,
    POWER_POLICY_NOT_ALLOWED,
    QUOTA_EXCEEDED,
    VCENTER_CHANGED,
    VM_OUT_OF_SCOPE,
    VM_REPLACED,
)
from dpio.api.policy import Consumer, HostPassthroughPolicySpec, VMScope
from dpio.planner.conditions import Problem
from dpio.planner.observed import ObservedHost, ObservedInventory
from dpio.planner.selection import InvalidSpecError, select_hosts
from dpio.planner.vm.observed import Age, ObservedVM, QuotaUse, VMObservation


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: every matchLabels and matchExpressions entry must hold."""
    if any(labels.get(k) != v for k, v in selector.match_labels.items()):
        return False
    for req in selector.match_expressions:
        present, value = req.key in labels, labels.get(req.key)
        ok = {
            LabelSelectorOperator.IN: present and value in req.values,
            LabelSelectorOperator.NOT_IN: not present or value not in req.values,
            LabelSelectorOperator.EXISTS: present,
            LabelSelectorOperator.DOES_NOT_EXIST: not present,
        }[req.operator]
        if not ok:
            return False
    return True


def serves(consumer: Consumer, namespace: str, labels: Mapping[str, str] | None) -> bool:
    """Whether the entry names the namespace, or selects it by labels. Labels not known yet
    (None) match no selector: NotIn and DoesNotExist would match an empty label set."""
    if namespace in consumer.namespaces:
        return True
    selector = consumer.namespace_selector
    return selector is not None and labels is not None and selector_matches(selector, labels)


def _under(path: str, roots: Sequence[str]) -> bool:
    return bool(path) and any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def in_scope(scope: VMScope, vm: ObservedVM) -> bool:
    """The VM's folder or resource pool is one of the scope's, or below one (subfolders and
    child pools count, as vCenter permissions propagate to them)."""
    return _under(vm.folder, scope.folders) or _under(vm.resource_pool, scope.resource_pools)


def host_selected(spec: HostPassthroughPolicySpec, vm: ObservedVM) -> bool:
    """The VM runs on a host the policy selects (its hosts.names / clusters / namePattern)."""
    cluster = vm.cluster.name if vm.cluster else None
    host = ObservedHost(moref=vm.host_moref, name=vm.host, cluster=cluster)
    clusters = {cluster: (vm.host,)} if cluster else {}
    try:
        return bool(select_hosts(spec.hosts, ObservedInventory((host,), clusters)).hosts)
    except InvalidSpecError:
        return False  # the policy reports its own bad spec; it selects nothing


def _labels(observed: VMObservation) -> Mapping[str, str] | None:
    return observed.namespace_labels if observed.namespace_labels_known else None


def consumer_problem(observed: VMObservation, policy_name: str, namespace: str) -> Problem | None:
    """Before vCenter is asked anything: the policy exists and some entry serves the namespace.
    A namespace that is not a consumer learns nothing about the VM."""
    policy = observed.policy
    if policy is None:
        return Problem(POLICY_NOT_FOUND, f"HostPassthroughPolicy {policy_name} does not exist")
    if any(serves(c, namespace, _labels(observed)) for c in policy.spec.consumers):
        return None
    return Problem(
        NOT_A_CONSUMER,
        f"Namespace {namespace} is not a consumer of HostPassthroughPolicy {policy_name} "
        "(no entry of its spec.consumers lists the namespace or selects it by label)",
    )


def out_of_scope(spec: VMDeviceAssignmentSpec, namespace: str) -> Problem:
    """The one refusal for a VM that is missing AND for one outside the scope."""
    vm = spec.vm.name or spec.vm.instance_uuid
    return Problem(
        VM_OUT_OF_SCOPE,
        f"VM {vm} is not among the VMs namespace {namespace} may use through "
        f"HostPassthroughPolicy {spec.policy_ref.name}: no such VM in the folders and resource "
        "pools its consumer entry allows",
    )


@dataclass(frozen=True, slots=True)
class Grant:
    """The consumer entry that allows an assignment: what else it permits and limits."""

    index: int  # position in spec.consumers, for messages to administrators
    consumer: Consumer

    @property
    def power_off_allowed(self) -> bool:
        """ShutdownGuest may fall back to a hard power-off only where PowerOff is allowed."""
        return PowerPolicy.POWER_OFF in self.consumer.power_policies


def _stage(consumer: Consumer, spec: VMDeviceAssignmentSpec, vm: ObservedVM) -> int:
    """How far an entry that serves the namespace gets: 0 VM out of scope, 1 power policy not
    allowed, 2 conflict policy not allowed, 3 allowed."""
    if not in_scope(consumer.vms, vm):
        return 0
    if spec.power_policy not in consumer.power_policies:
        return 1
    if spec.conflict_policy not in consumer.conflict_policies:
        return 2
    return 3


def authorize(
    observed: VMObservation, spec: VMDeviceAssignmentSpec, namespace: str, vm: ObservedVM
) -> Grant | Problem:
    """The first entry that serves the namespace, scopes the VM and allows both policies; or
    the refusal of the entry that came closest. The VM must also run on a selected host (a
    networkDirectPath-only assignment claims no device, but still changes the VM)."""
    policy = observed.policy
    if policy is None:
        return Problem(POLICY_NOT_FOUND, f"HostPassthroughPolicy {spec.policy_ref.name} is gone")
    serving = [
        (i, c)
        for i, c in enumerate(policy.spec.consumers)
        if serves(c, namespace, _labels(observed))
    ]
    if not serving:
        problem = consumer_problem(observed, spec.policy_ref.name, namespace)
        assert problem is not None  # the same check as before vCenter was asked
        return problem
    best = max(serving, key=lambda e: _stage(e[1], spec, vm))
    stage = _stage(best[1], spec, vm)
    if stage == 0:
        return out_of_scope(spec, namespace)
    where = f"for namespace {namespace} by HostPassthroughPolicy {spec.policy_ref.name}"
    if stage == 1:
        allowed = ", ".join(p.value for p in best[1].power_policies)
        return Problem(
            POWER_POLICY_NOT_ALLOWED,
            f"powerPolicy {spec.power_policy.value} is not allowed {where} (allowed: {allowed})",
        )
    if stage == 2:
        allowed = ", ".join(p.value for p in best[1].conflict_policies)
        return Problem(
            CONFLICT_POLICY_NOT_ALLOWED,
            f"conflictPolicy {spec.conflict_policy.value} is not allowed {where} "
            f"(allowed: {allowed})",
        )
    if not host_selected(policy.spec, vm):
        return Problem(
            HOST_NOT_IN_POLICY,
            f"VM {vm.name} runs on a host HostPassthroughPolicy {spec.policy_ref.name} does not "
            "select; move it to one of the policy's hosts",
        )
    return Grant(*best)


def quota_exceeded(
    grant: Grant,
    observed: VMObservation,
    me: Age,
    devices: int,
    policy_name: str,
) -> Problem | None:
    """maxDevices: the entry's namespaces share the quota, oldest assignment first. Walking the
    same ordered list, every reconciler reaches the same verdict whatever order they run in; an
    assignment that does not fit counts for nobody (it holds nothing new)."""
    limit = grant.consumer.max_devices
    if limit is None:
        return None
    labels = observed.namespace_labels
    mine = QuotaUse(me.namespace, me.name, me.creation_timestamp, devices, labels)
    users = [
        u for u in observed.quota_uses if serves(grant.consumer, u.namespace, u.namespace_labels)
    ]
    used = 0
    for use in sorted([*users, mine], key=lambda u: u.age):
        if used + use.devices <= limit:
            used += use.devices
        elif use is mine:
            return Problem(
                QUOTA_EXCEEDED,
                f"{devices} device(s) would exceed the quota of {limit} that "
                f"HostPassthroughPolicy {policy_name} gives namespace {me.namespace} (maxDevices; "
                f"{used} already held by older assignments)",
            )
    return None


def pin_problem(pin: tuple[str, str], observed: VMObservation, vm: ObservedVM) -> Problem | None:
    """After its first observation an assignment acts on the VM it found then, in the vCenter it
    found it in (status.vm.instanceUUID / vcenter), and on no other: not on a VM that took the
    name since, nor on a same-named VM of another vCenter the policy was pointed at."""
    uuid, vcenter = pin
    if vcenter and observed.vcenter_uuid and vcenter != observed.vcenter_uuid:
        return Problem(
            VCENTER_CHANGED,
            "The policy now uses another vCenter than the one this assignment's VM was found "
            "in; nothing is changed. Delete the assignment and create it again to use a VM "
            "there",
        )
    if uuid and vm.instance_uuid and uuid.lower() != vm.instance_uuid.lower():
        return Problem(
            VM_REPLACED,
            f"spec.vm now finds another VM than the one this assignment was pinned to "
            f"(instance UUID {uuid}); nothing is changed. Delete the assignment and create it "
            "again to use the other VM",
        )
    return None
