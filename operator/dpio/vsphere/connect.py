"""Open a SOAP stub to vCenter and log in: TLS from the credentials, timeouts on every socket.

We build `SoapStubAdapter` ourselves instead of calling `pyVim.connect.SmartConnect` because the
latter (a) fetches `vimServiceVersions.xml` with no socket timeout, so a silent vCenter hangs
the thread for ever, and (b) silently switches to an unverified TLS context for `127.0.0.1`.
"""

from __future__ import annotations

import http.client
import ssl
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from pyVmomi import SoapAdapter, VmomiSupport, vim
from pyVmomi.VmomiSupport import ManagedObject

from dpio.vsphere import soap_memory
from dpio.vsphere.credentials import Credentials
from dpio.vsphere.errors import VCenterUnreachable, translated

# Idle pooled HTTP connections are closed after this (pyVim's CONNECTION_POOL_IDLE_TIMEOUT_SEC is
# 900 s; load balancers in front of vCenter often cut idle connections sooner).
CONNECTION_POOL_IDLE_SECONDS = 300
_VIM25 = "urn:vim25"
# Parts of pyVmomi without type annotations, used as Any on purpose.
_support: Any = VmomiSupport
_stub_adapter: Any = SoapAdapter.SoapStubAdapter
_service_instance: Any = vim.ServiceInstance


@dataclass(frozen=True, slots=True)
class Connection:
    """A logged-in stub and the ServiceContent read once at login (its morefs never change)."""

    stub: Any  # pyVmomi.SoapStubAdapter (untyped)
    content: Any  # vim.ServiceInstanceContent; its optional managers are always set on vCenter

    def ref(self, kind: type[ManagedObject], moref: str) -> Any:
        """A managed object reference on this stub, from its id (`host-12`): no round trip."""
        factory: Any = kind
        return factory(moref, self.stub)


def supported_versions(document: bytes) -> set[str]:
    """Version ids (`8.0.3.0`) of the vim25 namespace listed in `vimServiceVersions.xml`."""
    root = ET.fromstring(document)  # vCenter's answer over verified TLS
    found: set[str] = set()
    for namespace in root.iter("namespace"):
        if namespace.findtext("name") != _VIM25:
            continue
        found.update(v.text or "" for v in namespace.iter("version"))
    return found - {""}


def pick_version(server_versions: set[str]) -> str | None:
    """The newest pyVmomi version of vim25 that the server also speaks.

    pyVmomi leaves out of a request every property newer than the stub's version, so the stub
    must speak the server's newest version for `applyNow` (7.0) or `hardwareLabel` (7.0.2).
    """
    for version in _support.GetServiceVersions("vim25"):
        if _support.versionIdMap.get(version) in server_versions:
            return str(version)
    return None


def negotiate_version(credentials: Credentials, context: ssl.SSLContext, timeout: float) -> str:
    """GET `<path>/vimServiceVersions.xml` (what SmartConnect does), with a timeout."""
    conn = http.client.HTTPSConnection(
        credentials.host, credentials.port, context=context, timeout=timeout
    )
    try:
        conn.request("GET", f"{credentials.path}/vimServiceVersions.xml")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    version = None
    if response.status == http.HTTPStatus.OK:
        try:
            version = pick_version(supported_versions(body))
        except ET.ParseError:
            version = None
    if version is None:
        raise VCenterUnreachable(
            f"{credentials.server} does not list a vSphere API version this client speaks "
            f"(HTTP {response.status} for vimServiceVersions.xml)"
        )
    return version


def open_stub(
    credentials: Credentials, context: ssl.SSLContext, *, timeout: float, pool_size: int
) -> Any:
    """A stub that is not logged in yet; nothing but version discovery has been sent."""
    with translated(secrets=credentials.secrets()):
        version = negotiate_version(credentials, context, timeout)
        return _new_stub(credentials, context, version, timeout=timeout, pool_size=pool_size)


def _new_stub(
    credentials: Credentials,
    context: ssl.SSLContext,
    version: str,
    *,
    timeout: float,
    pool_size: int,
) -> Any:
    soap_memory.install()  # answers freed when unused, not at a full collection
    return _stub_adapter(
        host=credentials.host,
        port=credentials.port,
        path=credentials.path,
        version=version,
        sslContext=context,
        httpConnectionTimeout=timeout,
        connectionPoolTimeout=CONNECTION_POOL_IDLE_SECONDS,
        poolSize=pool_size,
    )


def sibling_stub(
    stub: Any, credentials: Credentials, context: ssl.SSLContext, *, timeout: float
) -> Any:
    """A stub on `stub`'s session (its cookie) with a socket timeout of its own, for a long
    poll: one connection, the same API version, no call sent."""
    sibling = _new_stub(credentials, context, stub.version, timeout=timeout, pool_size=1)
    sibling.cookie = stub.cookie
    return sibling


def login(stub: Any, credentials: Credentials) -> Connection:
    """RetrieveServiceContent + SessionManager.Login on `stub` (a new session cookie)."""
    with translated(secrets=credentials.secrets()):
        content = _service_instance("ServiceInstance", stub).RetrieveContent()
        content.sessionManager.Login(credentials.username, credentials.password, None)
    return Connection(stub=stub, content=content)


def logout(connection: Connection) -> None:
    """Best effort: the session may already be gone (expired, vCenter down)."""
    try:
        connection.content.sessionManager.Logout()
    except Exception:  # nothing useful to do if logout fails
        return
    finally:
        connection.stub.DropConnections()


def session_is_active(connection: Connection) -> bool:
    """`SessionManager.currentSession` is unset when the session is gone (vSphere API ref.)."""
    with translated():
        return connection.content.sessionManager.currentSession is not None
