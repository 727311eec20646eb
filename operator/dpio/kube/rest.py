"""JSON over HTTPS to the API server: `ApiServer` for the event loop (aiohttp, which kopf uses
too), `SyncApiServer` for threads and the CLI (the standard library). Both speak
`credentials.Credentials`, turn failures into `KubeError`, and on a 401 renew the token once
(a rotated ServiceAccount token, an expired plugin token) before giving up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from dpio.kube.credentials import ConfigError, Credentials

JSON = "application/json"
#: A list of objects' metadata only (no spec, no status): what a listing of names needs.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
MERGE_PATCH = "application/merge-patch+json"
#: Seconds to connect, and to wait for each read of an answer. Connections are kept open between
#: calls; one that went silent (a proxy that stopped forwarding, a half-dead node) would otherwise
#: hold a caller for ever. A call cut by it fails retryable, and the next one gets a new
#: connection.
REQUEST_TIMEOUT = (10.0, 30.0)
#: Connections per loop: the writes of every reconcile share them. Each kept-alive TLS connection
#: holds asyncio's 256 KiB read buffer (`sslproto.SSLProtocol.max_size`): 2 MiB for the pool,
#: the memory report's `runtime.kube._api._sessions`.
CONNECTIONS = 8


class KubeError(RuntimeError):
    """An API server call failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        # 409 (conflict), 429 and 5xx are transient; 404/403/422 need something else to change.
        self.retryable = status is None or status in (409, 429) or status >= 500


class NotFoundError(KubeError):
    """The object or Secret does not exist."""


def path(*segments: str) -> str:
    """`/`-joined, each segment quoted (names come from users)."""
    return "/" + "/".join(quote(s, safe="") for s in segments)


def custom_object_path(
    group: str, version: str, plural: str, name: str = "", namespace: str | None = None
) -> str:
    """The URL path of a custom object (or of the collection, without `name`)."""
    where = ("namespaces", namespace) if namespace else ()
    return path("apis", group, version, *where, plural, *((name,) if name else ()))


def secret_path(namespace: str, name: str) -> str:
    return path("api", "v1", "namespaces", namespace, "secrets", name)


def secret_data(secret: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's data, decoded from base64 and left as bytes: whoever reads a key says what a
    value that is not UTF-8 text means (vsphere/credentials.py: SecretInvalid, naming the key)."""
    data: Mapping[str, str] = secret.get("data") or {}
    return {key: base64.b64decode(value) for key, value in data.items()}


def error(method: str, url_path: str, status: int, body: bytes) -> KubeError:
    """The API server's Status message, if it sent one, in the error."""
    reason = ""
    try:
        decoded = json.loads(body)
        reason = str(decoded.get("message") or decoded.get("reason") or "")
    except (ValueError, AttributeError):
        reason = body[:200].decode(errors="replace")
    cls = NotFoundError if status == 404 else KubeError
    return cls(f"{method} {url_path}: {status} {reason}".rstrip(), status=status)


def _headers(creds: Credentials, content_type: str | None, accept: str = JSON) -> dict[str, str]:
    headers = {"Accept": accept}
    if content_type:
        headers["Content-Type"] = content_type
    try:
        authorization = creds.authorization()
    except ConfigError as err:  # a token file or plugin failing now: worth trying again later
        raise KubeError(f"credentials ({creds.source}): {err}") from err
    if authorization:
        headers["Authorization"] = authorization
    return headers


def _decoded(method: str, url_path: str, body: bytes) -> Any:
    if not body:
        return {}
    try:
        return json.loads(body)
    except ValueError as err:
        raise KubeError(f"{method} {url_path}: the answer is not JSON") from err


class ApiServer:
    """Async calls on the running loop. One connection pool per loop (tests run several)."""

    def __init__(
        self, creds: Credentials, *, timeout: tuple[float, float] = REQUEST_TIMEOUT
    ) -> None:
        self.creds = creds
        self.timeout = timeout
        self._ssl: ssl.SSLContext | bool | None = None
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    async def request(
        self,
        method: str,
        url_path: str,
        body: Mapping[str, Any] | None = None,
        *,
        content_type: str = JSON,
        accept: str = JSON,
        timeout: tuple[float, float] | None = None,
    ) -> Any:
        """The decoded answer. Raises KubeError (NotFoundError on 404)."""
        connect, read = timeout or self.timeout
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            headers = await self._headers(content_type if data is not None else None, accept)
            try:
                async with self._session().request(
                    method,
                    self.creds.server + url_path,
                    data=data,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(sock_connect=connect, sock_read=read),
                ) as response:
                    answer = await response.read()
                    status = response.status
            except TimeoutError as err:
                raise KubeError(f"Kubernetes API: {method} {url_path}: timed out") from err
            except (aiohttp.ClientError, OSError, ValueError) as err:
                raise KubeError(f"Kubernetes API: {method} {url_path}: {err}") from err
            if status == 401 and attempt == 1:
                self.creds.token_expired()
                continue
            if status >= 400:
                raise error(method, url_path, status, answer)
            return _decoded(method, url_path, answer)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _headers(self, content_type: str | None, accept: str) -> dict[str, str]:
        if self.creds.exec_plugin is None:  # a token file is read in microseconds
            return _headers(self.creds, content_type, accept)
        # A plugin may take seconds (a cloud CLI): not on the loop.
        return await asyncio.to_thread(_headers, self.creds, content_type, accept)

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            for old in [lp for lp in self._sessions if lp.is_closed()]:
                del self._sessions[old]  # a finished test's loop: its pool went with it
            if self._ssl is None:
                self._ssl = self.creds.ssl_context() or False
            connector = aiohttp.TCPConnector(limit=CONNECTIONS, ssl=self._ssl)
            session = aiohttp.ClientSession(connector=connector)
            self._sessions[loop] = session
        return session

    async def close(self) -> None:
        """Close this loop's pool (others' close with their loops)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()


class SyncApiServer:
    """Blocking calls, for threads that are not the loop's (metrics reviews) and the CLI."""

    def __init__(self, creds: Credentials, *, timeout: float = REQUEST_TIMEOUT[1]) -> None:
        self.creds = creds
        self.timeout = timeout
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        context = creds.ssl_context()
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def request(
        self,
        method: str,
        url_path: str,
        body: Mapping[str, Any] | None = None,
        *,
        content_type: str = JSON,
    ) -> Any:
        """The decoded answer. Raises KubeError (NotFoundError on 404)."""
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            headers = _headers(self.creds, content_type if data is not None else None)
            req = urllib.request.Request(
                self.creds.server + url_path, data=data, headers=headers, method=method
            )
            try:
                with self._opener.open(req, timeout=self.timeout) as response:
                    return _decoded(method, url_path, response.read())
            except urllib.error.HTTPError as err:
                answer = err.read()
                if err.code == 401 and attempt == 1:
                    self.creds.token_expired()
                    continue
                raise error(method, url_path, err.code, answer) from err
            except TimeoutError as err:
                raise KubeError(f"Kubernetes API: {method} {url_path}: timed out") from err
            except urllib.error.URLError as err:
                raise KubeError(f"Kubernetes API: {method} {url_path}: {err.reason}") from err
            except (OSError, ValueError) as err:
                raise KubeError(f"Kubernetes API: {method} {url_path}: {err}") from err
        raise AssertionError("unreachable")  # pragma: no cover
