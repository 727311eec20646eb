"""A local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager on loopback.

``start(state_dir)`` builds the binaries if needed (cached, see build.py), starts what is not
already running and returns once the API server is ready; ``stop(state_dir)`` ends it all.
State layout: ``pki/``, ``etcd/``, ``logs/``, ``pids/``, ``kubeconfig``, ``controlplane.json``.
"""

from __future__ import annotations

import base64
import json
import ssl
from dataclasses import asdict, dataclass
from pathlib import Path

from dpio_sandbox import certs, procs
from dpio_sandbox.build import build_go, module_release
from dpio_sandbox.paths import CONTROLPLANE_MODULE, ETCD_MODULE

_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")
_SERVICE_CIDR = "10.0.0.0/24"
_ISSUER = "https://kubernetes.default.svc"
Ports = dict[str, int]
# What namespace deletion, ServiceAccounts and their tokens, and the aggregated default
# ClusterRoles (admin, edit, view) need; nothing that manages pods or nodes, which we don't run.
_CONTROLLERS = (
    "namespace-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
)
# With a node (``make sandbox NODE=1``): what a Deployment's pods need to exist and to be
# scheduled (the node lifecycle controller lifts the node's not-ready taint), and the
# garbage collection of the pods of deleted nodes.
_NODE_CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "node-lifecycle-controller",
    "pod-garbage-collector-controller",
)


@dataclass(frozen=True)
class ControlPlane:
    """A running control plane; ``kubeconfig`` is the admin's (O=system:masters)."""

    state_dir: Path
    kubeconfig: Path
    server: str
    ca_file: Path
    kubectl: Path
    pids: dict[str, int]
    ports: dict[str, int]
    #: The node's address (its bridge's) when started for a node: the API server then listens on
    #: every address, names it in its certificate, and authorizes kubelets (Node,RBAC).
    node_ip: str | None = None


def version_ldflags(module_dir: Path) -> tuple[str, str]:
    """(Kubernetes version, the ``-X`` flags stamping it) for the binaries of ``module_dir``."""
    k8s, released = module_release(module_dir, "k8s.io/kubernetes")
    major, minor = k8s.lstrip("v").split(".")[:2]
    # What hack/lib/version.sh stamps, so `kubectl version` reports the release on both sides.
    # The release commit is not recorded by the module proxy, so gitCommit stays empty.
    stamp = {
        "gitVersion": k8s,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": released,
    }
    ldflags = " ".join(
        f"-X k8s.io/{pkg}.{var}={value}"
        for pkg in ("client-go/pkg/version", "component-base/version")
        for var, value in stamp.items()
    )
    return k8s, ldflags


def binaries() -> tuple[Path, Path]:
    """Bin dirs of (Kubernetes, etcd), built on first use or when a go.mod changes."""
    k8s, ldflags = version_ldflags(CONTROLPLANE_MODULE)
    commands = ("kube-apiserver", "kube-controller-manager", "kubectl")
    k8s_bin = build_go(
        "kubernetes",
        CONTROLPLANE_MODULE,
        {c: f"k8s.io/kubernetes/cmd/{c}" for c in commands},
        f"-s -w {ldflags}",
        k8s,
    )
    etcd, _ = module_release(ETCD_MODULE, "go.etcd.io/etcd/server/v3")
    etcd_bin = build_go("etcd", ETCD_MODULE, {"etcd": "go.etcd.io/etcd/server/v3"}, "-s -w", etcd)
    return k8s_bin, etcd_bin


def start(state_dir: Path, *, node_ip: str | None = None) -> ControlPlane:
    """Start (or reuse, if already running and ready) the control plane of ``state_dir``;
    ``node_ip``: ready for a node at that address (a running one without it is restarted)."""
    state_dir = state_dir.resolve()
    current = _load(state_dir)
    if current is not None and current.node_ip == node_ip and _healthy(current):
        return current
    stop(state_dir)  # leftovers of a half-dead run
    k8s_bin, etcd_bin = binaries()
    try:
        plane = _start_all(state_dir, k8s_bin, etcd_bin, node_ip)
    except BaseException:
        stop(state_dir)  # no half-started control plane; logs stay for the error's reader
        raise
    (state_dir / "controlplane.json").write_text(json.dumps(asdict(plane), default=str, indent=2))
    return plane


