"""Which assignments look again when their VM, policy, namespace or a rival assignment changes:
exactly those concerned, so one change does not reconcile the whole fleet."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dpio.reconcile.assignment.triggers import AssignmentTriggers
from dpio.reconcile.cache import Body, Key, ObjectCache, key_of


class FakeController:
    """The part of `Controller` the triggers use, over a real cache; records what was enqueued."""

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        self.cache = ObjectCache()
        for body in bodies:
            self.cache.put(body)
        self.enqueued: list[Key] = []

    def observe(self, event_type: str, body: Body) -> None:
        if event_type == "DELETED":
            self.cache.delete(key_of(body))
        else:
            self.cache.put(body)

    def enqueue(self, key: Key) -> None:
        self.enqueued.append(key)


def vmda(
    name: str,
    *,
    ns: str = "ml",
    policy: str = "gpus",
    moref: str = "",
    host: str = "",
    reason: str = "Reconciled",
    devices: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "reason": reason}]}
    if moref or host:
        status["vm"] = {"moref": moref, "host": host}
    if devices is not None:
        status["devices"] = devices
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"policyRef": {"name": policy}},
        "status": status,
    }


def triggers(*bodies: dict[str, Any]) -> tuple[AssignmentTriggers, FakeController]:
    """The triggers over a fleet fed as the watch feeds it (ADDED events)."""
    controller = FakeController([])
    trig = AssignmentTriggers(controller)  # type: ignore[arg-type]
    for body in bodies:
        trig.assignment_event("ADDED", body)
    controller.enqueued.clear()
    return trig, controller


def names(controller: FakeController) -> set[str]:
    return {name for _, name in controller.enqueued}


FLEET = (
    vmda("a", moref="vm-1", host="esx01"),
    vmda("b", moref="vm-2", host="esx01"),
    vmda("waits-claim", moref="vm-3", host="esx01", reason="ClaimedByAssignment"),
    vmda("waits-vm", reason="VMOutOfScope"),  # a VM not found reads as out of scope
    vmda("other-policy", policy="nics", moref="vm-4", host="esx02"),
    vmda("elsewhere", ns="web", moref="vm-5", host="esx02"),
)


@pytest.mark.parametrize(
    ("morefs", "expected"),
    [
        ({"vm-1"}, {"a", "waits-claim", "waits-vm"}),
        ({"vm-99"}, {"waits-claim", "waits-vm"}),  # a VM nobody manages may free a device
        ({"vm-4", "vm-5"}, {"other-policy", "elsewhere", "waits-claim", "waits-vm"}),
    ],
)
def test_vm_changes_enqueue_their_assignments_and_the_waiting(
    morefs: set[str], expected: set[str]
) -> None:
    trig, controller = triggers(*FLEET)
    trig.vms_changed(frozenset(morefs))
    assert names(controller) == expected


def test_the_vm_index_follows_moves_waits_and_deletions() -> None:
    """vms_changed reads an index the events keep, not the whole fleet: it must follow."""
    trig, controller = triggers(*FLEET)
    trig.assignment_event("MODIFIED", vmda("a", moref="vm-7", host="esx01"))  # another VM now
    trig.assignment_event("MODIFIED", vmda("waits-claim", moref="vm-3", host="esx01"))  # served
    trig.assignment_event("DELETED", FLEET[1])
    controller.enqueued.clear()
    trig.vms_changed(frozenset({"vm-1", "vm-2", "vm-3"}))
    assert names(controller) == {"waits-claim", "waits-vm"}
    controller.enqueued.clear()
    trig.vms_changed(frozenset({"vm-7"}))
    assert names(controller) == {"a", "waits-vm"}
    assert trig.by_vm.get("vm-1") is None  # emptied entries go
    assert "vm-2" not in trig.by_vm


def _attached(body: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    changed["status"]["devices"] = [{"name": "gpu0", "attached": True, "address": "0000:3b:00.0"}]
    return changed


def _new_message(body: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    changed["status"]["conditions"][0]["message"] = "something else"
    return changed


@pytest.mark.parametrize(
    ("event", "change", "expected"),
    [
        ("MODIFIED", _attached, {"waits-claim", "waits-vm"}),  # its claim moved
        ("MODIFIED", _new_message, set()),  # only words changed: nobody cares
        ("DELETED", lambda b: b, {"waits-claim", "waits-vm"}),  # its devices may be free
    ],
)
def test_a_rivals_claim_change_wakes_the_waiting_only(
    event: str, change: Any, expected: set[str]
) -> None:
    trig, controller = triggers(*FLEET)
    trig.assignment_event(event, change(FLEET[0]))
    assert names(controller) == expected


def test_a_new_assignment_wakes_nobody_else() -> None:
    trig, controller = triggers(*FLEET)
    trig.assignment_event("ADDED", vmda("new", moref="vm-9", host="esx01"))
    assert names(controller) == set()
    assert ("ml", "new") in controller.cache


def _policy(state: str = "Active", attached_to: tuple[str, ...] = ()) -> dict[str, Any]:
    device = {"address": "0000:3b:00.0", "state": state, "attachedTo": list(attached_to)}
    return {
        "metadata": {"name": "gpus"},
        "spec": {"consumers": [{"namespaces": ["ml"], "vms": {"folders": ["/DC1/vm/ml"]}}]},
        "status": {"hosts": [{"name": "esx01", "devices": [device]}]},
    }


def test_policy_changes_wake_its_assignments_only_when_the_offer_changes() -> None:
    trig, controller = triggers(*FLEET)
    trig.policy_event("ADDED", _policy())
    first = names(controller)
    controller.enqueued.clear()
    trig.policy_event("MODIFIED", _policy(attached_to=("vm-a",)))  # attachments: not an offer
    quiet = names(controller)
    trig.policy_event("MODIFIED", _policy(state="PendingReboot"))
    assert first == {"a", "b", "waits-claim", "waits-vm", "elsewhere"}
    assert quiet == set()
    assert names(controller) == first
    controller.enqueued.clear()
    trig.policy_event("DELETED", _policy(state="PendingReboot"))
    assert names(controller) == first


def test_the_policy_index_follows_a_changed_policy_ref_and_deletions() -> None:
    """policy_event reads an index the events keep, not the whole fleet: it must follow."""
    trig, controller = triggers(*FLEET)
    trig.assignment_event("MODIFIED", vmda("a", policy="nics", moref="vm-1", host="esx01"))
    trig.assignment_event("DELETED", FLEET[1])
    controller.enqueued.clear()
    trig.policy_event("ADDED", _policy())
    assert names(controller) == {"waits-claim", "waits-vm", "elsewhere"}
    controller.enqueued.clear()
    nics = _policy()
    nics["metadata"]["name"] = "nics"
    trig.policy_event("ADDED", nics)
    assert names(controller) == {"a", "other-policy"}
    trig.assignment_event("DELETED", FLEET[4])
    assert trig.by_policy["nics"] == {("ml", "a")}  # emptied entries go, as with VMs
    trig.assignment_event("DELETED", vmda("a", policy="nics"))
    assert "nics" not in trig.by_policy


def test_namespace_label_changes_wake_the_assignments_in_it() -> None:
    trig, controller = triggers(*FLEET)
    assert trig.labels("web") is None  # not seen yet: namespace selectors fail closed
    ns = {"metadata": {"name": "web", "labels": {"gpu": "no"}}}
    trig.namespace_event("ADDED", ns)
    assert names(controller) == {"elsewhere"}  # first sight: a selector may match now
    controller.enqueued.clear()
    trig.namespace_event("MODIFIED", ns)
    assert names(controller) == set()  # labels unchanged
    trig.namespace_event("MODIFIED", {"metadata": {"name": "web", "labels": {"gpu": "yes"}}})
    assert names(controller) == {"elsewhere"}
    assert trig.labels("web") == {"gpu": "yes"}
    trig.namespace_event("DELETED", ns)
    assert trig.labels("web") is None
    trig.namespace_event("ADDED", {"metadata": {"name": "plain"}})
    assert trig.labels("plain") == {}  # seen, without labels
