"""The running operator's /metrics and JSON logs, after a HostPassthroughPolicy converges.

The operator is started here rather than by tests/e2e/conftest.py's `operator` fixture, because
this module needs its own environment (metrics port, JSON logs, DEBUG level).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.e2e.conftest import apply, get, purge_dpio_objects, secret_for
from tests.integration.vsphere.helpers import eventually

from dpio.reconcile.constants import CONFIRM_SECONDS
from dpio_sandbox import install, manifests, procs
from dpio_sandbox import operator as dpio_operator
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Operator:
    def __init__(self, box: Sandbox, metrics_port: int, log: Path) -> None:
        self.box, self.metrics_port, self.log = box, metrics_port, log

    def scrape(self) -> Samples:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture(scope="module")
def metrics_operator(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    install.install(sandbox)
    log = tmp_path_factory.mktemp("operator-metrics") / "operator.log"
    metrics_port = procs.free_port()
    env = {
        "DPIO_METRICS_PORT": str(metrics_port),
        "DPIO_LOG_FORMAT": "json",
        "DPIO_LOG_LEVEL": "DEBUG",
    }
    try:
        with dpio_operator.running(sandbox, log, env):
            yield Operator(sandbox, metrics_port, log)
    finally:
        print(log.read_text()[-4000:])


def _policy(name: str, secret: str) -> dict[str, Any]:
    devices = [{"vendorID": "10de", "deviceID": "20b5"}]
    return manifests.policy(
        name, secret=secret, hosts={"clusters": ["GPU-Cluster"]}, devices=devices
    )


def _converged(box: Sandbox, name: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        body = get(box, "hpp", name)
        status = body.get("status", {})
        reconciling = [c for c in status.get("conditions", []) if c["type"] == "Reconciling"]
        if status.get("observedGeneration") != body["metadata"]["generation"]:
            return None
        return body if reconciling and reconciling[0]["status"] == "False" else None

    return check


def _quiet(op: Operator) -> Callable[[], Samples | None]:
    """Two scrapes a second apart with the same call counts: nothing in flight but the watch."""

    def check() -> Samples | None:
        before = op.scrape()
        time.sleep(1)
        after = op.scrape()
        calls = [k for k in after if k[0] == "dpio_vcenter_calls_total"]
        return after if all(before.get(k) == after[k] for k in calls) else None

    return check


def test_metrics_after_a_policy_converges(
    metrics_operator: Operator, vcsim_factory: Callable[..., Simulator]
) -> None:
    op = metrics_operator
    kind = "HostPassthroughPolicy"
    sim = vcsim_factory()
    sim.admin("POST", "/counters/reset")  # from here on, only the operator talks to it
    secret_for(op.box, sim, "vcsim-metrics")
    apply(op.box, _policy("e2e-metrics", "vcsim-metrics"))
    body = eventually(_converged(op.box, "e2e-metrics"), timeout=60)
    samples = eventually(_quiet(op), timeout=30)
    sim_counts: Any = sim.admin("GET", "/counters")

    assert (value(samples, "dpio_reconcile_total", kind=kind) or 0) >= 1
    assert value(samples, "dpio_reconcile_duration_seconds_count", kind=kind) == value(
        samples, "dpio_reconcile_total", kind=kind
    )
    assert value(samples, "dpio_objects", kind=kind) == 1
    assert value(samples, "dpio_queue_depth", kind=kind) == 0
    ready = next(c for c in body["status"]["conditions"] if c["type"] == "Ready")
    labels = {"kind": kind, "type": "Ready", "status": ready["status"], "reason": ready["reason"]}
    assert value(samples, "dpio_object_conditions", **labels) == 1
    summary = body["status"]["summary"]
    assert (
        value(samples, "dpio_policy_devices", policy="e2e-metrics", state="matched")
        == (summary["devices"])
    )
    assert value(samples, "dpio_policy_hosts", policy="e2e-metrics") == summary["hosts"]

    # Only the operator talks to this simulator: per method, both sides counted the same calls
    # (the watch's WaitForUpdatesEx is counted on arrival there and on return here).
    server = urlsplit(sim.sdk_url).netloc
    ours = {
        labels["method"]: int(v)
        for (name, pairs), v in samples.items()
        if name == "dpio_vcenter_calls_total" and (labels := dict(pairs))["vcenter"] == server
    }
    theirs = {m: n for m, n in sim_counts["counts"].items() if n}
    ours.pop("WaitForUpdatesEx", None)
    theirs.pop("WaitForUpdatesEx", None)
    assert ours == theirs, (ours, theirs)
    assert {"Login", "UpdatePassthruConfig"} <= set(ours)


def test_steady_state_makes_no_writes(
    metrics_operator: Operator, vcsim_factory: Callable[..., Simulator]
) -> None:
    """Converged and left alone: the object is not rewritten (resourceVersion stays) and
    vCenter gets no calls but the change watch (docs/design.md, "Performance targets")."""
    op = metrics_operator
    # Earlier tests' policies point at simulators that are gone: their retries would count.
    purge_dpio_objects(op.box)
    sim = vcsim_factory()
    secret_for(op.box, sim, "vcsim-steady")
    apply(op.box, _policy("e2e-steady", "vcsim-steady"))
    body = eventually(_converged(op.box, "e2e-steady"), timeout=60)
    eventually(_quiet(op), timeout=30)
    time.sleep(CONFIRM_SECONDS + 1)  # the read that confirms the last change, then quiet
    sim.admin("POST", "/counters/reset")
    before = op.scrape()
    time.sleep(5)
    after = op.scrape()
    counts: Any = sim.admin("GET", "/counters")
    assert (
        get(op.box, "hpp", "e2e-steady")["metadata"]["resourceVersion"]
        == (body["metadata"]["resourceVersion"])
    )
    reconciles = ("dpio_reconcile_total", frozenset({("kind", "HostPassthroughPolicy")}))
    assert after[reconciles] == before[reconciles]
    assert {m for m, n in counts["counts"].items() if n} <= {"WaitForUpdatesEx"}, counts


def test_logs_are_json_lines_with_identity_and_no_password(
    metrics_operator: Operator, vcsim_factory: Callable[..., Simulator]
) -> None:
    op = metrics_operator
    sim = vcsim_factory()
    secret_for(op.box, sim, "vcsim-logs")
    apply(op.box, _policy("e2e-logs", "vcsim-logs"))
    eventually(_converged(op.box, "e2e-logs"), timeout=60)
    text = op.log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert len(lines) > 10
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["message"] == "Logged in to vCenter" for line in lines)
    assert any(line.get("level") == "DEBUG" for line in lines)
    about = [line for line in lines if (line.get("kind"), line.get("name")) == (
        "HostPassthroughPolicy", "e2e-logs")]  # fmt: skip
    assert {"kopf.objects", "dpio.reconcile.controller"} <= {line["logger"] for line in about}
    assert sim.password not in text
