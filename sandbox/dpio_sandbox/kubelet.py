"""The node's Kubernetes side: a kubelet and a kube-scheduler, built from ``sandbox/node`` (the same
Kubernetes release as the control plane, cached like it), each with a client certificate of its
own: the kubelet's ``system:node:<name>`` in ``system:nodes`` (Node authorization and the
NodeRestriction admission plugin judge it), the scheduler's ``system:kube-scheduler``.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

from dpio_sandbox import certs, containerd, procs
from dpio_sandbox.build import build_go
from dpio_sandbox.controlplane import ControlPlane, version_ldflags, write_kubeconfig
from dpio_sandbox.paths import NODE_MODULE

_COMMANDS = ("kubelet", "kube-scheduler")


def binaries() -> Path:
    """Bin dir of kubelet and kube-scheduler, built on first use or when sandbox/node changes."""
    k8s, ldflags = version_ldflags(NODE_MODULE)
    return build_go(
        "kubelet",  # not "kubernetes-…": build._prune of the control plane would match it
        NODE_MODULE,
        {c: f"k8s.io/kubernetes/cmd/{c}" for c in _COMMANDS},
        f"-s -w {ldflags}",
        k8s,
    )


def start_kubelet(plane: ControlPlane, bin_dir: Path, node_name: str, node_ip: str) -> int:
    """The kubelet of ``plane``'s state directory (started unless running); its pid, once its
    Node is registered."""
    state_dir = plane.state_dir
    running = procs.running(state_dir, "kubelet")
    if running is not None:
        return running
    base = state_dir / "node"
    pki = state_dir / "pki"
    ca = certs.ensure_ca(pki)
    client = certs.issue_client_cert(
        ca,
        "kubelet-client",
        pki,
        common_name=f"system:node:{node_name}",
        organizations=["system:nodes"],
    )
    serving = certs.issue_serving_cert(ca, "kubelet", pki, dns_names=[node_name], ips=[node_ip])
    kubeconfig = write_kubeconfig(base / "kubelet.kubeconfig", plane.server, ca.cert, client)
    healthz = procs.free_port()
    conf = base / "kubelet.json"  # JSON is YAML
    conf.write_text(
        json.dumps(
            kubelet_config(
                state_dir,
                serving,
                ca.cert,
                node_ip=node_ip,
                port=procs.free_port(),
                healthz=healthz,
            ),
            indent=2,
        )
    )
    argv = [
        str(bin_dir / "kubelet"),
        f"--config={conf}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={base / 'kubelet'}",
        f"--hostname-override={node_name}",
        f"--node-ip={node_ip}",
        "--v=1",
    ]
    pid = procs.start("kubelet", argv, state_dir)
    procs.wait_for_url(state_dir, "kubelet", pid, f"http://127.0.0.1:{healthz}/healthz")
    return pid


def kubelet_config(
    state_dir: Path,
    serving: certs.KeyPair,
    ca_file: Path,
    *,
    node_ip: str,
    port: int,
    healthz: int,
) -> dict[str, Any]:
    """The KubeletConfiguration: cgroupfs on cgroup v1 (no systemd), swap tolerated, the
    imported images never garbage-collected (nothing can pull them again), client certificates
    of the sandbox CA (the API server's, for ``kubectl logs``) authenticated, the rest asked of
    the API server (webhook), no anonymous access; every path under the state directory."""
    base = state_dir / "node"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node_ip,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz,
        "tlsCertFile": str(serving.cert),
        "tlsPrivateKeyFile": str(serving.key),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "failCgroupV1": False,
        "containerRuntimeEndpoint": f"unix://{containerd.socket(state_dir)}",
        "podLogsDir": str(base / "pod-logs"),
        "volumePluginDir": str(base / "volume-plugins"),
        "resolvConf": "/etc/resolv.conf",
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "serializeImagePulls": False,
        "registerNode": True,
    }


def start_scheduler(plane: ControlPlane, bin_dir: Path) -> int:
    """kube-scheduler (started unless running), as ``system:kube-scheduler``; its pid."""
    state_dir = plane.state_dir
    running = procs.running(state_dir, "kube-scheduler")
    if running is not None:
        return running
    pki = state_dir / "pki"
    ca = certs.ensure_ca(pki)
    client = certs.issue_client_cert(
        ca, "scheduler-client", pki, common_name="system:kube-scheduler"
    )
    config = write_kubeconfig(
        state_dir / "node" / "scheduler.kubeconfig", plane.server, ca.cert, client
    )
    tls = certs.issue_serving_cert(ca, "kube-scheduler", pki)
    port = procs.free_port()
    argv = [
        str(bin_dir / "kube-scheduler"),
        f"--kubeconfig={config}",
        f"--authentication-kubeconfig={config}",
        f"--authorization-kubeconfig={config}",
        "--authentication-skip-lookup=true",
        "--leader-elect=false",
        f"--secure-port={port}",
        "--bind-address=127.0.0.1",
        f"--tls-cert-file={tls.cert}",
        f"--tls-private-key-file={tls.key}",
    ]
    pid = procs.start("kube-scheduler", argv, state_dir)
    context = ssl.create_default_context(cafile=str(ca.cert))
    procs.wait_for_url(
        state_dir, "kube-scheduler", pid, f"https://127.0.0.1:{port}/healthz", context=context
    )
    return pid
