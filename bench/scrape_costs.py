"""`python -m bench.scrape_costs`: what a `/metrics` scrape costs the operator in CPU with N
cached assignments (docs/benchmarks.md, finding 41), in process, no cluster.

The objects are kept as the caches keep them (`CompactBody`), each with a status of four
conditions; the scrape is the operator's own collector (`observability/metrics.py`). Printed:
the CPU of the first scrape and of the next ones (each status decoded once, then only what
changed), of decoding every status once (`condition_counts`, what every scrape did before),
and what the collector keeps between scrapes (tracemalloc).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from bench.report import Table
from dpio.observability import metrics
from dpio.observability.status_facts import condition_counts
from dpio.reconcile.compact import CompactBody

CONDITIONS = (
    ("Ready", "True", "Reconciled"),
    ("Reconciling", "False", "Reconciled"),
    ("Stalled", "False", "Reconciled"),
    ("FeatureConflict", "False", "None"),
)


def assignment(i: int) -> CompactBody:
    status = {
        "observedGeneration": 1,
        "conditions": [
            {"type": t, "status": s, "reason": r, "message": f"{t} of vm-{i}",
             "lastTransitionTime": "2026-12-07T20:00:00Z", "observedGeneration": 1}
            for t, s, r in CONDITIONS
        ],
        "vm": {"moref": f"vm-{i}", "host": f"esx-{i // 8}", "powerState": "poweredOff"},
        "devices": [{"name": "gpu0", "address": "0000:3b:00.0", "state": "Attached"}],
    }  # fmt: skip
    return CompactBody(
        {
            "apiVersion": "dpio.io/v1alpha1",
            "kind": "VMDeviceAssignment",
            "metadata": {"name": f"vm-{i}", "namespace": "bench"},
            "spec": {"vm": {"name": f"vm-{i}"}},
            "status": status,
        }
    )


def cpu_ms(work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return (time.process_time() - start) * 1000


def collector_of(bodies: list[CompactBody]) -> Callable[[], object]:
    """One scrape of the operator's collector over `bodies`."""
    collector: Any = metrics._StateCollector()
    collector.track("VMDeviceAssignment", metrics.Source(lambda: bodies, lambda: 0))
    return lambda: list(collector.collect())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scrape_costs", description=__doc__)
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--scrapes", type=int, default=4)
    args = parser.parse_args(argv)
    bodies = [assignment(i) for i in range(args.objects)]
    table = Table(f"/metrics scrape, {args.objects} cached assignments", ["", "ms CPU"])
    scrape = collector_of(bodies)
    for n in range(args.scrapes):
        table.add(f"scrape {n + 1}", round(cpu_ms(scrape), 1))
    every = round(cpu_ms(lambda: condition_counts(bodies)), 1)
    table.add("every status decoded (each scrape, before)", every)
    gc.collect()
    tracemalloc.start()  # apart from the timings: tracing slows every allocation
    before = tracemalloc.take_snapshot()
    scrape = collector_of(bodies)
    scrape()
    scrape()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    kept = sum(s.size_diff for s in after.compare_to(before, "filename")) / 1024
    print(table.render())
    print(f"kept between scrapes: {kept:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
