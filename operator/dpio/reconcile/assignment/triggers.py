"""Which VMDeviceAssignments to look at again when something they depend on changes.

An assignment depends on more than its own object: its VM in vCenter, the referenced policy
(spec: who may consume what; status: which devices are active), its namespace's labels
(consumers.namespaceSelector) and other assignments' claims on the same devices. Each change
re-enqueues only the assignments it concerns, so a fleet of 500 VMs does not reconcile 500
times when one VM changes (docs/design.md#performance-targets). Everything here reads raw watch
bodies: no parsing on the watch path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dpio.api.conditions import READY
from dpio.reconcile.assignment.inputs import WAITING_REASONS
from dpio.reconcile.cache import Body, Key, key_of
from dpio.reconcile.controller import DELETED, Controller


def _status(body: Body) -> Mapping[str, Any]:
    return body.get("status") or {}


def waiting(body: Body) -> bool:
    """The assignment waits on another object (a device claim, another VM, a missing VM)."""
    conditions = _status(body).get("conditions") or ()
    return any(c.get("type") == READY and c.get("reason") in WAITING_REASONS for c in conditions)


def vm_moref(body: Body) -> str:
    return str((_status(body).get("vm") or {}).get("moref") or "")


def policy_name(body: Body) -> str:
    return str(((body.get("spec") or {}).get("policyRef") or {}).get("name") or "")


def claim(body: Body) -> tuple[Any, ...]:
    """What other assignments read of this one: its VM's host and which devices it holds."""
    devices = sorted(
        (str(d.get("name")), bool(d.get("attached")), str(d.get("address")))
        for d in _status(body).get("devices") or ()
    )
    return ((_status(body).get("vm") or {}).get("host"), tuple(devices))


def offer(body: Body) -> bytes:
    """What assignments read of a policy: its spec and each host device's state (not, e.g.,
    which VMs a device is attached to, which changes with every assignment), as a digest: kept
    per policy, the text itself was ~0.5 KB (a 625-host policy's, ~0.2 MB)."""
    hosts = {
        str(h.get("name")): sorted((str(d.get("address")), str(d.get("state")))
                                   for d in h.get("devices") or ())
        for h in _status(body).get("hosts") or ()
    }  # fmt: skip
    deleting = bool((body.get("metadata") or {}).get("deletionTimestamp"))
    text = json.dumps([body.get("spec"), hosts, deleting], sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


@dataclass
class AssignmentTriggers:
    """Fed by the watches (policies, namespaces, assignments) and vCenter change notification."""

    assignments: Controller
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    offers: dict[str, bytes] = field(default_factory=dict)
    #: Kept from the assignment events, so a vCenter change finds its assignments without a
    #: scan of the fleet (a scan per change made a fleet quadratic): by VM moref in status,
    #: and those waiting on another object.
    by_vm: dict[str, set[Key]] = field(default_factory=dict)
    waiting_keys: set[Key] = field(default_factory=set)
    #: By the policy they name, so a policy's change reads none of the others (the cache
    #: decodes a spec on each read, compact.py).
    by_policy: dict[str, set[Key]] = field(default_factory=dict)

    def labels(self, namespace: str) -> Mapping[str, str] | None:
        """None until the namespace watch has delivered it: selectors then fail closed."""
        return self.namespaces.get(namespace)

    def assignment_event(self, event_type: str, body: Body) -> None:
        """Feed the controller; when the object's claims moved, waiting assignments look again."""
        key = key_of(body)
        before = self.assignments.cache.get(key)
        self.assignments.observe(event_type, body)
        self._index(key, before, None if event_type == DELETED else body)
        gone = event_type == DELETED and before is not None
        if gone or (before is not None and claim(before) != claim(body)):
            for other in sorted(self.waiting_keys - {key}):
                self.assignments.enqueue(other)

    def policy_event(self, event_type: str, body: Body) -> None:
        name = str((body.get("metadata") or {}).get("name", ""))
        now = b"" if event_type == DELETED else offer(body)
        if self.offers.get(name) == now:
            return  # e.g. only attachedTo moved: nothing an assignment decides on
        self.offers[name] = now
        self._enqueue(self.by_policy.get(name, ()))

    def namespace_event(self, event_type: str, body: Body) -> None:
        meta = body.get("metadata") or {}
        name = str(meta.get("name", ""))
        if event_type == DELETED:
            self.namespaces.pop(name, None)
            return
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        before = self.namespaces.get(name)
        self.namespaces[name] = labels
        if before != labels:  # first seen too: a selector that failed closed may match now
            self._enqueue(k for k in self.assignments.cache.keys_snapshot() if k[0] == name)

    def vms_changed(self, morefs: frozenset[str]) -> None:
        """vCenter says these VMs changed: their assignments, and those waiting on any VM."""
        keys = set(self.waiting_keys)
        for moref in morefs:
            keys.update(self.by_vm.get(moref, ()))
        for key in sorted(keys):
            self.assignments.enqueue(key)

    def _index(self, key: Key, before: Body | None, after: Body | None) -> None:
        for keys_by, read in ((self.by_vm, vm_moref), (self.by_policy, policy_name)):
            old = read(before) if before is not None else ""
            new = read(after) if after is not None else ""
            if old != new or after is None:
                _discard(keys_by, old, key)
            if new:
                keys_by.setdefault(new, set()).add(key)
        if after is not None and waiting(after):
            self.waiting_keys.add(key)
        else:
            self.waiting_keys.discard(key)

    def _enqueue(self, keys: Iterable[Key]) -> None:
        for key in sorted(keys):
            self.assignments.enqueue(key)


def _discard(keys_by: dict[str, set[Key]], value: str, key: Key) -> None:
    keys = keys_by.get(value)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del keys_by[value]
