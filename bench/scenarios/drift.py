"""Out-of-band changes in vCenter (passthrough switched off by hand, as in the vSphere Client):
how long until the policy's status shows it, and until the operator has put it back.
Target: drift visible in status within 5 s, by watching vCenter, not polling (docs/design.md,
"Performance targets" and "vCenter access")."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from bench import inventory, kube, manifests, stage, vcenter
from bench.context import Context
from bench.report import Result, Table, percentile

POLICY = "bench-drift"
ENABLED_PER_HOST = 4
POLL = 0.05
SAMPLE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Sample:
    host: str
    address: str
    corrected: float | None  # vCenter has passthruEnabled back (read returned, so ±1 round trip)
    event: float | None  # the operator's PassthroughUpdated Event is in Kubernetes
    visible: float | None  # status showed the device not Active (None: put back before that)


def run(ctx: Context) -> Result:
    hosts, samples = ctx.size(2, 4), ctx.size(6, 20)
    result = Result(
        "drift",
        params={"hosts": hosts, "samples": samples, "latency_ms": ctx.latency_ms, "poll_s": POLL},
    )
    path = inventory.write(inventory.Shape(hosts, 8), ctx.out / "inventories" / "drift.json")
    with stage.stage(ctx.state_dir("drift"), profile=ctx.profile, py_spy=ctx.py_spy) as st:
        sim = st.simulator("vcsim", path, latency_ms=ctx.latency_ms)
        st.install("vcsim")
        k = kube.Kube.connect(st.plane.kubeconfig, st.plane.kubectl)
        with stage.running(st.start_operator("vcsim")) as operator:
            k.create(manifests.fleet_policy(POLICY, ENABLED_PER_HOST))
            started = time.monotonic()
            wait = kube.wait_all(k, kube.HPP, 1, kube.ready, since=started, timeout=ctx.timeout)
            if wait.seconds is None:
                result.available = False
                result.reason = f"policy not Ready within {ctx.timeout:.0f}s ({operator.log})"
                return result
            found = _samples(k, sim, inventory.host_names(hosts), samples)
    _report(result, found)
    return result


def _samples(k: kube.Kube, sim: Any, hosts: list[str], count: int) -> list[Sample]:
    found = []
    with vcenter.connect(sim) as si:
        refs = {name: vcenter.find_host(si, name) for name in hosts}
        for i in range(count):
            host = hosts[i % len(hosts)]
            address = inventory.device_address(i % ENABLED_PER_HOST)
            found.append(_one(k, si, refs[host], host, address))
            print(f"   drift sample {i + 1}/{count}: {found[-1]}", file=sys.stderr, flush=True)
            time.sleep(1)
    return found


def _one(k: kube.Kube, si: Any, ref: Any, host: str, address: str) -> Sample:
    events_before = _events(k)
    vcenter.set_passthru(ref, address, enabled=False)
    t0 = time.monotonic()
    corrected = event = visible = None
    while time.monotonic() - t0 < SAMPLE_TIMEOUT and (corrected is None or event is None):
        if corrected is None and vcenter.passthru_enabled(si, ref, address):
            corrected = time.monotonic() - t0
        if event is None and _events(k) > events_before:
            event = time.monotonic() - t0
        if visible is None and _state(k.get(kube.HPP, POLICY), host, address) != "Active":
            visible = time.monotonic() - t0
        time.sleep(POLL)
    return Sample(host, address, corrected, event, visible)


def _events(k: kube.Kube) -> int:
    """Events the operator posted about the policy (cluster-scoped: in `default`)."""
    items = k8s.CoreV1Api(k.api).list_namespaced_event("default").items
    return sum(
        (e.count or 1)
        for e in items
        if e.involved_object.name == POLICY and e.reason == "PassthroughUpdated"
    )


def _state(body: dict[str, Any], host: str, address: str) -> str | None:
    for h in body.get("status", {}).get("hosts") or []:
        if h.get("name") == host:
            for device in h.get("devices") or []:
                if device.get("address") == address:
                    return str(device.get("state"))
    return None


def _report(result: Result, samples: list[Sample]) -> None:
    table = Table("Drift (seconds after the out-of-band change)", ["", "p50", "p99", "max", "n"])
    figures: dict[str, Any] = {}
    for label, values in [
        ("corrected in vCenter", [s.corrected for s in samples]),
        ("Event PassthroughUpdated in Kubernetes", [s.event for s in samples]),
        ("status showed the device not Active", [s.visible for s in samples]),
    ]:
        seen = [v for v in values if v is not None]
        p50, p99 = percentile(seen, 50), percentile(seen, 99)
        table.add(label, p50, p99, max(seen) if seen else None, f"{len(seen)}/{len(samples)}")
        figures[label] = {"p50": p50, "p99": p99, "samples": values}
    result.tables.append(table)
    result.figures.update(figures)
    result.figures["targets"] = {"visible in status": "<= 5 s"}
    hidden = sum(1 for s in samples if s.visible is None and s.corrected is not None)
    if hidden:
        result.notes.append(
            f"{hidden}/{len(samples)} change(s) were put back before any status showed them: the "
            "status never left Active, so the Event and vCenter are where the drift is visible"
        )
    result.notes.append(
        f"times are when a poll (every {POLL}s, each vCenter read one round trip) saw the change"
    )
