"""Who the operator is to the API server, and where that server is: the pod's ServiceAccount, or
a kubeconfig, read the way kubectl reads them. No Kubernetes client library: the operator's
calls go through `dpio.kube.rest` (aiohttp, which kopf brings), so the kubernetes package is
never imported in the operator's process (docs/benchmarks.md, finding 36).

Supported, as client-go defines them (k8s.io/client-go/tools/clientcmd/api/v1/types.go):
clusters' `server`, `certificate-authority(-data)`, `insecure-skip-tls-verify`; users' `token`,
`tokenFile`, `client-certificate(-data)` with `client-key(-data)`, and `exec` credential plugins
(client.authentication.k8s.io ExecCredential, a token, renewed before it expires); several
files in $KUBECONFIG, merged as kubectl does (the first file to name an entry wins). Anything
else a kubeconfig may hold that would change who we are or where we connect (basic auth,
`auth-provider`, `tls-server-name`, `proxy-url`, an exec plugin's client certificate) is refused
with a message, never ignored.

In a pod: `KUBERNETES_SERVICE_HOST`/`_PORT` and the projected token, which the kubelet renews;
it is read again at most every minute, as client-go does.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dpio.kube.exec_plugin import ConfigError, ExecPlugin, parse_exec, run_exec_plugin

__all__ = [
    "ConfigError",
    "Credentials",
    "ExecPlugin",
    "from_kubeconfig",
    "in_cluster",
    "kubeconfig_paths",
    "load",
]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: A token file is read again after this long (client-go: a minute).
TOKEN_FILE_TTL = 60.0
#: An exec plugin's token is renewed this long before it expires.
EXEC_RENEW_MARGIN = datetime.timedelta(seconds=60)


@dataclass(frozen=True)
class Credentials:
    """One API server and one identity. Exactly one of `token`, `token_file`, `exec_plugin` or a
    client certificate identifies the user (none: anonymous)."""

    server: str
    ca_file: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    token: str | None = None
    token_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    exec_plugin: ExecPlugin | None = None
    #: The context's namespace (kubeconfig) or the pod's own.
    namespace: str | None = None
    #: Where they came from, for messages ("in-cluster", or the kubeconfig and context).
    source: str = ""
    _tokens: _Tokens = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tokens", _Tokens(self))

    def authorization(self) -> str | None:
        """The `Authorization` header's value now (a token file or plugin may renew it)."""
        token = self._tokens.current()
        return f"Bearer {token}" if token else None

    def token_expired(self) -> None:
        """The API server said 401: read the token file or run the plugin again next time."""
        self._tokens.forget()

    def token_expires(self) -> datetime.datetime | None:
        """When the current token stops being valid, if the plugin said."""
        return self._tokens.expires

    def ssl_context(self) -> ssl.SSLContext | None:
        """For an https server: its CA (or the system's), and our client certificate if any."""
        if not self.server.startswith("https://"):
            return None
        context = ssl.create_default_context(
            cafile=self.ca_file, cadata=self.ca_data.decode() if self.ca_data else None
        )
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file or self.cert_data:
            _load_client_cert(context, self)
        return context


def _load_client_cert(context: ssl.SSLContext, creds: Credentials) -> None:
    """`load_cert_chain` reads files only: inline data goes through private temporary files,
    removed at once."""
    if creds.cert_file and creds.key_file:
        context.load_cert_chain(creds.cert_file, creds.key_file)
        return
    with tempfile.TemporaryDirectory(prefix="dpio-kube-") as tmp:
        cert = creds.cert_file or _private_file(Path(tmp, "cert.pem"), creds.cert_data or b"")
        key = creds.key_file or _private_file(Path(tmp, "key.pem"), creds.key_data or b"")
        context.load_cert_chain(cert, key)


def _private_file(path: Path, data: bytes) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return str(path)


class _Tokens:
    """The bearer token of one Credentials, renewed from its file or plugin when due."""

    def __init__(self, creds: Credentials, clock: Callable[[], float] = time.monotonic) -> None:
        self._creds = creds
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._read_at = 0.0
        self.expires: datetime.datetime | None = None

    def forget(self) -> None:
        with self._lock:
            self._token, self.expires = None, None

    def current(self) -> str | None:
        creds = self._creds
        if creds.token_file is None and creds.exec_plugin is None:
            return creds.token
        with self._lock:
            if self._due():
                self._token, self.expires = self._fetch()
                self._read_at = self._clock()
            return self._token

    def _due(self) -> bool:
        if self._token is None:
            return True
        if self._creds.token_file is not None:
            return self._clock() - self._read_at >= TOKEN_FILE_TTL
        if self.expires is None:
            return False  # a plugin token without an expiry lasts until a 401
        return datetime.datetime.now(datetime.UTC) >= self.expires - EXEC_RENEW_MARGIN

    def _fetch(self) -> tuple[str | None, datetime.datetime | None]:
        creds = self._creds
        if creds.token_file is not None:
            try:
                return Path(creds.token_file).read_text().strip() or None, None
            except OSError as err:
                raise ConfigError(f"cannot read the token file {creds.token_file}: {err}") from err
        assert creds.exec_plugin is not None
        return run_exec_plugin(creds.exec_plugin)


