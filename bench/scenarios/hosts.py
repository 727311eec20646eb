"""64 hosts x 8 devices, one HostPassthroughPolicy enabling 4 devices per host, 50 ms latency:
the operator's wall time and SOAP calls, and Ansible's `vmware_host_passthrough` doing the same
job against an identical simulator, in the same run, as ratios (issue #6 wants ≥5x less wall
time and ≥10x fewer SOAP calls)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import ansible, inventory, kube, manifests, stage, vcenter
from bench.context import Context
from bench.report import Result, Table, ratio

POLICY = "bench-fleet"
DEVICES_PER_HOST, ENABLED_PER_HOST = 8, 4
# Session pool of the operator's vCenter client (dpio/vsphere/session.py DEFAULT_WORKERS).
OPERATOR_CONCURRENCY = 8
# Login, RetrieveServiceContent, CreateContainerView and one RetrievePropertiesEx: session
# setup plus the one read for all hosts a policy reconcile may make (docs/design.md,
# "Performance targets").
MINIMAL_READS = 4


@dataclass
class Side:
    seconds: float | None  # None: did not finish
    calls: dict[str, int] = field(default_factory=dict)
    ready: bool | None = None
    late: dict[str, int] = field(default_factory=dict)  # calls in the quiet window after
    cpu_seconds: float | None = None
    peak_rss_mib: float | None = None


def run(ctx: Context) -> Result:
    hosts = ctx.size(8, 64)
    result = Result(
        "hosts",
        params={
            "hosts": hosts,
            "devices_per_host": DEVICES_PER_HOST,
            "enabled_per_host": ENABLED_PER_HOST,
            "latency_ms": ctx.latency_ms,
        },
    )
    path = inventory.write(
        inventory.Shape(hosts, DEVICES_PER_HOST), ctx.out / "inventories" / "hosts.json"
    )
    with stage.stage(ctx.state_dir("hosts"), profile=ctx.profile, py_spy=ctx.py_spy) as st:
        op = _operator_side(ctx, st, path, result)
        ans = _ansible_side(ctx, st, path, hosts, result)
    _compare(result, op, ans, hosts)
    return result


def _operator_side(ctx: Context, st: stage.Stage, path: Path, result: Result) -> Side:
    sim = st.simulator("vcsim-operator", path, latency_ms=ctx.latency_ms)
    st.install("vcsim-operator")
    k = kube.Kube.connect(st.plane.kubeconfig, st.plane.kubectl)
    with stage.running(st.start_operator("vcsim-operator")) as operator:
        vcenter.reset(sim)
        started = time.monotonic()
        k.create(manifests.fleet_policy(POLICY, ENABLED_PER_HOST))
        settled = kube.wait_all(
            k, kube.HPP, 1, kube.settled, since=started, timeout=ctx.timeout, poll=0.1
        )
        calls = vcenter.counters(sim)
        time.sleep(5 if ctx.quick else 10)  # what a converged policy costs right after
        after = vcenter.counters(sim)
        stat = operator.stat()
    if settled.seconds is None:
        result.notes.append(
            f"operator did not settle within {ctx.timeout:.0f}s; "
            f"log {operator.log}:\n{stage.tail(operator.log)}"
        )
    return Side(
        seconds=settled.seconds,
        calls=calls,
        ready=bool(settled.last) and kube.ready(settled.last[0]),
        late={m: n - calls.get(m, 0) for m, n in after.items() if n != calls.get(m, 0)},
        cpu_seconds=stat.cpu_seconds,
        peak_rss_mib=stat.peak_rss_mib,
    )


def _ansible_side(ctx: Context, st: stage.Stage, path: Path, hosts: int, result: Result) -> Side:
    try:
        root = ansible.venv()
    except Exception as err:  # no PyPI: the comparison is reported missing, not invented
        result.notes.append(f"Ansible not available: {err}")
        return Side(seconds=None)
    sim = st.simulator("vcsim-ansible", path, latency_ms=ctx.latency_ms)
    addresses = [inventory.device_address(i) for i in range(ENABLED_PER_HOST)]
    book = ansible.playbook(sim, inventory.host_names(hosts), addresses)
    vcenter.reset(sim)
    print(f"   ansible-playbook over {hosts} hosts", file=sys.stderr)
    run = ansible.run(root, ctx.out / "ansible", book)
    calls = vcenter.counters(sim)
    updates = calls.get("UpdatePassthruConfig", 0)
    if run.returncode != 0 or updates != hosts:
        result.notes.append(
            f"ansible-playbook rc={run.returncode}, UpdatePassthruConfig={updates}"
            f" (want {hosts}); log {run.log}:\n{stage.tail(run.log)}"
        )
        return Side(seconds=None, calls=calls)
    return Side(seconds=run.seconds, calls=calls)


def _compare(result: Result, op: Side, ans: Side, hosts: int) -> None:
    op_total, ans_total = vcenter.total(op.calls), vcenter.total(ans.calls)
    latency = float(result.params["latency_ms"]) / 1000
    ideal_calls = MINIMAL_READS + hosts
    ideal = (MINIMAL_READS + hosts / OPERATOR_CONCURRENCY) * latency
    summary = Table("Convergence", ["", "operator", "ansible", "ansible/operator"])
    summary.add(
        "wall time to converged (s)", op.seconds, ans.seconds, ratio(ans.seconds, op.seconds)
    )
    summary.add("SOAP calls", op_total, ans_total or None, ratio(ans_total, op_total))
    summary.add("SOAP calls per host", op_total / hosts, ans_total / hosts or None, None)
    summary.add("ideal wall time (s)", ideal, None, ratio(op.seconds, ideal))
    summary.add("ideal SOAP calls", ideal_calls, None, None)
    result.tables.append(summary)
    methods = Table("SOAP calls by method", ["method", "operator", "ansible"])
    for method in sorted(
        set(op.calls) | set(ans.calls), key=lambda m: (-op.calls.get(m, 0) - ans.calls.get(m, 0), m)
    ):
        methods.add(method, op.calls.get(method, 0), ans.calls.get(method, 0))
    result.tables.append(methods)
    result.figures = {
        "operator_seconds": op.seconds,
        "ansible_seconds": ans.seconds,
        "operator_calls": op_total,
        "ansible_calls": ans_total,
        "wall_time_ratio": ratio(ans.seconds, op.seconds),
        "soap_calls_ratio": ratio(ans_total, op_total),
        "operator_ready": op.ready,
        "ideal_seconds": ideal,
        "ideal_calls": ideal_calls,
        "operator_vs_ideal": ratio(op.seconds, ideal),
        "operator_calls_after_converged": op.late,
        "operator_cpu_seconds": op.cpu_seconds,
        "operator_peak_rss_mib": op.peak_rss_mib,
        "operator_calls_by_method": op.calls,
        "ansible_calls_by_method": ans.calls,
        "targets": {"wall_time_ratio": ">= 5", "soap_calls_ratio": ">= 10"},
    }
    if op.late:
        result.notes.append(f"operator calls in the idle window after convergence: {op.late}")
    if op.ready is False:
        result.notes.append("the policy settled but is not Ready=True: see its conditions")
