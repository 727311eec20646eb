"""``make sandbox NODE=1``: a real node next to the sandbox's control plane, for the chart.

A kubelet and a kube-scheduler of the control plane's Kubernetes release (``kubelet``),
Debian's containerd with runc and the bridge CNI (``containerd``), the pause image built from
Kubernetes' ``pause.c`` and the operator image of ``make image`` imported into it (nothing is
pulled), the node's bridge (``nodehost``). Pods reach the API server and the simulator at the
node's address (the bridge's); ``<state>/node/values.yaml`` holds what the chart needs for
that (the image, the API server's address for the operator's in-cluster configuration, as no
kube-proxy runs).

Needs root (mounts, a bridge, cgroups, containers); ``unavailable()`` says why not where it
cannot run. ``stop`` (``make sandbox-down``) leaves no process, mount, network namespace,
bridge or cgroup behind.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from dpio_sandbox import containerd, kubelet, nodehost, podman, procs
from dpio_sandbox.controlplane import ControlPlane
from dpio_sandbox.image import IMAGE, VERSION

NAME = "dpio-node"
NODE_IP = nodehost.NODE_IP
NodeUnavailableError = nodehost.NodeUnavailableError


@dataclass(frozen=True)
class Node:
    """A running node: its name and address, the images it has, the chart's values for it."""

    name: str
    ip: str
    images: tuple[str, ...]
    values: Path

    @property
    def has_operator_image(self) -> bool:
        return IMAGE in self.images


def unavailable() -> str | None:
    """Why no node can run here (None: it can)."""
    if sys.platform != "linux":
        return "the node runs on Linux only"
    if os.geteuid() != 0:
        return "the node needs root (containerd, mounts, a bridge, cgroups)"
    missing = containerd.missing_tools() + podman.missing_tools(("podman",))
    if missing:
        return (
            f"{', '.join(missing)} not installed (sandbox/node/install-tools.sh and "
            "sandbox/image/install-tools.sh install them with apt-get; make cluster runs both)"
        )
    return None


def prepare(state_dir: Path) -> None:
    """What must exist before the control plane starts for a node: the node's bridge (the API
    server's certificate and the simulator name its address)."""
    reason = unavailable()
    if reason is not None:
        raise NodeUnavailableError(reason)
    nodehost.bridge_up(state_dir)


def start(plane: ControlPlane, *, operator_image: str = IMAGE) -> Node:
    """Start (or reuse) the node of ``plane``'s state directory; ``prepare`` first. Imports
    ``operator_image`` from podman when podman has it (``make image``)."""
    try:
        return _start(plane, operator_image)
    except BaseException:
        stop(plane.state_dir)  # no half-started node; the logs stay for the error's reader
        raise


def _start(plane: ControlPlane, operator_image: str) -> Node:
    state_dir = plane.state_dir
    bin_dir = kubelet.binaries()
    _say("node: pause image (built from Kubernetes' pause.c on first use)")
    pause = containerd.pause_image()
    containerd.start(state_dir, pause)
    containerd.import_image(state_dir, pause)
    images = [pause]
    _say(f"node: importing {operator_image} into containerd (if podman has it)")
    if containerd.import_image(state_dir, operator_image):
        images.append(operator_image)
    else:
        _say(f"node: no {operator_image} in podman: make image, then make sandbox NODE=1 again")
    _stop_if_stale(plane)
    kubelet.start_scheduler(plane, bin_dir)
    since = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    if procs.running(plane.state_dir, "kubelet") is not None:
        since = datetime.datetime.min.replace(tzinfo=datetime.UTC)  # running: its status holds
    kubelet.start_kubelet(plane, bin_dir, NAME, NODE_IP)
    _wait_ready(plane, since, timeout=120)
    values = state_dir / "node" / "values.yaml"
    values.write_text(yaml.safe_dump(chart_values(plane, operator_image), sort_keys=False))
    return Node(NAME, NODE_IP, tuple(images), values)


def chart_values(plane: ControlPlane, operator_image: str = IMAGE) -> dict[str, object]:
    """The chart's values for this node: the imported image (never pulled), and the API server
    at the node's address, as no kube-proxy makes the ``kubernetes`` Service reachable."""
    repository, tag = operator_image.rsplit(":", 1)
    port = plane.ports["kube-apiserver"]
    return {
        "image": {"repository": repository, "tag": tag or VERSION, "pullPolicy": "Never"},
        "operator": {
            "extraEnv": [
                {"name": "KUBERNETES_SERVICE_HOST", "value": NODE_IP},
                {"name": "KUBERNETES_SERVICE_PORT", "value": str(port)},
            ]
        },
    }


def stop(state_dir: Path) -> list[str]:
    """Stop the node of ``state_dir`` and remove what it left on the machine; what was found."""
    state_dir = state_dir.resolve()
    if not (state_dir / "node").exists():
        return []
    for name in ("kubelet", "kube-scheduler"):
        procs.stop(state_dir, name)
    containerd.stop(state_dir)
    return nodehost.cleanup(state_dir, containerd.socket(state_dir))


def _stop_if_stale(plane: ControlPlane) -> None:
    """A kubelet and scheduler of an earlier control plane (another port) are restarted."""
    try:
        config = json.loads((plane.state_dir / "node" / "kubelet.kubeconfig").read_text())
        server = config["clusters"][0]["cluster"]["server"]
    except (OSError, ValueError, KeyError, IndexError):
        server = None
    if server != plane.server:
        for name in ("kubelet", "kube-scheduler"):
            procs.stop(plane.state_dir, name)


def _wait_ready(plane: ControlPlane, since: datetime.datetime, timeout: float) -> None:
    """Until the Node reports Ready, in a heartbeat from ``since`` on (not a status the last
    kubelet left in etcd), and carries no taint (the node lifecycle controller lifts the
    not-ready one), failing fast if the kubelet dies."""

    def ready() -> bool:
        argv = [str(plane.kubectl), f"--kubeconfig={plane.kubeconfig}", "get", "node", NAME]
        proc = subprocess.run(
            [*argv, "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return False
        body = json.loads(proc.stdout)
        conditions = {c["type"]: c for c in body["status"].get("conditions", [])}
        ready = conditions.get("Ready", {})
        beat = datetime.datetime.fromisoformat(ready.get("lastHeartbeatTime", "1970-01-01T00:00Z"))
        return ready.get("status") == "True" and beat >= since and not body["spec"].get("taints")

    pid = procs.running(plane.state_dir, "kubelet")
    assert pid is not None
    started = time.monotonic()
    procs.wait_until(
        plane.state_dir, "kubelet", pid, timeout=timeout, what=f"node/{NAME} Ready", ready=ready
    )
    _say(f"node: {NAME} Ready after {time.monotonic() - started:.0f}s")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
