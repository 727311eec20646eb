"""500 powered-off VMs, one VMDeviceAssignment each (one static GPU), 50 ms latency: wall time
until all are Ready, vCenter calls per VM, and the ideal (minimal calls x latency / concurrency).
Target: at most 3 calls per converged VM (docs/design.md, "Performance targets").

Beside it, the same job as an administrator would script it without the operator (a govc loop,
bench/govc_loop.py) against an identical simulator whose devices are already enabled, in the
same run: wall time and calls side by side (issue #17 wants >= 5x less of each).

The VM controller is wired by `dpio.handlers.assignment`; without it the scenario says so
instead of printing figures."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections import Counter
from typing import Any

from bench import govc_loop, inventory, kube, manifests, stage, vcenter
from bench.context import Context
from bench.report import Result, Table, ratio
from dpio_sandbox.vcsim import Simulator

POLICY = "bench-gpus"
DEVICES_PER_HOST = 8
# Target: a converged VM costs at most 3 vCenter calls (read, reconfigure, task result).
MINIMAL_CALLS_PER_VM = 3
# The operator's vCenter session pool (dpio/vsphere/session.py DEFAULT_WORKERS).
CONCURRENCY = 8
FIRST_STATUS_TIMEOUT = 90.0


def run(ctx: Context) -> Result:
    hosts, vms = ctx.size(4, 64), ctx.size(20, 500)
    result = Result("vms", params={"hosts": hosts, "vms": vms, "latency_ms": ctx.latency_ms})
    if importlib.util.find_spec("dpio.handlers.assignment") is None:
        result.available = False
        result.reason = "no VMDeviceAssignment controller in this tree (dpio.handlers.assignment)"
        return result
    path = inventory.write(
        inventory.Shape(hosts, DEVICES_PER_HOST, vms=vms), ctx.out / "inventories" / "vms.json"
    )
    with stage.stage(ctx.state_dir("vms"), profile=ctx.profile, py_spy=ctx.py_spy) as st:
        sim = st.simulator("vcsim", path, latency_ms=ctx.latency_ms)
        st.install("vcsim")
        k = kube.Kube.connect(st.plane.kubeconfig, st.plane.kubectl)
        k.namespace(manifests.NAMESPACE)
        with stage.running(st.start_operator("vcsim")) as operator:
            body = manifests.fleet_policy(POLICY, DEVICES_PER_HOST, [manifests.NAMESPACE])
            k.create(body)
            policy = kube.wait_all(
                k, kube.HPP, 1, kube.ready, since=time.monotonic(), timeout=ctx.timeout
            )
            if policy.seconds is None:
                return _unavailable(result, f"policy not Ready ({operator.log})")
            _assign(ctx, k, sim, hosts=hosts, vms=vms, result=result)
            result.figures["operator_peak_rss_mib"] = operator.stat().peak_rss_mib
        _govc_side(ctx, st, hosts=hosts, vms=vms, result=result)
    return result


def _govc_side(ctx: Context, st: stage.Stage, *, hosts: int, vms: int, result: Result) -> None:
    """The govc loop on its own simulator; its figures go next to the operator's."""
    missing = govc_loop.available()
    if missing is not None:
        result.notes.append(f"govc loop not run: {missing}")
        return
    shape = inventory.Shape(hosts, DEVICES_PER_HOST, vms=vms, passthrough_ready=True)
    path = inventory.write(shape, ctx.out / "inventories" / "vms-govc.json")
    jobs = _jobs(inventory.load(path), hosts)
    sim = st.simulator("vcsim-govc", path, latency_ms=ctx.latency_ms)
    vcenter.reset(sim)
    print(f"   govc loop over {vms} VMs", file=sys.stderr)
    run = govc_loop.run(sim, ctx.out / "govc", govc_loop.script(jobs))
    calls = vcenter.counters(sim)
    reconfigures = calls.get("ReconfigVM_Task", 0)
    ok = run.returncode == 0 and reconfigures == 2 * vms
    if not ok:
        result.notes.append(
            f"govc loop rc={run.returncode}, ReconfigVM_Task={reconfigures} (want {2 * vms});"
            f" log {run.log}:\n{stage.tail(run.log)}"
        )
    _compare(result, calls, run.seconds if ok else None, vms)


