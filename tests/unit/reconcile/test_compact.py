"""How the caches keep an object: read as the mapping it came as, metadata kept as a dict,
containers packed as JSON and decoded afresh on each read."""

from __future__ import annotations

import json
from typing import Any

from dpio.reconcile.compact import CompactBody

BODY: dict[str, Any] = {
    "apiVersion": "dpio.io/v1alpha1",
    "kind": "VMDeviceAssignment",
    "metadata": {"name": "train", "namespace": "ml", "managedFields": [{"manager": "x"}]},
    "spec": {"vm": {"name": "train-01"}, "devices": [{"name": "gpu0"}]},
    "status": {"conditions": [{"type": "Ready", "status": "True", "message": "é"}]},
}


def test_reads_as_the_body_without_managed_fields() -> None:
    kept = CompactBody(json.loads(json.dumps(BODY)))
    expected = {**BODY, "metadata": {"name": "train", "namespace": "ml"}}
    assert kept == expected
    assert expected == kept
    assert list(kept) == ["metadata", "apiVersion", "kind", "spec", "status"]
    assert len(kept) == 5
    assert kept.get("missing") is None
    assert "spec" in kept
    assert repr(kept).startswith("CompactBody({'metadata'")


def test_containers_are_packed_scalars_and_metadata_are_not() -> None:
    kept = CompactBody(BODY)
    assert kept.packed("spec") == b'{"vm":{"name":"train-01"},"devices":[{"name":"gpu0"}]}'
    status = '{"conditions":[{"type":"Ready","status":"True","message":"é"}]}'
    assert kept.packed("status") == status.encode()  # UTF-8, not \u escapes
    assert kept.packed("kind") == "VMDeviceAssignment"
    assert kept.packed("missing") is None
    assert kept["metadata"] is kept.metadata  # the one dict walks read, never decoded
    assert kept["spec"] is not kept["spec"]  # each read a fresh copy
    assert kept.fields_but(frozenset({"status", "apiVersion", "kind"})) == (
        ("spec", kept.packed("spec")),
    )


def test_a_body_without_metadata_reads_as_empty_metadata() -> None:
    kept = CompactBody({"spec": [1, 2]})
    assert kept["metadata"] == {}
    assert kept["spec"] == [1, 2]
