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

Held compactly (finding 37): per VM, its properties' paths (one tuple shared by every VM with
the same paths) and 8 bytes per property, the hash of the watch's fingerprint of its value.
A dict of fingerprint strings was ~880 bytes a VM (4.2 MiB at 5,000 VMs), this is ~160.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from dpio.vsphere.inventory_map import VM
from dpio.vsphere.watch import Change

ENTER, LEAVE, ASSIGN = "enter", "leave", "assign"
_DIGEST = struct.Struct("<q")  # hash() is a signed 64-bit value

#: One VM's watched properties: their paths, sorted, and a digest of each value, in that order.
Held = tuple[tuple[str, ...], bytes]


def _digests(fingerprints: Iterable[str]) -> bytes:
    return b"".join(_DIGEST.pack(hash(f)) for f in fingerprints)


class VMStates:
    """The watched properties last seen per VM of one vCenter (digests, not values)."""

    def __init__(self) -> None:
        self._held: dict[str, Held | None] = {}  # None: not known whole
        self._paths: dict[tuple[str, ...], tuple[str, ...]] = {}

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
            values = dict(sorted((path, value) for path, _op, value in change.values))
            now = (self._shared(tuple(values)), _digests(values.values()))
            self._held[change.moref] = now
            return before != now
        if change.moref not in self._held:
            return True
        held = self._held[change.moref]
        for path, op, value in change.values:
            if held is None:
                break
            if op == ASSIGN and "[" not in path:
                held = self._with(held, path, _digests((value,)))
            elif op == "remove" and "[" not in path:
                held = self._with(held, path, None)
            else:  # a part of a property changed: its whole value is not known here
                held = None
        self._held[change.moref] = held
        return True

    def _with(self, held: Held, path: str, digest: bytes | None) -> Held:
        """`held` with `path` set to `digest` (None: removed)."""
        by_path = dict(zip(held[0], _split(held[1]), strict=True))
        if digest is None:
            by_path.pop(path, None)
        else:
            by_path[path] = digest
        paths = tuple(sorted(by_path))
        return self._shared(paths), b"".join(by_path[p] for p in paths)

    def _shared(self, paths: tuple[str, ...]) -> tuple[str, ...]:
        return self._paths.setdefault(paths, paths)

    def __len__(self) -> int:
        return len(self._held)


def _split(digests: bytes) -> list[bytes]:
    size = _DIGEST.size
    return [digests[i : i + size] for i in range(0, len(digests), size)]
