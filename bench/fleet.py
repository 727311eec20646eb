"""N small HostPassthroughPolicies (one device on one host each) brought to convergence: the
object population the steady and scale scenarios measure."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass

from bench import inventory, kube, manifests, stage, vcenter
from bench.context import Context
from bench.report import Table
from dpio_sandbox.vcsim import Simulator

DEVICES_PER_HOST = 8


@dataclass(frozen=True)
class Convergence:
    objects: int
    hosts: int
    create_seconds: float
    seconds: float | None  # create start -> all settled; None: timed out
    settled: int
    ready: int
    calls: dict[str, int]
    k8s_requests: Counter[kube.RequestKey]
    cpu_seconds: float
    peak_rss_mib: float

    @property
    def calls_per_object(self) -> float:
        return vcenter.total(self.calls) / self.objects


@dataclass
class Fleet:
    """A stage with one simulator sized for ``objects`` policies and the operator running."""

    st: stage.Stage
    sim: Simulator
    kube: kube.Kube
    operator: stage.Operator
    objects: int

    @property
    def hosts(self) -> int:
        return math.ceil(self.objects / DEVICES_PER_HOST)


def start(ctx: Context, st: stage.Stage, objects: int, tag: str, *, vms: int = 0) -> Fleet:
    """Simulator (ceil(objects / 8) hosts of 8 GPUs, `vms` powered-off VMs on them), CRDs, the
    bench namespace when there are VMs to assign, and the operator up."""
    hosts = math.ceil(objects / DEVICES_PER_HOST)
    path = inventory.write(
        inventory.Shape(hosts, DEVICES_PER_HOST, vms=vms), ctx.out / "inventories" / f"{tag}.json"
    )
    sim = st.simulator("vcsim", path, latency_ms=ctx.latency_ms)
    st.install("vcsim")
    k = kube.Kube.connect(st.plane.kubeconfig, st.plane.kubectl)
    if vms:
        k.namespace(manifests.NAMESPACE)
    return Fleet(st, sim, k, st.start_operator("vcsim"), objects)


def converge(ctx: Context, fleet: Fleet) -> Convergence:
    """Create the policies and wait until every one has settled (kstatus Reconciling=False)."""
    bodies = manifests.per_device_policies(
        inventory.host_names(fleet.hosts), DEVICES_PER_HOST, fleet.objects
    )
    vcenter.reset(fleet.sim)
    before = fleet.kube.request_totals()
    started = time.monotonic()
    create_seconds = fleet.kube.create_many(bodies)
    wait = kube.wait_all(
        fleet.kube, kube.HPP, fleet.objects, kube.settled, since=started, timeout=ctx.timeout
    )
    stat = fleet.operator.stat()
    return Convergence(
        objects=fleet.objects,
        hosts=fleet.hosts,
        create_seconds=create_seconds,
        seconds=wait.seconds,
        settled=wait.done,
        ready=sum(1 for body in wait.last if kube.ready(body)),
        calls=vcenter.counters(fleet.sim),
        k8s_requests=kube.delta(fleet.kube.request_totals(), before),
        cpu_seconds=stat.cpu_seconds,
        peak_rss_mib=stat.peak_rss_mib,
    )


def table(conv: Convergence) -> Table:
    """The convergence figures as one table (steady and scale print the same rows)."""
    out = Table(f"Convergence of {conv.objects} policies on {conv.hosts} hosts", ["", "value"])
    out.add("create all objects (s)", conv.create_seconds)
    out.add("create -> all settled (s)", conv.seconds)
    out.add("settled / Ready", f"{conv.settled} / {conv.ready}")
    out.add("vCenter calls", vcenter.total(conv.calls))
    out.add("vCenter calls per object", conv.calls_per_object)
    for method, n in sorted(conv.calls.items(), key=lambda kv: -kv[1]):
        out.add(f"  {method}", n)
    out.add("Kubernetes writes to dpio objects", kube.writes(conv.k8s_requests))
    out.add(
        "operator CPU (s) / peak RSS (MiB)", f"{conv.cpu_seconds:.1f} / {conv.peak_rss_mib:.0f}"
    )
    return out
