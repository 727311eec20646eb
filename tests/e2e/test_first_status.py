"""The first status write, measured: how long a new object has no status (kstatus, and so Flux's
health check, calls such an object Current) and what that first status says.

One watch on each kind, opened before `kubectl apply`, sees the object's ADDED event and every
change after it; the time between ADDED and the first event with a status is printed (the
figures in docs/observability.md, "The first status"). Nothing is asserted on time: the first
status must carry observedGeneration and say Reconciling=True, whatever vCenter's latency.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes import client, config, watch
from tests.e2e.conftest import apply, get, secret_for
from tests.integration.vsphere.helpers import eventually

from dpio_sandbox import manifests
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

pytestmark = pytest.mark.sandbox

NS, SIM = "e2e-first-status", "vcsim-first-status"
PLURALS = {"HostPassthroughPolicy": "hostpassthroughpolicies",
           "VMDeviceAssignment": "vmdeviceassignments"}  # fmt: skip
TIMEOUT = 90.0


@contextmanager
def watching(box: Sandbox) -> Iterator[queue.Queue[tuple[float, str, dict[str, Any]]]]:
    """Every event of both kinds as (monotonic time received, type, object), from now on."""
    api = client.CustomObjectsApi(config.new_client_from_config(str(box.kubeconfig)))
    events: queue.Queue[tuple[float, str, dict[str, Any]]] = queue.Queue()
    watches = [watch.Watch() for _ in PLURALS]
    ready = threading.Barrier(len(PLURALS) + 1)

    stopping = threading.Event()

    def follow(w: watch.Watch, plural: str) -> None:
        version = api.list_cluster_custom_object("dpio.io", "v1alpha1", plural)["metadata"][
            "resourceVersion"
        ]
        ready.wait()
        stream = w.stream(api.list_cluster_custom_object, "dpio.io", "v1alpha1", plural,
                          resource_version=version, timeout_seconds=int(TIMEOUT) + 30)  # fmt: skip
        try:
            for event in stream:
                events.put((time.monotonic(), event["type"], event["object"]))
        except Exception:
            if not stopping.is_set():  # a stopped watch may end mid-response
                raise

    threads = [threading.Thread(target=follow, args=(w, p), daemon=True)
               for w, p in zip(watches, PLURALS.values(), strict=True)]  # fmt: skip
    for thread in threads:
        thread.start()
    ready.wait(timeout=30)
    try:
        yield events
    finally:
        stopping.set()
        for w in watches:
            w.stop()


Key = tuple[str, str]  # kind, name


def first_statuses(
    events: queue.Queue[tuple[float, str, dict[str, Any]]], keys: set[Key]
) -> dict[Key, tuple[float, dict[str, Any]]]:
    """(kind, name) -> (seconds from ADDED to the first event with a status, that object)."""
    added: dict[Key, float] = {}
    found: dict[Key, tuple[float, dict[str, Any]]] = {}
    deadline = time.monotonic() + TIMEOUT
    while set(found) != keys:
        at, kind, obj = events.get(timeout=max(0.1, deadline - time.monotonic()))
        key = (obj["kind"], obj["metadata"]["name"])
        if key not in keys or key in found:
            continue
        added.setdefault(key, at)
        if kind != "DELETED" and obj.get("status"):
            found[key] = (at - added[key], obj)
    return found


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"].get("conditions", []) if c["type"] == type_)


def objects(run: str) -> list[dict[str, Any]]:
    name = f"e2e-first-{run}"
    policy = manifests.policy(
        name,
        secret=SIM,
        hosts=["esx-gpu-01.lab.local"],
        devices=[{"address": "0000:3b:00.0"}],
        consumers=[manifests.consumer([NS])],
    )
    vmda = manifests.assignment(
        name, NS, name, "ml-trainer-01", [manifests.pci_device("0000:3b:00.0")]
    )
    return [policy, vmda]


def measure(box: Sandbox, sim: Simulator, latency_ms: int) -> list[dict[str, Any]]:
    """Apply a policy and an assignment with vCenter `latency_ms` slower per SOAP call; print
    how long each had no status and return the first status each got."""
    sim.admin("PUT", "/latency", {"ms": latency_ms})
    created = objects(f"{latency_ms}ms")
    try:
        with watching(box) as events:
            for obj in created:
                apply(box, obj)
            firsts = first_statuses(events, {(o["kind"], o["metadata"]["name"]) for o in created})
    finally:
        sim.admin("PUT", "/latency", {"ms": 0})
    for (kind, name), (seconds, _) in sorted(firsts.items()):
        print(f"first status of {kind} {name} (vCenter latency {latency_ms} ms per call): "
              f"{seconds:.3f} s after ADDED")  # fmt: skip
    return [obj for _, obj in firsts.values()]


def test_the_first_status_is_written_before_vcenter_answers(
    operator: Sandbox, vcsim_factory: Callable[..., Simulator]
) -> None:
    sim = vcsim_factory()
    secret_for(operator, sim, SIM)
    apply(operator, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    firsts = measure(operator, sim, 0) + measure(operator, sim, 1500)
    for obj in firsts:
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        reconciling = condition(obj, "Reconciling")
        assert (reconciling["status"], reconciling["reason"]) == ("True", "AwaitingReconcile"), obj
        assert condition(obj, "Ready")["status"] == "Unknown", obj
    # And the reconcile that follows says more: the first status is never where it stops.
    for obj in firsts:
        kind, meta = obj["kind"], obj["metadata"]

        def observed(kind: str = kind, meta: dict[str, Any] = meta) -> bool:
            later = get(operator, kind, meta["name"], meta.get("namespace"))
            return condition(later, "Reconciling")["reason"] != "AwaitingReconcile"

        eventually(observed, timeout=TIMEOUT)