def _start_all(state_dir: Path, k8s_bin: Path, etcd_bin: Path, node_ip: str | None) -> ControlPlane:
    pki = state_dir / "pki"
    ca = certs.ensure_ca(pki)
    ports = {name: procs.free_port() for name in (*_COMPONENTS, "etcd-peer")}
    server = f"https://127.0.0.1:{ports['kube-apiserver']}"
    pids = {
        "etcd": _start_etcd(state_dir, etcd_bin, ca, ports),
        "kube-apiserver": _start_apiserver(state_dir, k8s_bin, ca, ports, node_ip),
    }
    admin = certs.issue_client_cert(
        ca, "admin", pki, common_name="admin", organizations=["system:masters"]
    )
    kubeconfig = write_kubeconfig(state_dir / "kubeconfig", server, ca.cert, admin)
    controllers = (*_CONTROLLERS, *(_NODE_CONTROLLERS if node_ip else ()))
    pids["kube-controller-manager"] = _start_controller_manager(
        state_dir, k8s_bin, ca, ports, controllers
    )
    kubectl = k8s_bin / "kubectl"
    return ControlPlane(state_dir, kubeconfig, server, ca.cert, kubectl, pids, ports, node_ip)


def stop(state_dir: Path) -> None:
    """Stop every component of ``state_dir``, check its ports are closed; certs and data stay."""
    state_dir = state_dir.resolve()
    plane = _load(state_dir)
    for name in reversed(_COMPONENTS):
        procs.stop(state_dir, name)
    if plane is not None:
        procs.wait_closed(list(plane.ports.values()))
    (state_dir / "controlplane.json").unlink(missing_ok=True)


def _start_etcd(state_dir: Path, bin_dir: Path, ca: certs.KeyPair, ports: Ports) -> int:
    tls = certs.issue_serving_cert(ca, "etcd", state_dir / "pki")
    url = f"https://127.0.0.1:{ports['etcd']}"
    # Single member: the peer URL is never dialled, but must not collide with another etcd.
    peer = f"http://127.0.0.1:{ports['etcd-peer']}"
    return _launch(
        state_dir,
        "etcd",
        ca,
        f"{url}/health",
        [
            str(bin_dir / "etcd"),
            "--name=sandbox",
            f"--data-dir={state_dir / 'etcd'}",
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=sandbox={peer}",
            f"--cert-file={tls.cert}",
            f"--key-file={tls.key}",
            "--unsafe-no-fsync",
            "--log-level=warn",  # a throwaway sandbox: speed over durability
        ],
    )


def _start_apiserver(
    state_dir: Path, bin_dir: Path, ca: certs.KeyPair, ports: Ports, node_ip: str | None
) -> int:
    pki = state_dir / "pki"
    sa = certs.ensure_service_account_key(pki)
    tls = certs.issue_serving_cert(
        ca,
        "kube-apiserver",
        pki,
        ips=["10.0.0.1", *([node_ip] if node_ip else [])],  # 10.0.0.1: first of _SERVICE_CIDR
        dns_names=["kubernetes", "kubernetes.default", "kubernetes.default.svc"],
    )
    port = ports["kube-apiserver"]
    return _launch(
        state_dir,
        "kube-apiserver",
        ca,
        f"https://127.0.0.1:{port}/readyz",
        [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers=https://127.0.0.1:{ports['etcd']}",
            f"--etcd-cafile={ca.cert}",
            f"--secure-port={port}",
            # With a node, its pods reach the API server at the node's bridge address.
            f"--bind-address={'0.0.0.0' if node_ip else '127.0.0.1'}",
            "--advertise-address=127.0.0.1",
            f"--cert-dir={pki}",
            f"--tls-cert-file={tls.cert}",
            f"--tls-private-key-file={tls.key}",
            f"--client-ca-file={ca.cert}",
            *(_node_flags(pki, ca) if node_ip else ["--authorization-mode=RBAC"]),
            f"--service-account-issuer={_ISSUER}",
            f"--api-audiences={_ISSUER}",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            f"--service-cluster-ip-range={_SERVICE_CIDR}",
            "--profiling=false",
        ],
        timeout=120,
    )