def in_cluster(
    env: Mapping[str, str] = os.environ, directory: Path = SERVICE_ACCOUNT_DIR
) -> Credentials | None:
    """The pod's ServiceAccount, or None outside a pod."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    token = directory / "token"
    if not host or not port or not token.exists():
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6
    namespace_file = directory / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.exists() else None
    ca = directory / "ca.crt"
    return Credentials(
        server=f"https://{host}:{port}",
        ca_file=str(ca) if ca.exists() else None,
        token_file=str(token),
        namespace=namespace,
        source="in-cluster",
    )


def kubeconfig_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    """$KUBECONFIG (a list, as kubectl reads it), else ~/.kube/config."""
    listed = env.get("KUBECONFIG", "")
    if listed:
        return [Path(p) for p in listed.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def from_kubeconfig(paths: Sequence[Path], context: str | None = None) -> Credentials:
    """The context `context` (else the current one) of these kubeconfig files. Raises
    ConfigError."""
    merged: dict[str, dict[str, tuple[dict[str, Any], Path]]] = {
        "clusters": {},
        "users": {},
        "contexts": {},
    }
    current = ""
    read = [p for p in paths if p.exists()]
    if not read:
        raise ConfigError(f"no kubeconfig at {os.pathsep.join(str(p) for p in paths)}")
    for path in read:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read kubeconfig {path}: {err}") from err
        if not isinstance(doc, dict):
            raise ConfigError(f"kubeconfig {path} is not a mapping")
        current = current or str(doc.get("current-context") or "")
        for section, entries in merged.items():
            key = section[:-1]  # clusters -> cluster
            for entry in doc.get(section) or ():
                if (
                    isinstance(entry, dict)
                    and entry.get("name")
                    and isinstance(entry.get(key), dict)
                ):
                    entries.setdefault(str(entry["name"]), (entry[key], path))
    name = context or current
    if not name:
        raise ConfigError("the kubeconfig names no current context (and none was given)")
    if name not in merged["contexts"]:
        raise ConfigError(f"the kubeconfig has no context {name!r}")
    ctx, _ = merged["contexts"][name]
    cluster_name, user_name = str(ctx.get("cluster") or ""), str(ctx.get("user") or "")
    if cluster_name not in merged["clusters"]:
        raise ConfigError(f"context {name!r}: no cluster {cluster_name!r} in the kubeconfig")
    cluster, cluster_file = merged["clusters"][cluster_name]
    user, user_file = merged["users"].get(user_name, ({}, cluster_file))
    where = f"kubeconfig {read[0]}, context {name}"
    return Credentials(
        **_cluster_fields(cluster, cluster_file.parent, where),
        **_user_fields(user, user_file.parent, where),
        namespace=str(ctx["namespace"]) if ctx.get("namespace") else None,
        source=where,
    )


def _cluster_fields(cluster: Mapping[str, Any], base: Path, where: str) -> dict[str, Any]:
    for unsupported in ("tls-server-name", "proxy-url"):
        if cluster.get(unsupported):
            raise ConfigError(f"{where}: the cluster's {unsupported} is not supported")
    server = str(cluster.get("server") or "")
    if not server.startswith(("https://", "http://")):
        raise ConfigError(f"{where}: the cluster has no https:// server")
    return {
        "server": server.rstrip("/"),
        "ca_file": _path(cluster.get("certificate-authority"), base),
        "ca_data": _data(cluster.get("certificate-authority-data"), where),
        "insecure": bool(cluster.get("insecure-skip-tls-verify")),
    }


def _user_fields(user: Mapping[str, Any], base: Path, where: str) -> dict[str, Any]:
    if user.get("username") or user.get("password"):
        raise ConfigError(f"{where}: basic authentication (username/password) is not supported")
    if user.get("auth-provider"):
        raise ConfigError(f"{where}: auth-provider is not supported; use an exec plugin")
    fields: dict[str, Any] = {
        "token": str(user["token"]) if user.get("token") else None,
        "token_file": None if user.get("token") else _path(user.get("tokenFile"), base),
        "cert_file": _path(user.get("client-certificate"), base),
        "key_file": _path(user.get("client-key"), base),
        "cert_data": _data(user.get("client-certificate-data"), where),
        "key_data": _data(user.get("client-key-data"), where),
        "exec_plugin": parse_exec(user.get("exec"), base, where),
    }
    has_cert = fields["cert_file"] or fields["cert_data"]
    has_key = fields["key_file"] or fields["key_data"]
    if bool(has_cert) != bool(has_key):
        raise ConfigError(f"{where}: a client certificate needs its key, and a key its certificate")
    return fields


def _path(value: Any, base: Path) -> str | None:
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else base / path)


def _data(value: Any, where: str) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as err:
        raise ConfigError(f"{where}: a *-data field is not base64") from err


def load(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    prefer_in_cluster: bool = True,
    env: Mapping[str, str] = os.environ,
    service_account: Path = SERVICE_ACCOUNT_DIR,
) -> Credentials:
    """The operator's (in a pod: the ServiceAccount; else the kubeconfig), or the CLI's
    (`prefer_in_cluster=False`: a kubeconfig named or found first, as kubectl). Raises
    ConfigError."""
    if kubeconfig or context:
        paths = [Path(kubeconfig)] if kubeconfig else kubeconfig_paths(env)
        return from_kubeconfig(paths, context)
    pod = in_cluster(env, service_account)
    if pod is not None and prefer_in_cluster:
        return pod
    paths = kubeconfig_paths(env)
    if pod is not None and not any(p.exists() for p in paths):
        return pod
    try:
        return from_kubeconfig(paths)
    except ConfigError as err:
        raise ConfigError(f"no Kubernetes configuration: not in a pod, and {err}") from err
