"""N converged objects left alone for a window: what does the operator cost when nothing
changes? Target: 0 vCenter writes and no polling, 0 Kubernetes writes per object
(docs/design.md, "Performance targets")."""

from __future__ import annotations

import sys
import time

from bench import fleet, kube, stage, vcenter
from bench.context import Context
from bench.report import Result, Table


def run(ctx: Context) -> Result:
    objects, window = ctx.objects or ctx.size(40, 1000), ctx.size(30, 300)
    params = {"objects": objects, "kind": "HostPassthroughPolicy", "window_s": window}
    result = Result("steady", params={**params, "latency_ms": ctx.latency_ms})
    with stage.stage(ctx.state_dir("steady"), profile=ctx.profile, py_spy=ctx.py_spy) as st:
        f = fleet.start(ctx, st, objects, "steady")
        with stage.running(f.operator):
            conv = fleet.converge(ctx, f)
            result.figures["converge_seconds"] = conv.seconds
            result.figures["converge_calls"] = conv.calls
            result.tables.append(fleet.table(conv))
            if conv.seconds is None:
                result.notes.append(
                    f"only {conv.settled}/{objects} settled within "
                    f"{ctx.timeout:.0f}s; measuring the window anyway"
                )
            time.sleep(5)  # let the last status writes land before the window opens
            _window(f, window, result)
    return result


def _window(f: fleet.Fleet, window: int, result: Result) -> None:
    versions = {
        b["metadata"]["name"]: b["metadata"]["resourceVersion"] for b in f.kube.list(kube.HPP)
    }
    requests_before = f.kube.request_totals()
    vcenter.reset(f.sim)
    cpu_before = f.operator.stat()
    print(f"   steady window of {window}s over {len(versions)} objects", file=sys.stderr)
    time.sleep(window)
    cpu_after = f.operator.stat()
    calls = vcenter.counters(f.sim)
    requests = kube.delta(f.kube.request_totals(), requests_before)
    after = {b["metadata"]["name"]: b["metadata"]["resourceVersion"] for b in f.kube.list(kube.HPP)}
    changed = sum(1 for name, rv in after.items() if versions.get(name) != rv)
    vc_writes = sum(calls.get(m, 0) for m in vcenter.WRITE_METHODS)
    k8s_writes = kube.writes(requests)
    secret_gets = sum(
        n for (verb, res, _), n in requests.items() if verb == "GET" and res == "secrets"
    )
    events = sum(n for (verb, res, _), n in requests.items() if verb == "POST" and res == "events")
    table = Table(f"Steady state over {window}s", ["what", "count", "per object per minute"])
    per = 60 / window / max(len(versions), 1)
    for label, value in [
        ("vCenter calls (all)", vcenter.total(calls)),
        (
            "vCenter calls (without WaitForUpdatesEx)",
            vcenter.total(calls, skip=("WaitForUpdatesEx",)),
        ),
        ("vCenter writes", vc_writes),
        ("objects with a new resourceVersion", changed),
        ("Kubernetes writes to dpio objects", k8s_writes),
        ("Kubernetes events posted", events),
        ("Secret GETs", secret_gets),
    ]:
        table.add(label, value, value * per)
    table.add("operator CPU seconds", cpu_after.cpu_since(cpu_before), None)
    table.add(
        "operator RSS now / peak (MiB)",
        f"{cpu_after.rss_mib:.0f} / {cpu_after.peak_rss_mib:.0f}",
        None,
    )
    result.tables.append(table)
    methods = Table("vCenter calls by method in the window", ["method", "calls"])
    for method, n in sorted(calls.items(), key=lambda kv: -kv[1]):
        methods.add(method, n)
    result.tables.append(methods)
    k8s_table = Table(
        "Kubernetes API requests in the window (all clients)", ["verb resource", "requests"]
    )
    for label, n in kube.by_verb_resource(requests):
        k8s_table.add(label, n)
    result.tables.append(k8s_table)
    result.figures.update(
        {
            "vcenter_calls": calls,
            "vcenter_writes": vc_writes,
            "objects_changed": changed,
            "k8s_writes": k8s_writes,
            "k8s_events": events,
            "secret_gets": secret_gets,
            "operator_cpu_seconds": cpu_after.cpu_since(cpu_before),
            "operator_rss_mib": cpu_after.rss_mib,
            "operator_peak_rss_mib": cpu_after.peak_rss_mib,
            "k8s_requests": dict(kube.by_verb_resource(requests)),
            "targets": {"vcenter_writes": 0, "k8s_writes": 0, "operator_rss_mib": "<= 200"},
        }
    )
