"""How the caches keep an object: read as the mapping it came as, metadata kept as a dict,
containers packed as JSON and decoded afresh on each read."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from dpio.api.vocabulary import dictionary
from dpio.reconcile.compact import CompactBody

#: An assignment's status as the operator wrote it in a benchmark (5,000 of each kind).
ASSIGNMENT = Path(__file__).parent / "data" / "assignment.json"


def _inflate(packed: Any) -> bytes:
    assert isinstance(packed, bytes)
    return zlib.decompressobj(-13, dictionary()).decompress(packed)


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
    spec = b'{"vm":{"name":"train-01"},"devices":[{"name":"gpu0"}]}'
    assert _inflate(kept.packed("spec")) == spec
    status = '{"conditions":[{"type":"Ready","status":"True","message":"é"}]}'
    assert _inflate(kept.packed("status")) == status.encode()  # UTF-8, not \u escapes
    assert kept.packed("status") == CompactBody(BODY).packed("status")  # compares as its JSON
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


def test_a_status_is_kept_in_a_fraction_of_its_json() -> None:
    body = json.loads(ASSIGNMENT.read_text())
    kept = CompactBody(body)
    as_json = len(json.dumps(body["status"], separators=(",", ":")))
    without_dictionary = len(zlib.compress(json.dumps(body["status"]).encode(), 6))
    assert kept["status"] == body["status"]
    assert len(kept.packed("status")) < as_json / 4
    assert len(kept.packed("status")) < without_dictionary * 0.75


def test_strings_outside_the_dictionary_round_trip() -> None:
    odd = {"spec": {"names": ["\u0000", "ß" * 5000, "😀", "\ud800", ""], "deep": [[[{"x": None}]]]}}
    kept = CompactBody(odd)
    assert kept["spec"] == odd["spec"]
    assert len(kept.packed("spec")) < len(json.dumps(odd["spec"]))
