"""`KubeObjects`, the reconcilers' port to the API server: a finalizer write on an object that
is gone is done; any other failure is a `PortError` the reconciler retries."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from dpio.app.wiring import KubeObjects
from dpio.kube.client import KubeClient, KubeError, NotFoundError, ObjectRef
from dpio.reconcile.ports import PortError

BODY = {
    "apiVersion": "dpio.io/v1alpha1",
    "kind": "VMDeviceAssignment",
    "metadata": {"name": "trainer", "namespace": "team-a", "resourceVersion": "7"},
}


class Refusing:
    """A `KubeClient` whose finalizer writes fail with `error`."""

    def __init__(self, error: KubeError) -> None:
        self.error = error
        self.writes: list[tuple[ObjectRef, list[str], str]] = []

    async def set_finalizers(self, ref: ObjectRef, finalizers: list[str], rv: str) -> None:
        self.writes.append((ref, finalizers, rv))
        raise self.error


def _set(kube: Refusing) -> Any:
    objects = KubeObjects(cast(KubeClient, kube))
    return asyncio.run(objects.set_finalizers(BODY, []))


def test_releasing_the_finalizer_of_an_object_that_is_gone_is_done() -> None:
    kube = Refusing(NotFoundError("PATCH ...: 404 not found", status=404))
    assert _set(kube) is None
    assert kube.writes == [(kube.writes[0][0], [], "7")]
    assert kube.writes[0][0].name == "trainer"


@pytest.mark.parametrize(("status", "retryable"), [(409, True), (503, True), (403, False)])
def test_other_failures_are_port_errors(status: int, retryable: bool) -> None:
    with pytest.raises(PortError) as failed:
        _set(Refusing(KubeError(f"PATCH ...: {status}", status=status)))
    assert failed.value.retryable is retryable