def _jobs(inv: dict[str, Any], hosts: int) -> list[govc_loop.Job]:
    """VM i gets the GPU the operator side gives it (same address on the same host)."""
    by_host = {h["name"]: h for h in inventory.hosts(inv)}
    jobs = []
    for i, vm in enumerate(inventory.vms(inv)):
        address = inventory.device_address((i // hosts) % DEVICES_PER_HOST)
        device = next(d for d in by_host[vm["host"]]["pciDevices"] if d["address"] == address)
        jobs.append(
            govc_loop.Job(
                vm_path=f"/{inventory.DATACENTER}/vm/{vm['name']}",
                address=address,
                memory_mb=int(vm["memoryMB"]),
                mmio_gb=int(device.get("mmioSizeGB") or 0),
            )
        )
    return jobs


def _compare(
    result: Result, govc_calls: dict[str, int], govc_seconds: float | None, vms: int
) -> None:
    op_seconds = result.figures.get("seconds")
    op_calls = result.figures.get("calls")
    op_total = vcenter.total(op_calls) if isinstance(op_calls, dict) else None
    govc_total = vcenter.total(govc_calls)
    table = Table("Operator and govc loop", ["", "operator", "govc loop", "govc/operator"])
    seconds = op_seconds if isinstance(op_seconds, float) else None
    table.add("wall time (s)", seconds, govc_seconds, ratio(govc_seconds, seconds))
    table.add("vCenter calls", op_total, govc_total, ratio(govc_total, op_total))
    table.add(
        "calls per VM",
        op_total / vms if op_total is not None else None,
        govc_total / vms,
        None,
    )
    result.tables.append(table)
    methods = Table("govc loop: vCenter calls by method", ["method", "calls", "per VM"])
    for method, n in sorted(govc_calls.items(), key=lambda kv: -kv[1]):
        methods.add(method, n, n / vms)
    result.tables.append(methods)
    result.figures.update(
        {
            "govc_seconds": govc_seconds,
            "govc_calls": govc_calls,
            "govc_calls_per_vm": govc_total / vms,
            "wall_time_ratio_govc": ratio(govc_seconds, seconds),
            "calls_ratio_govc": ratio(govc_total, op_total),
        }
    )


def _assign(
    ctx: Context, k: kube.Kube, sim: Simulator, *, hosts: int, vms: int, result: Result
) -> None:
    names = inventory.vm_names(vms)
    # Generate places VM i on host i % hosts; give each VM its own GPU on that host.
    bodies = [
        manifests.assignment(
            name, name, inventory.device_address((i // hosts) % DEVICES_PER_HOST), POLICY
        )
        for i, name in enumerate(names)
    ]
    vcenter.reset(sim)
    started = time.monotonic()
    k.create_many(bodies)
    first = kube.wait_all(
        k,
        kube.VMDA,
        1,
        lambda b: bool(b.get("status")),
        since=started,
        timeout=FIRST_STATUS_TIMEOUT,
    )
    if first.seconds is None:
        _unavailable(result, "the operator wrote no VMDeviceAssignment status")
        return
    wait = kube.wait_all(k, kube.VMDA, vms, kube.ready, since=started, timeout=ctx.timeout)
    calls = vcenter.counters(sim)
    total = vcenter.total(calls)
    ideal = MINIMAL_CALLS_PER_VM * vms * ctx.latency_ms / 1000 / CONCURRENCY
    table = Table("VM convergence", ["", "value"])
    table.add("wall time to all Ready (s)", wait.seconds)
    table.add("Ready", f"{wait.done}/{vms}")
    table.add("vCenter calls", total)
    table.add("calls per VM", total / vms)
    table.add("ideal wall time (s)", ideal)
    table.add("wall time / ideal", ratio(wait.seconds, ideal))
    result.tables.append(table)
    methods = Table("vCenter calls by method", ["method", "calls", "per VM"])
    for method, n in sorted(calls.items(), key=lambda kv: -kv[1]):
        methods.add(method, n, n / vms)
    result.tables.append(methods)
    result.figures.update(
        {
            "seconds": wait.seconds,
            "ready": wait.done,
            "calls": calls,
            "calls_per_vm": total / vms,
            "ideal_seconds": ideal,
            "vs_ideal": ratio(wait.seconds, ideal),
            "targets": {"calls_per_vm": f"<= {MINIMAL_CALLS_PER_VM}"},
        }
    )
    if wait.seconds is None:
        result.notes.append(f"only {wait.done}/{vms} Ready within {ctx.timeout:.0f}s")
        result.tables.append(_not_ready(wait.last))


def _not_ready(items: list[kube.Body]) -> Table:
    """Why the others are not Ready: their conditions that are not as they should be."""
    reasons: Counter[tuple[str, str, str]] = Counter()
    for body in items:
        if kube.ready(body):
            continue
        for cond in body.get("status", {}).get("conditions") or []:
            healthy = "False" if cond.get("type") != "Ready" else "True"
            if cond.get("status") != healthy and cond.get("type") != "VMotionCompatible":
                message = str(cond.get("message", ""))[:90]
                reasons[(str(cond.get("type")), str(cond.get("reason")), message)] += 1
    table = Table("Not Ready: conditions", ["type", "reason", "message", "objects"])
    for (type_, reason, message), n in reasons.most_common(12):
        table.add(type_, reason, message, n)
    return table


def _unavailable(result: Result, reason: str) -> Result:
    result.available = False
    result.reason = reason
    return result
