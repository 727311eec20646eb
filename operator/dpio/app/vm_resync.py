"""After a watch recovery, the VMs that changed, not every VM vCenter lists again.

When the change watch of a vCenter comes back after a gap with a new PropertyCollector (the
session expired, vCenter lost the collector), vCenter sends its full state again: every VM
"enters". Taken as a change of each, that queued the assignment of every VM (one
`observe_vm` each: at 500 VMs, 500 vCenter reads for nothing). Instead the full state is
compared with the watched properties last seen of each VM, as the host side compares its
re-read with what each policy last planned on (`dpio.app.resync`): only VMs whose properties
differ, or that were not seen before, are reported, as an informer's relist hands on only the
objects that changed.

What is held per VM is what the watch reported of it: the whole value of every watched
property from a full state (`enter`) or a whole-property `assign`. A nested partial update
(`config.hardware.device[4000]`, sent when `partialUpdates` is on) leaves the held value
unknown, so the VM counts as changed at the next full state: a VM is never skipped on a guess.
A VM deleted while the watch was down is missing from the full state and not reported, as
before; its assignment finds it gone on its next reconcile.
"""

from __future__ import annotations

from collections.abc import Sequence

from dpio.vsphere.inventory_map import VM
from dpio.vsphere.watch import Change

ENTER, LEAVE, ASSIGN = "enter", "leave", "assign"


class VMStates:
    """The watched properties last seen per VM of one vCenter (fingerprints, not values)."""

    def __init__(self) -> None:
        self._held: dict[str, dict[str, str] | None] = {}  # None: not known whole

    def changed(self, changes: Sequence[Change]) -> frozenset[str]:
        """The morefs of the VMs in `changes` an assignment must look at again; what is held is
        brought up to date."""
        morefs: set[str] = set()
        for change in changes:
            if change.kind != VM:
                continue
            if self._update(change) and not change.startup:
                morefs.add(change.moref)
        return frozenset(morefs)

    def _update(self, change: Change) -> bool:
        """Hold what `change` says of its VM; did the VM change?"""
        if change.operation == LEAVE:
            self._held.pop(change.moref, None)
            return True
        if change.operation == ENTER:
            before = self._held.get(change.moref)
            now = {path: value for path, _op, value in change.values}
            self._held[change.moref] = now
            return before != now
        held = self._held.get(change.moref)
        for path, op, value in change.values:
            if held is None:
                break
            if op == ASSIGN and "[" not in path:
                held[path] = value
            elif op == "remove" and "[" not in path:
                held.pop(path, None)
            else:  # a part of a property changed: its whole value is not known here
                self._held[change.moref] = held = None
        return True

    def __len__(self) -> int:
        return len(self._held)
