"""The runtime routes each kind's watch events (handlers/) and what `forget_ghosts` drops the same
way: a ghost dropped leaves the cache, its indexes and the assignments' triggers as a DELETED
event would."""

from __future__ import annotations

import asyncio
from typing import Any

from dpio.app.runtime import Config, Runtime
from dpio.kube.credentials import Credentials

UNREACHABLE = Credentials(server="https://127.0.0.1:1")  # nothing here calls the API server


def _policy(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "HostPassthroughPolicy",
        "metadata": {"name": name, "generation": 1, "resourceVersion": "1", "uid": f"u-{name}"},
        "spec": {"hosts": {"names": ["esx01"]}, "devices": [{"address": "0000:3b:00.0"}]},
    }


def _assignment(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "VMDeviceAssignment",
        "metadata": {"name": name, "namespace": namespace, "generation": 1,
                     "resourceVersion": "2", "uid": f"u-{name}"},
        "spec": {"policyRef": {"name": "gpus"}, "vm": {"name": "vm-1"},
                 "devices": [{"name": "gpu0", "pci": {"address": "0000:3b:00.0"}}]},
    }  # fmt: skip


def test_events_reach_every_cache_and_a_forgotten_ghost_leaves_them_all() -> None:
    async def scenario() -> None:
        runtime = Runtime.build(Config(), UNREACHABLE)
        try:
            runtime.policy_event("ADDED", _policy("gpus"))
            runtime.assignment_event("ADDED", _assignment("trainer", "team-a"))
            runtime.namespace_event("ADDED", {"metadata": {"name": "team-a", "labels": {"a": "b"}}})
            policies, assignments, namespaces = runtime.watched()
            assert set(policies.cached_keys()) == {("", "gpus")}
            assert set(assignments.cached_keys()) == {("team-a", "trainer")}
            assert set(namespaces.cached_keys()) == {("", "team-a")}
            assert runtime.assignment_triggers.by_policy["gpus"] == {("team-a", "trainer")}
            assert runtime.assignment_triggers.offers["gpus"]

            policies.forget(("", "gpus"))
            assignments.forget(("team-a", "trainer"))
            namespaces.forget(("", "team-a"))

            assert not policies.cached(("", "gpus"))
            assert runtime.assignment_triggers.offers["gpus"] == b""  # offers nothing now
            assert not assignments.cached(("team-a", "trainer"))
            assert not runtime.assignment_triggers.by_policy.get("gpus")
            assert runtime.assignment_triggers.labels("team-a") is None
            policies.forget(("", "never-there"))  # nothing to drop: nothing happens
        finally:
            await runtime.stop()

    asyncio.run(scenario())
