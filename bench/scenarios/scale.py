"""100 -> 1,000 -> 5,000 objects (quick: 10 -> 40 -> 100) of each kind, one curve per kind:
policies (each enabling one device on one host) and assignments (one powered-off VM with one
GPU each, after one policy enabled them all). Figures per size: convergence time, peak RSS,
vCenter calls and Kubernetes writes per object; each curve is also drawn as an SVG next to the
JSON (bench/plot.py). Each size runs on a fresh control plane and simulator, so one size's
leftovers don't flatter or burden the next."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench import fleet, kube, plot, restart, stage, vcenter, vm_fleet
from bench.context import Context
from bench.report import Result, Table


@dataclass(frozen=True)
class Curve:
    kind: str
    plural: str
    slug: str  # file and directory names: scale-<slug>.svg, state/scale-<slug>-<size>
    figures_key: str  # where its runs go in the JSON (policies keep the historical "runs")
    start: Callable[[Context, stage.Stage, int, str], fleet.Fleet]
    converge: Callable[[Context, fleet.Fleet], fleet.Convergence]


CURVES = (
    Curve("HostPassthroughPolicy", kube.HPP, "policies", "runs", fleet.start, fleet.converge),
    Curve(
        "VMDeviceAssignment",
        kube.VMDA,
        "assignments",
        "assignment_runs",
        vm_fleet.start,
        vm_fleet.converge,
    ),
)


def run(ctx: Context) -> Result:
    sizes: tuple[int, ...] = (10, 40, 100) if ctx.quick else (100, 1000, 5000)
    if ctx.objects:
        sizes = (ctx.objects,)
    result = Result(
        "scale",
        params={
            "sizes": list(sizes),
            "kinds": [c.kind for c in CURVES],
            "latency_ms": ctx.latency_ms,
        },
    )
    for curve in CURVES:
        runs = _curve(ctx, curve, sizes, result)
        result.figures[curve.figures_key] = runs
        svg = plot.curve(
            f"{curve.kind}: scale ({ctx.latency_ms} ms per SOAP request)",
            runs,
            ctx.out / f"scale-{curve.slug}.svg",
        )
        if svg is not None:
            result.notes.append(f"{curve.kind} curve drawn: {svg}")
    return result


def _curve(
    ctx: Context, curve: Curve, sizes: tuple[int, ...], result: Result
) -> list[dict[str, object]]:
    table = Table(
        f"{curve.kind}: convergence by size",
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
            "restart: resumed (s)",
            "restart: vCenter calls",
            "restart: writes vCenter/k8s",
        ],
    )
    runs = []
    for size in sizes:
        tag = f"scale-{curve.slug}-{size}"
        with stage.stage(ctx.state_dir(tag), profile=ctx.profile, py_spy=ctx.py_spy) as st:
            f = curve.start(ctx, st, size, tag)
            try:
                conv = curve.converge(ctx, f)
                again = (
                    restart.measure(f, curve.plural, timeout=ctx.timeout, quiet=ctx.size(5, 15))
                    if conv.seconds is not None
                    else None
                )
            finally:
                f.operator.stop()  # the restarted one, when there was a restart
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
            again.seconds if again else None,
            vcenter.total(again.calls) if again else None,
            f"{again.vcenter_writes}/{again.k8s_writes}" if again else None,
        )
        runs.append(_figures(conv, writes, again))
        if conv.seconds is None:
            result.notes.append(
                f"{curve.kind}, {size} objects: only {conv.settled} settled, {conv.ready} Ready"
                f" within {ctx.timeout:.0f}s; larger sizes skipped"
            )
            break
    result.tables.append(table)
    return runs


def _figures(
    conv: fleet.Convergence, writes: int, again: restart.Restart | None
) -> dict[str, object]:
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
        "restart": None
        if again is None
        else {
            "resumed_seconds": again.seconds,
            "calls": again.calls,
            "vcenter_writes": again.vcenter_writes,
            "k8s_writes": again.k8s_writes,
            "objects_changed": again.objects_changed,
            "targets": {"vcenter_writes": 0, "k8s_writes": 0},
        },
    }
