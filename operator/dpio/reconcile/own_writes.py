"""Tell the controller which status the operator is about to write, so the watch event of its
own write is told apart from a status someone else wrote (which is then put right).

A wrapper around the `ObjectsPort`, so neither the reconcilers nor the Kubernetes adapter carry
the bookkeeping. The status is recorded before the write: the watch event can arrive before the
patch call returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dpio.reconcile.controller import Controller, key_of
from dpio.reconcile.ports import ObjectsPort


class OwnStatusWrites:
    """An `ObjectsPort` that reports each status write to the object's controller first."""

    def __init__(self, inner: ObjectsPort, controller: Callable[[], Controller]) -> None:
        self.inner = inner
        self.controller = controller

    async def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        self.controller().expect_status(key_of(body), status)
        await self.inner.patch_status(body, status)

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
        await self.inner.set_finalizers(body, finalizers)

    async def event(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        await self.inner.event(body, type_, reason, message)
