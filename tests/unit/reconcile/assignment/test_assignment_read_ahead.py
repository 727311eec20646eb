"""An observation names the VMs of the next queued assignments to the adapter (observe.py,
READ_AHEAD), so that one read can serve many reconciles; what it names never changes what the
reconcile itself decides."""

from __future__ import annotations

from typing import Any

from tests.unit.reconcile.assignment.fakes import World, body

from dpio.reconcile.assignment.observe import READ_AHEAD, vms_named
from dpio.reconcile.finalizers import FINALIZER


def named(name: str, vm: dict[str, Any]) -> dict[str, Any]:
    spec = {
        "policyRef": {"name": "gpu-hosts"},
        "vm": vm,
        "devices": [{"name": "gpu0", "pci": {"address": "0000:3b:00.0"}}],
    }
    return body(name, spec=spec)


def test_the_queued_assignments_vms_go_with_the_observation_in_queue_order() -> None:
    queued = [
        named("b", {"name": "vm-b"}),
        named("c", {"instanceUUID": "4210aa00-0000-0000-0000-00000000000c"}),
        named("d", {"name": "vm-d"}),
    ]
    world = World.make(queued=queued)
    world.run(body())
    assert world.vms.ahead == [
        (("vm-b", ""), ("", "4210aa00-0000-0000-0000-00000000000c"), ("vm-d", ""))
    ]


def test_at_most_a_batched_reads_worth_is_named() -> None:
    queued = [named(f"a{i}", {"name": f"vm-{i}"}) for i in range(READ_AHEAD + 10)]
    world = World.make(queued=queued)
    world.run(body())
    assert len(world.vms.ahead[0]) == READ_AHEAD
    assert world.vms.ahead[0][0] == ("vm-0", "")


def test_a_deletion_names_them_too() -> None:
    attached = World.make()
    attached.run(body())  # the status of a reconfigure: the VM may hold our device
    status = attached.statuses()[0]
    world = World.make(queued=[named("b", {"name": "vm-b"})])
    world.run(body(deleting=True, status=status))
    assert world.calls()[:2] == ["vms_for", "observe_vm"]
    assert world.vms.ahead == [(("vm-b", ""),)]


def test_bodies_that_name_no_single_vm_are_skipped() -> None:
    ours = {"finalizers": [FINALIZER]}
    bodies: list[dict[str, Any]] = [
        {"metadata": ours, "spec": {"vm": {"name": "ok"}}},
        {"metadata": ours, "spec": {"vm": {"name": "both", "instanceUUID": "x"}}},
        {"metadata": ours, "spec": {"vm": {}}},
        {"metadata": ours, "spec": {"vm": {"name": 7}}},
        {"metadata": ours, "spec": None},
        {"metadata": ours},
        {},
    ]
    assert vms_named(bodies) == (("ok", ""),)


def test_what_is_queued_does_not_change_the_reconcile() -> None:
    alone, busy = World.make(), World.make(queued=[named("b", {"name": "vm-b"})])
    alone.run(body())
    busy.run(body())
    assert alone.calls() == busy.calls() == ["vms_for", "observe_vm", "status", "reconfigure"]
    assert alone.statuses() == busy.statuses()


def test_assignments_without_our_finalizer_are_not_named() -> None:
    """Their next run adds the finalizer and the first status, and reads nothing: an answer
    read ahead for them would wait unused."""
    new = body("new", spec=named("x", {"name": "vm-new"})["spec"], finalizers=())
    assert vms_named([new, named("b", {"name": "vm-b"})]) == (("vm-b", ""),)
