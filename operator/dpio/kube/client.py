"""Writes to the API server, run off the event loop (the official client blocks)."""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

GROUP = "dpio.io"
VERSION = "v1alpha1"
_T = TypeVar("_T")
#: Seconds to connect, and to wait for each read of an answer. The client keeps connections open
#: between calls; one that went silent (a proxy that stopped forwarding, a half-dead node) would
#: otherwise hold a worker for ever: urllib3 waits without limit by default. A call cut by it
#: fails retryable, and the next one gets a new connection.
REQUEST_TIMEOUT = (10.0, 30.0)
_log = logging.getLogger(__name__)


class KubeError(RuntimeError):
    """An API server call failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        # 409 (conflict), 429 and 5xx are transient; 404/403/422 need something else to change.
        self.retryable = status is None or status in (409, 429) or status >= 500


class NotFoundError(KubeError):
    """The object or Secret does not exist."""


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

    def __init__(
        self,
        api: k8s.ApiClient,
        *,
        reporter: str = "dpio-operator",
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> None:
        self._timeout = timeout
        self._custom = k8s.CustomObjectsApi(api)
        self._core = k8s.CoreV1Api(api)
        self._reporter = reporter
        # The client's connection pool is small; more threads would only queue on it.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kube")

    async def patch_status(
        self, ref: ObjectRef, status: Mapping[str, Any], resource_version: str = ""
    ) -> None:
        """Write the whole status (merge patch on the status subresource)."""
        body: dict[str, Any] = {"status": dict(status)}
        if resource_version:
            # Optimistic concurrency: a write based on a stale read fails with 409 instead.
            body["metadata"] = {"resourceVersion": resource_version}
        if ref.namespace is None:
            await self._call(
                self._custom.patch_cluster_custom_object_status,
                GROUP, VERSION, ref.plural, ref.name, body,
            )  # fmt: skip
        else:
            await self._call(
                self._custom.patch_namespaced_custom_object_status,
                GROUP, VERSION, ref.namespace, ref.plural, ref.name, body,
            )  # fmt: skip

    async def set_finalizers(
        self, ref: ObjectRef, finalizers: list[str], resource_version: str
    ) -> None:
        """Replace ``metadata.finalizers``; fails with a conflict if the object changed since."""
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}}
        if ref.namespace is None:
            await self._call(
                self._custom.patch_cluster_custom_object, GROUP, VERSION, ref.plural, ref.name, body
            )
        else:
            await self._call(
                self._custom.patch_namespaced_custom_object,
                GROUP, VERSION, ref.namespace, ref.plural, ref.name, body,
            )  # fmt: skip

    async def read_secret(self, namespace: str, name: str) -> dict[str, str]:
        """The decoded data of a Secret (values are never logged)."""
        secret = await self._call(self._core.read_namespaced_secret, name, namespace)
        data: Mapping[str, str] = secret.data or {}
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    async def emit_event(
        self, ref: ObjectRef, *, type_: str, reason: str, message: str, namespace: str
    ) -> None:
        """A core/v1 Event on the object (what ``kubectl describe`` shows). Best effort."""
        now = datetime.datetime.now(datetime.UTC)
        event = k8s.CoreV1Event(
            metadata=k8s.V1ObjectMeta(generate_name=f"{ref.name}.", namespace=namespace),
            involved_object=k8s.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}",
                kind=ref.kind,
                name=ref.name,
                namespace=ref.namespace,
                uid=ref.uid or None,
            ),
            type=type_,
            reason=reason,
            message=message[:1024],
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=k8s.V1EventSource(component=self._reporter),
            reporting_component=self._reporter,
        )
        try:
            await self._call(self._core.create_namespaced_event, namespace, event)
        except KubeError as err:  # an Event lost is not worth failing a reconcile over
            _log.warning("Could not post Event", extra={"object": ref.name, "error": str(err)})

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _call(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._pool, lambda: fn(*args, _request_timeout=self._timeout)
            )
        except ApiException as err:
            cls = NotFoundError if err.status == 404 else KubeError
            raise cls(f"{fn.__name__}: {err.status} {err.reason}", status=err.status) from err
        except (OSError, TransportError) as err:  # refused, reset, timed out: retryable
            raise KubeError(f"{fn.__name__}: {err}") from err
