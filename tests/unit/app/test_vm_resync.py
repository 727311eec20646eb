"""After a watch recovery the VM side compares vCenter's full state with what the watch saw
before, and reports (so queues the assignments of) only the VMs that changed."""

from __future__ import annotations

import asyncio
from typing import Any

from dpio.app.vm_resync import VMStates
from dpio.reconcile.assignment.triggers import AssignmentTriggers
from dpio.reconcile.cache import Body
from dpio.reconcile.controller import Controller
from dpio.reconcile.queue import Result
from dpio.vsphere.watch import Change

VM, HOST = "VirtualMachine", "HostSystem"


def _vm(moref: str, op: str = "enter", *, startup: bool = False, **values: str) -> Change:
    props = {"name": moref, "runtime.powerState": "poweredOn", "config.changeVersion": "1"}
    props.update({k.replace("__", "."): v for k, v in values.items()})
    changes = tuple(sorted((path, "assign", value) for path, value in props.items()))
    return Change(VM, moref, op, frozenset(props), startup=startup, values=changes)


def _full_state(*, startup: bool = False, **changed: str) -> list[Change]:
    """vCenter's full state of vm-1..vm-5 (and a host); `changed`: vm -> new changeVersion."""
    host = Change(HOST, "host-1", "enter", frozenset({"name"}), startup=startup)
    vms = [
        _vm(f"vm-{i}", startup=startup, config__changeVersion=changed.get(f"vm_{i}", "1"))
        for i in range(1, 6)
    ]
    return [host, *vms]


def test_the_first_full_state_reports_nothing_and_an_unchanged_recovery_nothing() -> None:
    states = VMStates()
    assert states.changed(_full_state(startup=True)) == frozenset()
    assert len(states) == 5
    assert states.changed(_full_state()) == frozenset()  # the watch came back: nothing moved


def test_a_recovery_reports_only_the_vms_that_changed_while_the_watch_was_down() -> None:
    states = VMStates()
    states.changed(_full_state(startup=True))
    assert states.changed(_full_state(vm_2="7")) == {"vm-2"}
    assert states.changed(_full_state(vm_2="7")) == frozenset()  # held the new value


def test_a_new_vm_in_a_recovery_is_reported() -> None:
    states = VMStates()
    states.changed(_full_state(startup=True))
    assert states.changed([*_full_state(), _vm("vm-9")]) == {"vm-9"}


def test_changes_between_full_states_are_reported_and_held() -> None:
    states = VMStates()
    states.changed(_full_state(startup=True))
    off = Change(VM, "vm-3", "modify", frozenset({"runtime.powerState"}),
                 values=(("runtime.powerState", "assign", "poweredOff"),))  # fmt: skip
    assert states.changed([off]) == {"vm-3"}
    # The recovery's full state shows vm-3 off, as the watch last saw it: no change.
    recovery = [c if c.moref != "vm-3" else _vm("vm-3", runtime__powerState="poweredOff")
                for c in _full_state()]  # fmt: skip
    assert states.changed(recovery) == frozenset()


def test_a_nested_partial_update_makes_the_vm_count_as_changed_at_the_next_full_state() -> None:
    """`config.hardware.device[4000]` says what changed in the list, not the whole list: what
    the VM looks like is not known any more, so the recovery reports it rather than guess."""
    states = VMStates()
    states.changed(_full_state(startup=True))
    nested = Change(VM, "vm-4", "modify", frozenset({"config.hardware.device[4000]"}),
                    values=(("config.hardware.device[4000]", "add", "<device>"),))  # fmt: skip
    assert states.changed([nested]) == {"vm-4"}
    assert states.changed(_full_state()) == {"vm-4"}
    assert states.changed(_full_state()) == frozenset()


def test_a_vm_that_left_is_reported_and_forgotten() -> None:
    states = VMStates()
    states.changed(_full_state(startup=True))
    assert states.changed([Change(VM, "vm-5", "leave", frozenset())]) == {"vm-5"}
    assert len(states) == 4


def _assignment(name: str, vm: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "t", "resourceVersion": "1", "generation": 1},
        "spec": {"policyRef": {"name": "p"}},
        "status": {"vm": {"moref": vm}},
    }


def test_a_recovery_queues_the_assignment_of_the_changed_vm_only() -> None:
    """Through the assignment triggers: five assignments, one VM changed while the watch was
    down, one reconcile (one `observe_vm`), not five."""
    reconciled: list[str] = []

    async def main() -> None:
        async def reconcile(body: Body) -> Result:
            reconciled.append(body["metadata"]["name"])
            return Result()

        controller = Controller("VMDeviceAssignment", reconcile)
        triggers = AssignmentTriggers(controller)
        for i in range(1, 6):
            triggers.assignment_event("ADDED", _assignment(f"a-{i}", f"vm-{i}"))
        controller.start()
        await asyncio.sleep(0.05)
        reconciled.clear()
        states = VMStates()
        states.changed(_full_state(startup=True))
        triggers.vms_changed(states.changed(_full_state(vm_4="2")))
        await asyncio.sleep(0.05)
        await controller.stop()

    asyncio.run(main())
    assert reconciled == ["a-4"]


def test_vms_share_their_paths_and_a_removed_property_is_held_as_gone() -> None:
    """Held compactly (finding 37): the paths once for every VM with the same ones, 8 bytes per
    value; a property removed and assigned again reads as the same VM once more."""
    states = VMStates()
    states.changed(_full_state(startup=True))
    held = states._held
    first, second = held["vm-1"], held["vm-2"]
    assert first is not None
    assert second is not None
    assert first[0] is second[0]
    assert len(first[1]) == 8 * len(first[0])
    gone = Change(VM, "vm-1", "modify", frozenset({"name"}), values=(("name", "remove", ""),))
    assert states.changed([gone]) == {"vm-1"}
    assert states.changed(_full_state()) == {"vm-1"}  # the name is back: a change
    back = Change(VM, "vm-1", "modify", frozenset({"name"}), values=(("name", "remove", ""),))
    states.changed([back])
    again = Change(VM, "vm-1", "modify", frozenset({"name"}), values=(("name", "assign", "vm-1"),))
    states.changed([again])
    assert states.changed(_full_state()) == frozenset()
    last = held["vm-1"]
    assert last is not None
    assert last[0] is second[0]