def _node_flags(pki: Path, ca: certs.KeyPair) -> list[str]:
    """What a kubelet needs of the API server: Node authorization and NodeRestriction for its
    own credentials; for ``kubectl logs``/``exec``, a client certificate the kubelet accepts
    (O=system:masters: the kubelet's webhook authorization asks this API server) and the
    kubelet's serving certificate checked against the sandbox CA, at the node's InternalIP."""
    client = certs.issue_client_cert(
        ca,
        "kube-apiserver-kubelet-client",
        pki,
        common_name="kube-apiserver-kubelet-client",
        organizations=["system:masters"],
    )
    return [
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--kubelet-client-certificate={client.cert}",
        f"--kubelet-client-key={client.key}",
        f"--kubelet-certificate-authority={ca.cert}",
        "--kubelet-preferred-address-types=InternalIP",
    ]


def _start_controller_manager(
    state_dir: Path, bin_dir: Path, ca: certs.KeyPair, ports: Ports, controllers: tuple[str, ...]
) -> int:
    pki = state_dir / "pki"
    client = certs.issue_client_cert(
        ca, "kcm-client", pki, common_name="system:kube-controller-manager"
    )
    server = f"https://127.0.0.1:{ports['kube-apiserver']}"
    config = write_kubeconfig(state_dir / "kcm.kubeconfig", server, ca.cert, client)
    tls = certs.issue_serving_cert(ca, "kube-controller-manager", pki)
    port = ports["kube-controller-manager"]
    return _launch(
        state_dir,
        "kube-controller-manager",
        ca,
        f"https://127.0.0.1:{port}/healthz",
        [
            str(bin_dir / "kube-controller-manager"),
            f"--kubeconfig={config}",
            f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            # No front proxy (requestheader CA) in the sandbox: don't look for one,
            # nor log its absence.
            "--authentication-skip-lookup=true",
            f"--controllers={','.join(controllers)}",
            "--leader-elect=false",
            # Each controller acts as its own ServiceAccount, with the bootstrap RBAC role
            # made for it.
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={ca.cert}",
            f"--secure-port={port}",
            "--bind-address=127.0.0.1",
            f"--tls-cert-file={tls.cert}",
            f"--tls-private-key-file={tls.key}",
        ],
    )


def _launch(
    state_dir: Path,
    name: str,
    ca: certs.KeyPair,
    health_url: str,
    argv: list[str],
    *,
    timeout: float = 60,
) -> int:
    pid = procs.start(name, argv, state_dir)
    procs.wait_for_url(state_dir, name, pid, health_url, timeout=timeout, context=_https(ca.cert))
    return pid


def write_kubeconfig(path: Path, server: str, ca_file: Path, user: certs.KeyPair) -> Path:
    """A single-context kubeconfig with the credentials inlined, so it can be copied anywhere."""

    def b64(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "sandbox",
        "clusters": [
            {
                "name": "sandbox",
                "cluster": {"server": server, "certificate-authority-data": b64(ca_file)},
            }
        ],
        "users": [
            {
                "name": "sandbox",
                "user": {
                    "client-certificate-data": b64(user.cert),
                    "client-key-data": b64(user.key),
                },
            }
        ],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox"}}],
    }
    # JSON is YAML, so kubectl and the Python client read it without a YAML writer here.
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
    return path


def _https(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def _load(state_dir: Path) -> ControlPlane | None:
    try:
        raw = json.loads((state_dir / "controlplane.json").read_text())
    except (OSError, ValueError):
        return None
    paths = {k: Path(raw[k]) for k in ("state_dir", "kubeconfig", "ca_file", "kubectl")}
    return ControlPlane(
        **paths,
        server=raw["server"],
        pids=raw["pids"],
        ports=raw["ports"],
        node_ip=raw.get("node_ip"),
    )


def _healthy(plane: ControlPlane) -> bool:
    if any(procs.running(plane.state_dir, c) != plane.pids.get(c) for c in _COMPONENTS):
        return False
    try:
        procs.wait_for_url(
            plane.state_dir,
            "kube-apiserver",
            plane.pids["kube-apiserver"],
            f"{plane.server}/readyz",
            timeout=5,
            context=_https(plane.ca_file),
        )
    except procs.ProcessError:
        return False
    return True
