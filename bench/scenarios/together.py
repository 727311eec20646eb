"""Both kinds in one operator: N single-device policies, then N assignments each drawing on
one of them (quick: 40, full: 5,000; --objects sets N). The figure it exists for is the
operator's peak RSS with N policies and N assignments held together (issue 17's target:
at most 200 MiB at 5,000 of each); convergence times, CPU and calls are printed beside it.

The datacenter is the scale scenario's: ceil(N / 8) hosts of 8 GPUs and N powered-off VMs,
VM i on host i mod hosts (`dpio-vcsim generate`), taking GPU (i div hosts) mod 8 of it.
Policy i enables that one GPU on that one host for the bench namespace, so every VM's GPU is
offered by exactly one policy and VM i's assignment names policy i."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from bench import fleet, inventory, kube, manifests, stage, vcenter
from bench.context import Context
from bench.fleet import DEVICES_PER_HOST
from bench.report import Result, Table


@dataclass(frozen=True)
class Plan:
    """What the scenario applies for ``objects`` of each kind."""

    hosts: int
    policies: list[manifests.Body]
    assignments: list[manifests.Body]


def plan(objects: int) -> Plan:
    hosts = math.ceil(objects / DEVICES_PER_HOST)
    host_names = inventory.host_names(hosts)
    policies, assignments = [], []
    for i, vm in enumerate(inventory.vm_names(objects)):
        host = host_names[i % hosts]  # where `dpio-vcsim generate` places VM i
        address = inventory.device_address((i // hosts) % DEVICES_PER_HOST)  # GPUs in turn
        name = f"p-{i:05d}"
        policies.append(
            manifests.policy(
                name, addresses=[address], host_names=[host], consumers=[manifests.NAMESPACE]
            )
        )
        assignments.append(manifests.assignment(vm, vm, address, name))
    return Plan(hosts, policies, assignments)


def run(ctx: Context) -> Result:
    objects = ctx.objects or ctx.size(40, 5000)
    p = plan(objects)
    result = Result("together", params={"objects": objects, "latency_ms": ctx.latency_ms})
    table = Table(
        f"{objects} policies and {objects} assignments in one operator",
        [
            "kind",
            "converged (s)",
            "Ready",
            "vCenter calls",
            "calls/object",
            "k8s writes/object",
            "operator CPU (s, cumulative)",
            "peak RSS (MiB, cumulative)",
        ],
    )
    tag = f"together-{objects}"
    with stage.stage(ctx.state_dir(tag), profile=ctx.profile, py_spy=ctx.py_spy) as st:
        started_fleet = fleet.start(ctx, st, objects, tag, vms=objects)
        sim, k, operator = started_fleet.sim, started_fleet.kube, started_fleet.operator
        runs: list[dict[str, object]] = []
        try:
            for plural, kind, bodies in (
                (kube.HPP, "HostPassthroughPolicy", p.policies),
                (kube.VMDA, "VMDeviceAssignment", p.assignments),
            ):
                vcenter.reset(sim)
                before = k.request_totals()
                started = time.monotonic()
                k.create_many(bodies)
                wait = kube.wait_all(
                    k, plural, objects, kube.ready, since=started, timeout=ctx.timeout
                )
                calls = vcenter.counters(sim)
                writes = kube.writes(kube.delta(k.request_totals(), before))
                stat = operator.stat()
                table.add(
                    kind,
                    wait.seconds,
                    wait.done,
                    vcenter.total(calls),
                    vcenter.total(calls) / objects,
                    writes / objects,
                    stat.cpu_seconds,
                    stat.peak_rss_mib,
                )
                runs.append(
                    {
                        "kind": kind,
                        "seconds": wait.seconds,
                        "ready": wait.done,
                        "calls": calls,
                        "k8s_writes": writes,
                        "cpu_seconds": stat.cpu_seconds,
                        "peak_rss_mib": stat.peak_rss_mib,
                    }
                )
                if wait.seconds is None:
                    result.notes.append(
                        f"{kind}: only {wait.done}/{objects} Ready within {ctx.timeout:.0f}s"
                    )
                    break
        finally:
            operator.stop()
    result.tables.append(table)
    result.figures["runs"] = runs
    peaks = [r["peak_rss_mib"] for r in runs if isinstance(r["peak_rss_mib"], float)]
    result.figures["peak_rss_mib"] = max(peaks) if peaks else None
    return result
