"""`dpio status` rows from object bodies as the API server returns them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dpio.cli.output import Format
from dpio.cli.status import all_ready, render, row, rows


def cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }


def policy(
    name: str, *conditions: dict[str, str], generation: int = 1, **status: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "HostPassthroughPolicy",
        "metadata": {"name": name, "generation": generation},
        "spec": {"hosts": {"names": ["esx01"]}},
        "status": {"observedGeneration": 1, "conditions": list(conditions), **status},
    }


def assignment(ns: str, name: str, *conditions: dict[str, str], **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "VMDeviceAssignment",
        "metadata": {"name": name, "namespace": ns, "generation": 1},
        "spec": {
            "policyRef": {"name": "gpu"},
            "vm": {"name": "ml-01"},
            "devices": [
                {"name": "gpu0", "pci": {"address": "0000:3b:00.0"}},
                {"name": "gpu1", "pci": {"address": "0000:af:00.0"}},
            ],
        },
        "status": {"observedGeneration": 1, "conditions": list(conditions), **status},
    }


READY = cond("Ready", "True", "Ready")
SUMMARY = {"hosts": 2, "devices": 4, "active": 3, "pendingReboot": 1}


@pytest.mark.parametrize(
    ("body", "ready", "reason", "attention"),
    [
        (policy("gpu", READY), "True", "Ready", ()),
        (
            policy(
                "gpu",
                cond("Ready", "False", "RebootRequired"),
                cond("RebootRequired", "True", "PendingReboot"),
                cond("Degraded", "False", "AsExpected"),
            ),
            "False",
            "RebootRequired",
            ("RebootRequired=PendingReboot",),
        ),
        (
            assignment(
                "ml",
                "a",
                cond("Ready", "False", "PowerOffRequired"),
                cond("PowerOffRequired", "True", "VMPoweredOn"),
                cond("Stalled", "True", "TooManyDevices"),
            ),
            "False",
            "PowerOffRequired",
            ("Stalled=TooManyDevices", "PowerOffRequired=VMPoweredOn"),
        ),
        # Never reconciled: no Ready yet.
        ({**policy("new"), "status": {}}, "", "", ()),
    ],
)
def test_row_ready_reason_and_what_needs_attention(
    body: dict[str, Any], ready: str, reason: str, attention: tuple[str, ...]
) -> None:
    found = row(body)

    assert (found.ready, found.reason, found.attention) == (ready, reason, attention)


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        (policy("gpu", READY, summary=SUMMARY), "2 hosts, 4 devices, 3 active, 1 pending reboot"),
        (
            assignment(
                "ml",
                "a",
                READY,
                vm={"host": "esx01", "powerState": "poweredOff"},
                devices=[{"name": "gpu0", "attached": True}],
            ),
            "vm ml-01, on esx01, poweredOff, 1/2 attached",
        ),
        # The operator's own attached/desired column wins when it is there.
        (assignment("ml", "a", READY, attached="2/2"), "vm ml-01, 2/2 attached"),
    ],
)
def test_summary(body: dict[str, Any], summary: str) -> None:
    assert row(body).summary == summary


def test_generation_ahead_of_status_is_stale_and_not_ready() -> None:
    bodies = [policy("gpu", READY, generation=2)]

    assert row(bodies[0]).stale
    assert not all_ready(bodies)
    assert "True (stale)" in render(bodies, Format.TABLE)


def test_policies_first_then_assignments_by_namespace() -> None:
    bodies = [assignment("b", "x", READY), policy("z", READY), assignment("a", "y", READY)]

    assert [(r.kind[:3], r.namespace, r.name) for r in rows(bodies)] == [
        ("Hos", "", "z"),
        ("VMD", "a", "y"),
        ("VMD", "b", "x"),
    ]
    assert all_ready(bodies)


def test_table_uses_short_names_and_json_has_messages() -> None:
    bodies = [policy("gpu", cond("Ready", "False", "DeviceInUse", "esx01 0000:18:00.0: used"))]

    table = render(bodies, Format.TABLE).splitlines()
    data = json.loads(render(bodies, Format.JSON))

    assert table[1].split()[:5] == ["hpp", "-", "gpu", "False", "DeviceInUse"]
    assert data["items"][0]["message"] == "esx01 0000:18:00.0: used"


def test_lenient_with_odd_bodies() -> None:
    odd = {
        "kind": "VMDeviceAssignment",
        "metadata": {"name": "x", "namespace": "n"},
        "status": {"conditions": ["not a mapping"]},
    }

    assert row(odd).summary == "vm ?, 0/0 attached"


def test_nothing_found() -> None:
    assert render([], Format.TABLE).startswith("No HostPassthroughPolicy")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            policy(
                "gpu",
                cond("Ready", "False", "Suspended", "Would: update passthrough on esx01"),
                cond("Suspended", "True", "Suspended", "Would: update passthrough on esx01"),
            ),
            "Suspended",
        ),
        (
            assignment("ml", "a", READY, cond("Suspended", "True", "DryRun", "nothing is pending")),
            "DryRun",
        ),
        (policy("gpu", READY, cond("Suspended", "False", "AsExpected")), ""),
    ],
)
def test_a_suspended_object_says_so_in_table_and_json(body: dict[str, Any], reason: str) -> None:
    found = row(body)
    table = render([body], Format.TABLE)
    data = json.loads(render([body], Format.JSON))["items"][0]

    assert found.suspended == reason
    assert data["suspended"] == (reason or None)
    assert (f"Suspended={reason}" in found.attention) == bool(reason)
    assert (f"Suspended={reason}" in table) == bool(reason)
