"""One vCenter session per server, user and password; re-login on expiry; blocking calls off-loop.

Modelled on cluster-api-provider-vsphere's session cache: keyed by server + user + password hash,
validated on use, logged out on shutdown. Every pyVmomi call is blocking, so `VCenterClient.run`
executes it in a bounded thread pool (one thread per pooled HTTP connection) and kopf handlers
`await` it without blocking the event loop (docs/design.md, "Runtime").

Validation costs a round trip, so it is done only when the session was idle long enough to have
expired (`validate_after`); a call that meets `NotAuthenticated` anyway logs in once more and is
retried once. That is safe for every call: vCenter checks the session before running the method.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, ParamSpec, TypeVar

from dpio.observability import logging as logs
from dpio.observability import metrics
from dpio.vsphere import connect
from dpio.vsphere.connect import Connection
from dpio.vsphere.credentials import Credentials, ssl_context
from dpio.vsphere.errors import NotAuthenticated, SessionExpired, VSphereError, translated
from dpio.vsphere.task_states import TaskStates

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_WORKERS = 8
DEFAULT_TIMEOUT_SECONDS = 60.0
# vCenter's default idle session timeout is 30 minutes (vpxd.httpClientIdleTimeout); validating
# after 5 idle minutes catches sessions dropped by a vCenter restart without a call per use.
DEFAULT_VALIDATE_AFTER_SECONDS = 300.0


class VCenterClient:
    """A logged-in vCenter session plus the thread pool its blocking calls run in."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        max_workers: int = DEFAULT_WORKERS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        validate_after: float = DEFAULT_VALIDATE_AFTER_SECONDS,
    ) -> None:
        self.credentials = credentials
        self.timeout = timeout
        self.validate_after = validate_after
        self.logins = 0  # how many times we logged in (tests and metrics read it)
        #: Task states reported by this vCenter's change watch (watch.py), for waits without
        #: a call of their own (tasks.py).
        self.tasks = TaskStates()
        logs.protect(credentials.secrets())  # scrubbed from every log line, whoever logs it
        self._context = ssl_context(credentials)
        # One HTTP connection per worker, plus the change watcher's long poll and a spare.
        self._pool_size = max_workers + 2
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix=f"vsphere-{credentials.host}"
        )
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._last_used = 0.0
        self._closed = False

    def __repr__(self) -> str:
        return f"VCenterClient({self.credentials.server!r}, user={self.credentials.username!r})"

    @property
    def server(self) -> str:
        return self.credentials.server

    def connection(self) -> Connection:
        """The current connection, logging in first if there is none (blocking)."""
        with self._lock:
            if self._closed:
                raise VSphereError(f"client for {self.server} is closed")
            if self._connection is None:
                self._connection = self._login()
            return self._connection

    def relogin(self, stale: Connection | None) -> Connection:
        """Log in again unless another thread already replaced `stale` (one login per expiry)."""
        with self._lock:
            if self._closed:
                raise VSphereError(f"client for {self.server} is closed")
            if self._connection is not None and self._connection is not stale:
                return self._connection
            logger.info("Logging in to vCenter again", extra={"server": self.server})
            self._connection = self._login(stale)
            return self._connection

    def _login(self, previous: Connection | None = None) -> Connection:
        stub = previous.stub if previous is not None else None
        if stub is None:
            stub = connect.open_stub(
                self.credentials, self._context, timeout=self.timeout, pool_size=self._pool_size
            )
            _count_calls(stub, self.server)
        connection = connect.login(stub, self.credentials)
        self.logins += 1
        self._last_used = time.monotonic()
        logger.info(
            "Logged in to vCenter",
            extra={"server": self.server, "username": self.credentials.username},
        )
        return connection

    def long_poll_stub(self, conn: Connection, timeout: float) -> Any:
        """A stub on `conn`'s session whose socket waits `timeout` seconds, not `self.timeout`:
        for the change watch's `WaitForUpdatesEx` (counted in the metrics like every call)."""
        stub = connect.sibling_stub(conn.stub, self.credentials, self._context, timeout=timeout)
        _count_calls(stub, self.server)
        return stub

    def validate(self) -> None:
        """Check the session if it sat idle past `validate_after`; log in again if it is gone."""
        current = self._connection
        if current is None or time.monotonic() - self._last_used < self.validate_after:
            return
        try:
            active = connect.session_is_active(current)
        except NotAuthenticated:
            active = False
        if not active:
            self.relogin(current)

    def call(self, fn: Callable[Concatenate[Connection, P], T], *a: P.args, **kw: P.kwargs) -> T:
        """Run `fn(connection, ...)` here (blocking); faults come out as `VSphereError`s."""
        conn = self.connection()
        secrets = self.credentials.secrets()
        try:
            with translated(secrets=secrets):
                result = fn(conn, *a, **kw)
        except NotAuthenticated as err:
            logger.info("vCenter session expired", extra={"server": self.server})
            conn = self.relogin(conn)
            try:
                with translated(secrets=secrets):
                    result = fn(conn, *a, **kw)
            except NotAuthenticated as again:
                raise SessionExpired(again.message, fault=again.fault) from err
        self._last_used = time.monotonic()
        return result

    async def run(
        self, fn: Callable[Concatenate[Connection, P], T], *a: P.args, **kw: P.kwargs
    ) -> T:
        """`await client.run(fn, ...)`: `call` in the bounded thread pool, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(self.call, fn, *a, **kw)
        )

    def close(self) -> None:
        """Log out and stop the thread pool; calls after this raise."""
        with self._lock:
            self._closed = True
            connection, self._connection = self._connection, None
        self._executor.shutdown(wait=False, cancel_futures=True)
        if connection is not None:
            connect.logout(connection)
            logger.info("Logged out of vCenter", extra={"server": self.server})


def _count_calls(stub: Any, server: str) -> None:
    """Count every SOAP call on `stub` per method (dpio_vcenter_calls_total).

    pyVmomi sends each call, property reads (`InvokeAccessor` -> `Fetch`) included, through the
    stub's `InvokeMethod(mo, info, args)`; wrapping it on the instance sees them all, Login and
    the change watcher's WaitForUpdatesEx as well, without touching pyVmomi's classes.
    """
    if not metrics.is_counted(stub.InvokeMethod):
        stub.InvokeMethod = metrics.counted(stub.InvokeMethod, server)


class SessionCache:
    """One `VCenterClient` per server + user + password hash; `close_all()` on shutdown."""

    def __init__(
        self,
        *,
        max_workers: int = DEFAULT_WORKERS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        validate_after: float = DEFAULT_VALIDATE_AFTER_SECONDS,
    ) -> None:
        self._options = {"max_workers": max_workers, "timeout": timeout}
        self._validate_after = validate_after
        self._clients: dict[tuple[str, str, str], VCenterClient] = {}
        self._lock = threading.Lock()

    def get(self, credentials: Credentials) -> VCenterClient:
        """The client for `credentials`; a changed password replaces (and logs out) the old one.

        Blocking when validation is due: call it from a worker thread or through `get_async`.
        """
        key = credentials.cache_key()
        with self._lock:
            client = self._clients.get(key)
            stale = [k for k in self._clients if k[:2] == key[:2] and k != key]
            retired = [self._clients.pop(k) for k in stale]
            if client is None:
                client = VCenterClient(
                    credentials,
                    max_workers=int(self._options["max_workers"]),
                    timeout=self._options["timeout"],
                    validate_after=self._validate_after,
                )
                self._clients[key] = client
        for old in retired:
            old.close()
        client.validate()
        return client

    async def get_async(self, credentials: Credentials) -> VCenterClient:
        return await asyncio.to_thread(self.get, credentials)

    def close_all(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
