"""Which devices the cached assignments claim and have not attached yet."""

from __future__ import annotations

from typing import Any

from dpio.planner.host.in_use import DeviceClaim
from dpio.planner.observed import DynamicPassthrough
from dpio.reconcile.policy.claims import PendingClaims, pending_claims


def assignment(name: str, devices: list[dict[str, Any]], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ml", "name": name},
        "spec": {"policyRef": {"name": "gpus"}, "vm": {"name": name}, "devices": devices},
        "status": status,
    }


STATIC = {"name": "gpu0", "pci": {"address": "0000:3b:00.0"}}
DYNAMIC = {"name": "gpu1", "dynamic": {"vendorID": "10de", "deviceID": "20b5", "label": "a100"}}
ON_ESX01 = {"vm": {"host": "esx01"}}


def test_devices_not_attached_yet_are_claimed_on_the_vms_host() -> None:
    converging = assignment("train", [STATIC, DYNAMIC], ON_ESX01)
    assert pending_claims([converging]) == (
        DeviceClaim("ml/train", "esx01", address="0000:3b:00.0"),
        DeviceClaim("ml/train", "esx01", dynamic=DynamicPassthrough(((0x10DE, 0x20B5),), "a100")),
    )


def test_attached_devices_unobserved_vms_and_malformed_objects_claim_nothing() -> None:
    attached = assignment(
        "done", [STATIC], {**ON_ESX01, "devices": [{"name": "gpu0", "attached": True}]}
    )
    never_observed = assignment("new", [STATIC], {})
    broken = {"metadata": None, "spec": {"devices": "x"}, "status": {"vm": {"host": 7}}}
    odd_device = assignment("odd", [{"name": "x", "dynamic": {"vendorID": "zz"}}], ON_ESX01)
    assert pending_claims([attached, never_observed, broken, odd_device]) == ()


def test_pending_claims_are_kept_from_the_caches_changes() -> None:
    """The index a plan reads instead of walking every cached assignment: an assignment's
    claims are replaced by its next version and gone once it attached them or was deleted."""
    claims = PendingClaims()
    claims.put(("ml", "train"), assignment("train", [STATIC], ON_ESX01))
    claims.put(("ml", "infer"), assignment("infer", [DYNAMIC], ON_ESX01))
    assert claims() == pending_claims(
        [assignment("train", [STATIC], ON_ESX01), assignment("infer", [DYNAMIC], ON_ESX01)]
    )
    attached = {**ON_ESX01, "devices": [{"name": "gpu0", "attached": True}]}
    claims.put(("ml", "train"), assignment("train", [STATIC], attached))
    assert [c.assignment for c in claims()] == ["ml/infer"]
    claims.forget(("ml", "infer"))
    assert claims() == ()
