"""Writes to the API server: status, finalizers, Events; Secrets read. Async, on kopf's loop."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from dpio.api.common import API_VERSION, GROUP, VERSION
from dpio.kube.rest import (
    MERGE_PATCH,
    METADATA_LIST,
    ApiServer,
    KubeError,
    NotFoundError,
    custom_object_path,
    path,
    secret_data,
    secret_path,
)

__all__ = ["KubeClient", "KubeError", "NotFoundError", "ObjectRef"]

_log = logging.getLogger(__name__)
#: Objects per page when listing names: a page of metadata is ~1 KB per object.
LIST_PAGE = 500


@dataclass(frozen=True)
class ObjectRef:
    """Identity of one dpio object (namespace None for the cluster-scoped policy)."""

    plural: str
    kind: str
    name: str
    namespace: str | None = None
    uid: str = ""


class KubeClient:
    """Status, finalizers, Events and Secrets. Every method is async and never blocks the loop."""

    def __init__(self, api: ApiServer, *, reporter: str = "dpio-operator") -> None:
        self._api = api
        self._reporter = reporter

    async def patch_status(
        self, ref: ObjectRef, status: Mapping[str, Any], resource_version: str = ""
    ) -> None:
        """Write the whole status (merge patch on the status subresource)."""
        body: dict[str, Any] = {"status": dict(status)}
        if resource_version:
            # Optimistic concurrency: a write based on a stale read fails with 409 instead.
            body["metadata"] = {"resourceVersion": resource_version}
        where = custom_object_path(GROUP, VERSION, ref.plural, ref.name, ref.namespace)
        await self._api.request("PATCH", where + "/status", body, content_type=MERGE_PATCH)

    async def set_finalizers(
        self, ref: ObjectRef, finalizers: list[str], resource_version: str
    ) -> None:
        """Replace ``metadata.finalizers``; fails with a conflict if the object changed since."""
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}}
        where = custom_object_path(GROUP, VERSION, ref.plural, ref.name, ref.namespace)
        await self._api.request("PATCH", where, body, content_type=MERGE_PATCH)

    async def list_keys(self, collection: str) -> set[tuple[str, str]]:
        """(namespace or "", name) of every object of a collection path (e.g.
        `custom_object_path(GROUP, VERSION, plural)`, or `/api/v1/namespaces`): metadata only,
        page by page."""
        keys: set[tuple[str, str]] = set()
        token = ""
        while True:
            query = urlencode({"limit": LIST_PAGE, **({"continue": token} if token else {})})
            page = await self._api.request("GET", f"{collection}?{query}", accept=METADATA_LIST)
            for item in page.get("items") or ():
                meta = item.get("metadata") or {}
                keys.add((str(meta.get("namespace") or ""), str(meta.get("name", ""))))
            token = str((page.get("metadata") or {}).get("continue") or "")
            if not token:
                return keys

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        """The decoded data of a Secret (values are never logged)."""
        return secret_data(await self._api.request("GET", secret_path(namespace, name)))

    async def emit_event(
        self, ref: ObjectRef, *, type_: str, reason: str, message: str, namespace: str
    ) -> None:
        """A core/v1 Event on the object (what ``kubectl describe`` shows). Best effort."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        involved = {"apiVersion": API_VERSION, "kind": ref.kind, "name": ref.name}
        if ref.namespace:
            involved["namespace"] = ref.namespace
        if ref.uid:
            involved["uid"] = ref.uid
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": namespace},
            "involvedObject": involved,
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": self._reporter},
            "reportingComponent": self._reporter,
        }
        try:
            await self._api.request(
                "POST", path("api", "v1", "namespaces", namespace, "events"), event
            )
        except KubeError as err:  # an Event lost is not worth failing a reconcile over
            _log.warning("Could not post Event", extra={"object": ref.name, "error": str(err)})

    async def close(self) -> None:
        await self._api.close()
