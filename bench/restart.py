"""What a restart costs once everything has converged: the operator is stopped (SIGTERM) and
started again over the same objects and vCenter. Target (issue 17): 0 vCenter writes,
0 Kubernetes writes to dpio objects, a bounded number of vCenter reads (one shared read per
vCenter plus the watch). "Resumed" is when, by the new process's own /metrics, every object it
holds has been reconciled once and no key is queued; the seconds from the start of the process
to that moment are the figure."""

from __future__ import annotations

import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from bench import kube, stage, vcenter
from bench.fleet import Fleet


@dataclass(frozen=True)
class Progress:
    """Per kind, from the operator's /metrics: objects held, reconciles run, keys queued."""

    objects: dict[str, float]
    reconciles: dict[str, float]
    queued: dict[str, float]

    def resumed(self, expected: int) -> bool:
        held = sum(self.objects.values())
        return (
            held >= expected
            and all(self.reconciles.get(kind, 0) >= n for kind, n in self.objects.items())
            and not any(self.queued.values())
        )


@dataclass(frozen=True)
class Restart:
    seconds: float | None  # process start -> resumed; None: not within the timeout
    calls: dict[str, int]  # vCenter calls by method, from the stop to the end of the quiet time
    vcenter_writes: int
    k8s_writes: int
    objects_changed: int  # objects whose resourceVersion moved


def progress(text: str) -> Progress:
    """Parse the operator's Prometheus text: dpio_objects, dpio_reconcile_total and
    dpio_queue_depth by kind."""
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ("dpio_objects", "dpio_reconcile_total", "dpio_queue_depth"):
                found[sample.name][sample.labels.get("kind", "")] = sample.value
    return Progress(
        dict(found["dpio_objects"]),
        dict(found["dpio_reconcile_total"]),
        dict(found["dpio_queue_depth"]),
    )


def measure(f: Fleet, plural: str, *, timeout: float, quiet: float) -> Restart:
    """Restart ``f``'s operator (``f.operator`` is the new process afterwards) and measure."""
    time.sleep(quiet)  # the last status writes of the convergence land before the count starts
    versions = _versions(f.kube, plural)
    f.operator.stop()
    vcenter.reset(f.sim)
    before = f.kube.request_totals()
    started = time.monotonic()
    f.operator = f.st.start_operator("vcsim")
    seconds = _wait_resumed(f.operator, len(versions), started, timeout)
    time.sleep(quiet)  # anything the restart brings late still counts
    calls = vcenter.counters(f.sim)
    requests = kube.delta(f.kube.request_totals(), before)
    after = _versions(f.kube, plural)
    return Restart(
        seconds=seconds,
        calls=calls,
        vcenter_writes=sum(calls.get(m, 0) for m in vcenter.WRITE_METHODS),
        k8s_writes=kube.writes(requests),
        objects_changed=sum(1 for name, rv in after.items() if versions.get(name) != rv),
    )


def _wait_resumed(
    op: stage.Operator, expected: int, started: float, timeout: float
) -> float | None:
    """Polls /metrics; a scrape costs the operator a walk of its caches (at 5,000 assignments a
    0.2 s poll was 24% of its samples while resuming, docs/benchmarks.md finding 23), so the
    pause between polls is at least twice the last scrape (as bench/kube.py's listing)."""
    while time.monotonic() - started < timeout:
        asked = time.monotonic()
        try:
            with urllib.request.urlopen(op.metrics_url, timeout=10) as response:
                text = response.read().decode()
        except OSError:
            text = ""
        now = time.monotonic()
        if text and progress(text).resumed(expected):
            return now - started
        time.sleep(max(0.5, 2 * (now - asked)))
    return None


def _versions(k: kube.Kube, plural: str) -> dict[str, str]:
    return {b["metadata"]["name"]: b["metadata"]["resourceVersion"] for b in k.list(plural)}
