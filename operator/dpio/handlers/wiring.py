"""Adapters plugged into the reconcilers' ports: `dpio.vsphere` and `dpio.kube` behind
`dpio.reconcile.ports`, with vSphere's typed errors turned into `PortError`s here, once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dpio.api.policy import HostPassthroughPolicySpec
from dpio.kube.client import KubeClient, KubeError, ObjectRef
from dpio.planner import (
    EnterMaintenanceMode,
    ExitMaintenanceMode,
    ObservedInventory,
    RebootAction,
    UpdatePassthruConfig,
)
from dpio.planner.conditions import (
    INVALID_CREDENTIALS,
    NOT_PERMITTED,
    SECRET_INVALID,
    SECRET_NOT_FOUND,
)
from dpio.reconcile.ports import PortError
from dpio.vsphere.adapter import HostAdapter
from dpio.vsphere.connect import Connection
from dpio.vsphere.credentials import Credentials, CredentialsError, from_secret_data
from dpio.vsphere.errors import InvalidCredentials, VSphereError
from dpio.vsphere.session import SessionCache, VCenterClient
from dpio.vsphere.watch import Watcher

POLICY = ("hostpassthroughpolicies", "HostPassthroughPolicy")
ASSIGNMENT = ("vmdeviceassignments", "VMDeviceAssignment")
#: After vCenter refused a login, the same user and password are not tried again for this long.
#: vCenter Single Sign-On locks an account after 5 failed logins within 180 s by default
#: (vSphere Authentication guide, "Edit the vCenter Single Sign-On Lockout Policy"); retrying on
#: every backoff step would lock the account for everyone. A changed Secret is tried at once.
REFUSED_LOGIN_RETRY_SECONDS = 600.0


def _port_error(err: VSphereError, where: str = "") -> PortError:
    # Errors a human must fix name the Secret they came through; outages need no pointer.
    message = f"{where}: {err}" if where and not err.retryable else str(err)
    return PortError(type(err).__name__, message, retryable=err.retryable)


def _logged_in(conn: Connection) -> None:
    """Nothing: `VCenterClient.run` logs in first if the session has no connection yet."""


@dataclass
class VSphereHosts:
    """`HostsPort` over the adapter's `HostAdapter`: only the error translation is added here."""

    adapter: HostAdapter

    async def read_inventory(self) -> ObservedInventory:
        try:
            return await self.adapter.read_inventory()
        except VSphereError as err:
            raise _port_error(err) from err

    async def update_passthru_config(self, update: UpdatePassthruConfig) -> None:
        try:
            await self.adapter.update_passthru_config(update.moref, update.changes)
        except VSphereError as err:
            raise _port_error(err) from err

    async def start(self, action: RebootAction) -> None:
        try:
            if isinstance(action, EnterMaintenanceMode):
                await self.adapter.enter_maintenance_mode(action.moref, action.timeout)
            elif isinstance(action, ExitMaintenanceMode):
                await self.adapter.exit_maintenance_mode(action.moref)
            else:
                await self.adapter.reboot_host(action.moref)
        except VSphereError as err:
            raise _port_error(err) from err


