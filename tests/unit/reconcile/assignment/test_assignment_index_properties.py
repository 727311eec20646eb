"""The assignment index (others.py) must answer exactly what a walk of every cached assignment
answers, through any sequence of watch events: a claim it left out would let two assignments
take one device, a quota use it left out would let a team past its maxDevices."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from tests.unit.property.strategies import PROFILE

from dpio.planner.vm.observed import AssignmentClaim, QuotaUse
from dpio.reconcile.assignment import inputs
from dpio.reconcile.assignment.others import AssignmentIndex, ObjectKey
from dpio.reconcile.cache import ObjectCache

HOSTS = ("esx01", "esx02", "esx03")
POLICIES = ("gpu-hosts", "fpga-hosts")
NAMES = tuple(f"a{i}" for i in range(4))
NAMESPACES = ("ml-team", "web")
LABELS = {"ml-team": {"team": "ml"}}.get


def _condition(type_: str, reason: str) -> dict[str, str]:
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": "",
        "lastTransitionTime": "2026-12-01T00:00:00Z",
    }


@st.composite
def assignment_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """One assignment as the watch may deliver it: any host or none, looked or not, being
    deleted, refused, over quota, static or dynamic devices, or none."""
    meta: dict[str, Any] = {
        "name": draw(st.sampled_from(NAMES)),
        "namespace": draw(st.sampled_from(NAMESPACES)),
        "uid": "u",
        "resourceVersion": str(draw(st.integers(1, 9))),
        "creationTimestamp": f"2026-12-0{draw(st.integers(1, 3))}T00:00:00+00:00",
        "generation": 1,
    }
    if draw(st.integers(0, 4)) == 0:
        meta["deletionTimestamp"] = "2026-12-05T00:00:00+00:00"
    devices = draw(
        st.lists(
            st.sampled_from(
                [
                    {"name": "gpu0", "pci": {"address": "0000:3b:00.0"}},
                    {"name": "gpu1", "pci": {"address": "0000:af:00.0"}},
                    {"name": "dyn", "dynamic": {"vendorID": "0x10de", "deviceID": "0x1eb8"}},
                ]
            ),
            min_size=1,
            max_size=2,
            unique_by=lambda d: d["name"],
        )
    )
    if draw(st.integers(0, 9)) == 0:
        devices = []  # invalid (no device): the CRD schema would refuse it, the index must not

    status: dict[str, Any] = {}
    if draw(st.booleans()):
        status["observedGeneration"] = 1
    host = draw(st.sampled_from((None, *HOSTS)))
    if host is not None:
        status["vm"] = {"name": "vm", "host": host}
    conditions = []
    if draw(st.integers(0, 2)) == 0:
        conditions.append(
            draw(
                st.sampled_from(
                    [
                        _condition("Forbidden", "NamespaceNotAllowed"),
                        _condition("DevicesUnavailable", "QuotaExceeded"),
                        _condition("DevicesUnavailable", "ClaimedByAssignment"),
                    ]
                )
            )
        )
    if conditions:
        status["conditions"] = conditions
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "VMDeviceAssignment",
        "metadata": meta,
        "spec": {
            "policyRef": {"name": draw(st.sampled_from(POLICIES))},
            "vm": {"name": f"vm-{meta['name']}"},
            "devices": devices,
        },
        "status": status,
    }


events = st.lists(
    st.one_of(
        st.tuples(st.just("put"), assignment_bodies()),
        st.tuples(
            st.just("delete"), st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(NAMES))
        ),
    ),
    max_size=25,
)


def _claims(found: tuple[tuple[AssignmentClaim, ...], bool]) -> tuple[list[AssignmentClaim], bool]:
    claims, unknown = found
    return sorted(claims, key=lambda c: (c.namespace, c.name)), unknown


def _uses(found: tuple[QuotaUse, ...]) -> list[QuotaUse]:
    return sorted(found, key=lambda u: (u.namespace, u.name))


@PROFILE
@given(events)
def test_the_index_answers_what_a_walk_of_the_cache_answers(
    history: list[tuple[str, Any]],
) -> None:
    index = AssignmentIndex()
    cache = ObjectCache(indexes=(index,))
    for kind, item in history:
        if kind == "put":
            cache.put(item)
        else:
            cache.delete(item)
        bodies = list(cache.objects())
        assert len(index) == len(bodies)
        for namespace in NAMESPACES:
            me = ObjectKey(namespace, "a0")
            for host in (*HOSTS, ""):
                assert _claims(inputs.claims_of(index.near(host), me, host)) == _claims(
                    inputs.claims(bodies, me, host)
                )
            for policy in POLICIES:
                assert _uses(
                    inputs.quota_uses_of(index.of_policy(policy), me, policy, LABELS)
                ) == _uses(inputs.quota_uses(bodies, me, policy, LABELS))


def test_the_property_sees_claims_and_quota_uses_at_all() -> None:
    """The generated histories are not all empty answers: a claim on esx01 and a quota use."""
    claimed: dict[str, Any] = {
        "metadata": {
            "name": "a1",
            "namespace": "web",
            "resourceVersion": "1",
            "creationTimestamp": "2026-12-01T00:00:00+00:00",
        },
        "spec": {
            "policyRef": {"name": "gpu-hosts"},
            "vm": {"name": "vm-a1"},
            "devices": [{"name": "gpu0", "pci": {"address": "0000:3b:00.0"}}],
        },
        "status": {"observedGeneration": 1, "vm": {"name": "vm", "host": "esx01"}},
    }
    index = AssignmentIndex.of([claimed])
    me = ObjectKey("web", "a0")
    found, unknown = inputs.claims_of(index.near("esx01"), me, "esx01")
    assert [(c.name, c.host, c.device_ids) for c in found] == [("a1", "esx01", ("0000:3b:00.0",))]
    assert unknown is False
    assert inputs.claims_of(index.near("esx02"), me, "esx02") == ((), False)
    assert [
        u.name for u in inputs.quota_uses_of(index.of_policy("gpu-hosts"), me, "gpu-hosts", LABELS)
    ] == ["a1"]
