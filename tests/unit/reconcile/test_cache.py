"""The object cache: a copy of the latest object, without managedFields, and a count that moves
only when something other than the status changed."""

from __future__ import annotations

import json
from typing import Any

from dpio.reconcile.cache import ObjectCache


def _body(name: str, generation: int = 1, status: Any = None, rv: str = "1") -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": name, "generation": generation, "resourceVersion": rv},
        "spec": {"generation": generation},
    }
    if status is not None:
        body["status"] = status
    return body


def test_the_cache_keeps_no_managed_fields_and_is_a_copy() -> None:
    cache = ObjectCache()
    body = _body("a")
    body["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]

    cache.put(body)
    body["spec"]["generation"] = 99  # the watch's dict changes later: the cache must not

    cached = cache.get(("", "a"))
    assert cached is not None
    assert "managedFields" not in cached["metadata"]
    assert cached["spec"] == {"generation": 1}
    assert cached["metadata"]["resourceVersion"] == "1"


def test_the_cache_shares_metadata_strings_and_packs_the_other_fields() -> None:
    """Metadata stays a dict whose strings are shared between objects; spec and status are kept
    packed and each read is a fresh copy, so a caller's change never reaches the cache."""
    cache = ObjectCache()
    for name in ("a", "b"):
        body = _body(name, status={"conditions": [{"type": "Ready", "reason": "Reconciled"}]})
        body["metadata"]["finalizers"] = ["dpio.io/cleanup"]
        cache.put(json.loads(json.dumps(body)))  # strings of its own
    a, b = cache.get(("", "a")), cache.get(("", "b"))
    assert a is not None
    assert b is not None
    assert a["metadata"]["finalizers"][0] is b["metadata"]["finalizers"][0]
    assert a.packed("status") == b.packed("status")  # packed, the same for the same status
    assert isinstance(a.packed("status"), bytes)
    read = a["status"]
    read["conditions"].clear()
    assert a["status"] == {"conditions": [{"type": "Ready", "reason": "Reconciled"}]}
    long_text = "x" * 1000
    cache.put(_body("c", status={"message": long_text}))
    c = cache.get(("", "c"))
    assert c is not None
    assert c["status"]["message"] == long_text
    assert dict(c) == {**_body("c", status={"message": long_text})}


def test_desired_changes_moves_on_add_spec_change_and_delete_not_on_status() -> None:
    cache = ObjectCache()
    first = cache.put(_body("a"))
    assert (first.previous, first.desired_changed, cache.desired_changes) == (None, True, 1)

    status_only = cache.put(_body("a", status={"ready": True}, rv="2"))
    assert status_only.previous == _body("a")
    assert (status_only.desired_changed, cache.desired_changes) == (False, 1)

    assert cache.put(_body("a", generation=2, rv="3")).desired_changed
    cache.delete(("", "a"))
    assert (cache.desired_changes, len(cache), ("", "a") in cache) == (3, 0, False)


def test_spec_changes_moves_on_add_spec_change_deletion_and_delete_not_on_a_finalizer() -> None:
    """What the other policies' index depends on (policy/others.py): every first reconcile adds
    a finalizer, which must not rebuild it (finding 30)."""
    cache = ObjectCache()
    cache.put(_body("a"))
    assert cache.spec_changes == 1
    finalized = _body("a", rv="2")
    finalized["metadata"]["finalizers"] = ["dpio.io/cleanup"]
    finalized["metadata"]["labels"] = {"team": "ml"}
    assert cache.put(finalized).desired_changed  # a change for the object's own reconcile...
    assert cache.spec_changes == 1  # ...not for the others'
    cache.put(_body("a", status={"ready": True}, rv="3"))
    assert cache.spec_changes == 1
    cache.put(_body("a", generation=2, rv="4"))
    assert cache.spec_changes == 2
    deleting = _body("a", generation=2, rv="5")
    deleting["metadata"]["deletionTimestamp"] = "2026-12-06T00:00:00Z"
    cache.put(deleting)
    assert cache.spec_changes == 3
    cache.delete(("", "a"))
    assert cache.spec_changes == 4
    cache.put({"metadata": {"name": "b", "resourceVersion": "1"}})  # no generation
    cache.put({"metadata": {"name": "b", "resourceVersion": "2"}})  # each version counts
    assert cache.spec_changes == 6
