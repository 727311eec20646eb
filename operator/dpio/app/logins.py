"""From a Secret's name to a logged-in vCenter session, with errors that say who must act.

Shared by both kinds (an assignment logs in with its policy's Secret). A Secret that is missing
or malformed, a login vCenter refused, a certificate that doesn't match: each is a
non-retryable `PortError` naming the Secret (the object goes Stalled; the reconciler looks again
on a slow timer). An unreachable vCenter, or an API server that fails to return the Secret, is
retryable (capped exponential backoff).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dpio.api.conditions import (
    INVALID_CREDENTIALS,
    NOT_PERMITTED,
    SECRET_INVALID,
    SECRET_NOT_FOUND,
    VCENTER_UNREACHABLE,
)
from dpio.app.faults import port_error
from dpio.kube.client import KubeClient, KubeError
from dpio.reconcile.ports import PortError
from dpio.vsphere.connect import Connection
from dpio.vsphere.credentials import Credentials, CredentialsError, from_secret_data
from dpio.vsphere.errors import InvalidCredentials, VSphereError
from dpio.vsphere.session import SessionCache, VCenterClient

#: After vCenter refused a login, the same user and password are not tried again for this long.
#: vCenter Single Sign-On locks an account after 5 failed logins within 180 s by default
#: (vSphere Authentication guide, "Edit the vCenter Single Sign-On Lockout Policy"); retrying on
#: every backoff step would lock the account for everyone. A changed Secret is tried at once.
REFUSED_LOGIN_RETRY_SECONDS = 600.0
#: A Secret that led to a working login is used again for this long without a GET: one read per
#: reconcile would be most of the operator's API-server traffic while converging (measured in
#: docs/benchmarks.md, finding 2). Short, so a changed Secret (new password, another vCenter) is
#: picked up within seconds; below STALLED_RECHECK_SECONDS, and a Secret that failed is never
#: reused, so a Stalled object's re-check always reads the Secret afresh.
SECRET_REUSE_SECONDS = 10.0


def _logged_in(conn: Connection) -> None:
    """Nothing: `VCenterClient.run` logs in first if the session has no connection yet."""


@dataclass
class Logins:
    """Secrets in the operator's namespace to sessions from the shared `SessionCache`."""

    kube: KubeClient
    sessions: SessionCache
    namespace: str
    #: Logins vCenter refused, by Credentials.cache_key(): when, and the error to report.
    refused: dict[tuple[str, str, str], tuple[float, PortError]] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic
    #: Secrets whose login worked, by name: when they were read, and what they said.
    working: dict[str, tuple[float, Credentials]] = field(default_factory=dict)

    async def client(self, secret: str) -> VCenterClient:
        """A logged-in session for the vCenter of Secret `secret`, or a `PortError`."""
        where = f"Secret {self.namespace}/{secret}"
        known = self.working.get(secret)
        if known is not None and self.monotonic() - known[0] < SECRET_REUSE_SECONDS:
            credentials = known[1]
        else:
            known, read_at = None, self.monotonic()
            credentials = await self.credentials(secret, where)
        try:
            client = await self.client_for(where, credentials)
        except PortError:
            self.working.pop(secret, None)  # read it again next time
            raise
        if known is None:
            self.working[secret] = (read_at, credentials)
        return client

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
            raise PortError(VCENTER_UNREACHABLE, f"{where}: {err}", retryable=True) from err
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
            raise port_error(err, where) from err
        return client
