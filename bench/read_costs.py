"""`python -m bench.read_costs`: what the operator's own vCenter reads cost it in CPU, part by
part, side by side (docs/benchmarks.md, findings 31 and 32).

A simulator of 16 hosts x 8 GPUs and 128 VMs; the reads are built with the operator's filters
(`dpio.vsphere.properties`, `dpio.vsphere.vm.reader`) and timed with `time.process_time`, this
process's CPU only (the simulator's is not in it). Each case runs 5 times per round, the cases
alternate, 7 rounds; the figure is the median round. Cases:

- a policy's partial read of 4 hosts and their VMs (`InventoryReader.read_hosts`), then its two
  halves: the hosts' paths alone and the VMs' paths alone;
- 4 VM observations as an assignment reconcile makes them (`observe_filters`);
- the first case again with pyVmomi's `DataObject._GetPropertyList` memoized per class (py-spy
  names it the top frame by own samples of a 1,000-assignment run: is it the cost it seems?).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyVmomi import vim
from pyVmomi.VmomiSupport import DataObject

from bench import inventory, vcenter
from bench.report import Table
from dpio.vsphere import properties
from dpio.vsphere.inventory_map import HOST_PATHS, VM_PATHS
from dpio.vsphere.vm.reader import observe_filters, retrieve_all
from dpio_sandbox import vcsim

HOSTS, DEVICES, VMS = 16, 8, 128


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.read_costs", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dpio-read-costs-") as tmp:
        state = Path(tmp)
        path = inventory.write(inventory.Shape(HOSTS, DEVICES, vms=VMS), state / "inventory.json")
        sim = vcsim.start(state, inventory=path)
        try:
            with vcenter.connect(sim) as si:
                medians = measure(_cases(si), args.rounds, args.repeat)
        finally:
            vcsim.stop(state)
    table = Table(
        f"client CPU per read, {HOSTS} hosts x {DEVICES} GPUs, {VMS} VMs "
        f"(median of {args.rounds} rounds of {args.repeat})",
        ["read", "ms", "vs. the first"],
    )
    first = next(iter(medians.values()))
    for name, seconds in medians.items():
        table.add(name, round(seconds * 1000, 1), round(seconds / first, 2))
    print(table.render())
    return 0


def _cases(si: Any) -> dict[str, Callable[[], object]]:
    content = si.RetrieveContent()
    collector = content.propertyCollector
    view = content.viewManager.CreateContainerView(
        content.rootFolder, [vim.HostSystem, vim.VirtualMachine], True
    )
    hosts = [o for o in view.view if isinstance(o, vim.HostSystem)][:4]
    vms = [(o, o.runtime.host) for o in view.view if isinstance(o, vim.VirtualMachine)][:4]

    def hosts_with(host_paths: tuple[str, ...], vm_paths: tuple[str, ...]) -> Callable[[], object]:
        spec = properties.hosts_with_vms_filter(hosts, host_paths, vm_paths)
        return lambda: properties.retrieve_flat(collector, spec)

    def observations() -> object:
        return [retrieve_all(collector, observe_filters(vm, host)) for vm, host in vms]

    partial = hosts_with(HOST_PATHS, VM_PATHS)
    return {
        "policy: 4 hosts and their VMs": partial,
        "  the hosts' paths only": hosts_with(HOST_PATHS, ("name",)),
        "  the VMs' paths only": hosts_with(("name",), VM_PATHS),
        "assignment: 4 VM observations": observations,
        "policy read, _GetPropertyList memoized": _memoized(partial),
    }


def _memoized(read: Callable[[], object]) -> Callable[[], object]:
    """`read` with pyVmomi's per-object walk of the class chain replaced by a per-class cache
    for its duration only (the operator does not patch pyVmomi)."""
    original = DataObject.__dict__["_GetPropertyList"]
    cache: dict[type, list[Any]] = {}

    def listed(cls: type, includeBaseClassProps: bool = True) -> list[Any]:  # noqa: N803
        if not includeBaseClassProps:
            return list(getattr(cls, "_propList", ()))
        found = cache.get(cls)
        if found is None:
            found = cache[cls] = original.__func__(cls, True)
        return found

    def run() -> object:
        DataObject._GetPropertyList = classmethod(listed)  # type: ignore[assignment,method-assign]
        try:
            return read()
        finally:
            DataObject._GetPropertyList = original  # type: ignore[method-assign]

    return run


def measure(cases: dict[str, Callable[[], object]], rounds: int, repeat: int) -> dict[str, float]:
    """The median over ``rounds`` of each case's CPU seconds per call (cases alternate)."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            started = time.process_time()
            for _ in range(repeat):
                case()
            samples[name].append((time.process_time() - started) / repeat)
    return {name: statistics.median(values) for name, values in samples.items()}


if __name__ == "__main__":
    raise SystemExit(main())