@dataclass
class VCenters:
    """`VCenterPort`: the Secret named by the policy, else the operator's default Secret.

    A Secret that is missing or malformed, a refused login, an untrusted certificate: each is a
    non-retryable `PortError` naming the Secret (the policy goes Stalled and is looked at again on
    a slow timer); an unreachable vCenter is retryable (backoff).
    """

    kube: KubeClient
    sessions: SessionCache
    namespace: str
    default_secret: str
    #: Called (on a watcher thread) when vCenter reports a change to a host or VM.
    on_change: Callable[[], None] = lambda: None
    #: One adapter (and its inventory view and watcher) per vCenter session.
    adapters: dict[str, HostAdapter] = field(default_factory=dict)
    watchers: dict[str, Watcher] = field(default_factory=dict)
    #: Logins vCenter refused, by Credentials.cache_key(): when, and the error to report.
    refused: dict[tuple[str, str, str], tuple[float, PortError]] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic

    async def hosts_for(self, spec: HostPassthroughPolicySpec) -> VSphereHosts:
        secret = spec.vcenter.secret_ref.name if spec.vcenter else self.default_secret
        where = f"Secret {self.namespace}/{secret}"
        client = await self.client_for(where, await self.credentials(secret, where))
        adapter = self.adapters.get(client.server)
        if adapter is None or adapter.client is not client:  # first use, or new credentials
            adapter = self.adapters[client.server] = HostAdapter(client)
        watcher = self.watchers.get(client.server)
        if watcher is None or watcher.client is not client or not watcher.alive:
            old = self.watchers.pop(client.server, None)
            if old is not None:
                await asyncio.to_thread(old.stop)
            # Drift shows within seconds through WaitForUpdatesEx, not by polling (§3.2.10).
            self.watchers[client.server] = adapter.watch(lambda _changes: self.on_change())
        return VSphereHosts(adapter)

    async def credentials(self, secret: str, where: str) -> Credentials:
        """The Secret's credentials; SecretNotFound / SecretInvalid / NotPermitted otherwise."""
        try:
            return from_secret_data(await self.kube.read_secret(self.namespace, secret))
        except KubeError as err:
            if err.status == 404:
                message = (
                    f"{where} not found: create it with keys server, username, password and "
                    'caBundle or thumbprint (or insecure: "true")'
                )
                raise PortError(SECRET_NOT_FOUND, message, retryable=False) from err
            if err.status == 403:
                message = f"The operator may not read {where} (RBAC: get secrets): {err}"
                raise PortError(NOT_PERMITTED, message, retryable=False) from err
            raise PortError("VCenterUnreachable", f"{where}: {err}", retryable=True) from err
        except CredentialsError as err:
            raise PortError(SECRET_INVALID, f"{where}: {err}", retryable=False) from err

    async def client_for(self, where: str, credentials: Credentials) -> VCenterClient:
        """A logged-in session; a refused login is remembered and not retried for a while."""
        key = credentials.cache_key()
        refused = self.refused.get(key)
        if refused is not None and self.monotonic() - refused[0] < REFUSED_LOGIN_RETRY_SECONDS:
            raise refused[1]
        self.refused.pop(key, None)
        try:
            client = await self.sessions.get_async(credentials)
            await client.run(_logged_in)
        except InvalidCredentials as err:
            message = (
                f"vCenter {credentials.server} refused the login of {credentials.username} "
                f"from {where}: {err.message}. Fix the password or user name in the Secret "
                f"(tried again at once when it changes, else every "
                f"{int(REFUSED_LOGIN_RETRY_SECONDS // 60)} minutes)"
            )
            error = PortError(INVALID_CREDENTIALS, message, retryable=False)
            self.refused[key] = (self.monotonic(), error)
            raise error from err
        except CredentialsError as err:  # e.g. a caBundle that does not parse as PEM
            raise PortError(SECRET_INVALID, f"{where}: {err}", retryable=False) from err
        except VSphereError as err:
            raise _port_error(err, where) from err
        return client

    def stop(self) -> None:
        for watcher in self.watchers.values():
            watcher.stop()
        self.watchers.clear()


@dataclass
class KubeObjects:
    """`ObjectsPort` over the Kubernetes adapter."""

    kube: KubeClient

    async def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        rv = str(body["metadata"].get("resourceVersion", ""))
        await self._guard(self.kube.patch_status(ref_of(body), status, rv))

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
        rv = str(body["metadata"].get("resourceVersion", ""))
        await self._guard(self.kube.set_finalizers(ref_of(body), finalizers, rv))

    async def event(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        ref = ref_of(body)
        await self.kube.emit_event(
            ref, type_=type_, reason=reason, message=message, namespace=ref.namespace or "default"
        )

    @staticmethod
    async def _guard(call: Any) -> None:
        try:
            await call
        except KubeError as err:
            raise PortError("KubernetesAPIError", str(err), retryable=err.retryable) from err


def ref_of(body: Mapping[str, Any]) -> ObjectRef:
    meta = body["metadata"]
    plural, kind = ASSIGNMENT if body.get("kind") == ASSIGNMENT[1] else POLICY
    return ObjectRef(
        plural=plural,
        kind=kind,
        name=meta["name"],
        namespace=meta.get("namespace"),
        uid=meta.get("uid", ""),
    )
