"""N powered-off VMs with one VMDeviceAssignment each (one static GPU), after one policy has
enabled every GPU: the population of the assignment scale curve. Eight VMs per host, one GPU of
the host each, so every assignment can be met."""

from __future__ import annotations

import time

from bench import fleet as policy_fleet
from bench import inventory, kube, manifests, stage, vcenter
from bench.context import Context
from bench.fleet import DEVICES_PER_HOST, Convergence, Fleet

POLICY = "bench-gpus"


def start(ctx: Context, st: stage.Stage, objects: int, tag: str) -> Fleet:
    """Simulator, CRDs and operator up, and the policy enabling every GPU Ready."""
    fleet = policy_fleet.start(ctx, st, objects, tag, vms=objects)
    k = fleet.kube
    k.create(manifests.fleet_policy(POLICY, DEVICES_PER_HOST, [manifests.NAMESPACE]))
    ready = kube.wait_all(k, kube.HPP, 1, kube.ready, since=time.monotonic(), timeout=ctx.timeout)
    if ready.seconds is None:
        raise RuntimeError(f"policy {POLICY} not Ready within {ctx.timeout:.0f}s")
    return fleet


def converge(ctx: Context, fleet: Fleet) -> Convergence:
    """Create one assignment per VM and wait until every one is Ready."""
    hosts = fleet.hosts
    bodies = [
        manifests.assignment(
            name, name, inventory.device_address((i // hosts) % DEVICES_PER_HOST), POLICY
        )
        for i, name in enumerate(inventory.vm_names(fleet.objects))
    ]
    vcenter.reset(fleet.sim)
    before = fleet.kube.request_totals()
    started = time.monotonic()
    create_seconds = fleet.kube.create_many(bodies)
    wait = kube.wait_all(
        fleet.kube, kube.VMDA, fleet.objects, kube.ready, since=started, timeout=ctx.timeout
    )
    stat = fleet.operator.stat()
    return Convergence(
        objects=fleet.objects,
        hosts=hosts,
        create_seconds=create_seconds,
        seconds=wait.seconds,
        settled=sum(1 for body in wait.last if kube.settled(body)),
        ready=wait.done,
        calls=vcenter.counters(fleet.sim),
        k8s_requests=kube.delta(fleet.kube.request_totals(), before),
        cpu_seconds=stat.cpu_seconds,
        peak_rss_mib=stat.peak_rss_mib,
    )
