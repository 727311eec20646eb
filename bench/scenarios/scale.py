"""100 -> 1,000 -> 5,000 objects (quick: 10 -> 40 -> 100): convergence time, peak RSS, vCenter
calls and Kubernetes writes per object. Each size runs on a fresh control plane and simulator,
so one size's leftovers don't flatter or burden the next."""

from __future__ import annotations

from bench import fleet, kube, stage, vcenter
from bench.context import Context
from bench.report import Result, Table


def run(ctx: Context) -> Result:
    sizes: tuple[int, ...] = (10, 40, 100) if ctx.quick else (100, 1000, 5000)
    if ctx.objects:
        sizes = (ctx.objects,)
    result = Result(
        "scale",
        params={
            "sizes": list(sizes),
            "kind": "HostPassthroughPolicy",
            "latency_ms": ctx.latency_ms,
        },
    )
    table = Table(
        "Convergence by size",
        [
            "objects",
            "hosts",
            "create (s)",
            "converged (s)",
            "settled",
            "Ready",
            "vCenter calls",
            "calls/object",
            "RetrievePropertiesEx",
            "k8s writes/object",
            "operator CPU (s)",
            "peak RSS (MiB)",
        ],
    )
    runs = []
    for size in sizes:
        with stage.stage(ctx.state_dir(f"scale-{size}"), profile=ctx.profile) as st:
            f = fleet.start(ctx, st, size, f"scale-{size}")
            with stage.running(f.operator):
                conv = fleet.converge(ctx, f)
        writes = kube.writes(conv.k8s_requests)
        table.add(
            size,
            conv.hosts,
            conv.create_seconds,
            conv.seconds,
            conv.settled,
            conv.ready,
            vcenter.total(conv.calls),
            conv.calls_per_object,
            conv.calls.get("RetrievePropertiesEx", 0),
            writes / size,
            conv.cpu_seconds,
            conv.peak_rss_mib,
        )
        runs.append(_figures(conv, writes))
        if conv.seconds is None:
            result.notes.append(
                f"{size} objects: only {conv.settled} settled within "
                f"{ctx.timeout:.0f}s; larger sizes skipped"
            )
            break
    result.tables.append(table)
    result.figures["runs"] = runs
    return result


def _figures(conv: fleet.Convergence, writes: int) -> dict[str, object]:
    return {
        "objects": conv.objects,
        "hosts": conv.hosts,
        "seconds": conv.seconds,
        "settled": conv.settled,
        "ready": conv.ready,
        "calls": conv.calls,
        "calls_per_object": conv.calls_per_object,
        "k8s_writes": writes,
        "k8s_requests": dict(kube.by_verb_resource(conv.k8s_requests)),
        "cpu_seconds": conv.cpu_seconds,
        "peak_rss_mib": conv.peak_rss_mib,
    }
