"""The node's container runtime: Debian's containerd with a configuration, socket and directories of
its own under ``<state>/node/containerd`` (a containerd of the machine, if any, is left alone),
runc, and the bridge CNI; images imported from podman (``podman save`` + ``ctr images import``),
nothing pulled.

What the configuration settles, each found on the machines this project is developed on:

- ``restrict_oom_score_adj = true``: the kubelet asks for OOM scores below the one the sandbox
  itself runs with, which an unprivileged container host (a VM's init, a CI runner) refuses;
  containerd then raises them to the lowest allowed.
- runc with ``SystemdCgroup = false`` (and the kubelet's ``cgroupDriver: cgroupfs``): systemd is
  not PID 1 here, and crun refuses cgroup v1 hierarchies mounted next to a cgroup v2 one.
- ``netns_mounts_under_state_dir``: the pods' network namespaces under the state directory, not
  /var/run/netns, so that ``make sandbox-down`` finds every one of them.
- The pause image ``localhost/dpio-pause``: Kubernetes' own ``pause.c`` (from the Go module
  cache, where building the kubelet put it), compiled static into an image FROM scratch.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from dpio_sandbox import nodehost, podman, procs
from dpio_sandbox.build import BuildError
from dpio_sandbox.paths import NODE_MODULE, cache_root

CNI_BIN = Path("/usr/lib/cni")
TOOLS = ("containerd", "ctr", "runc", "gcc")
NAMESPACE = "k8s.io"  # the CRI plugin's


def directory(state_dir: Path) -> Path:
    return state_dir / "node" / "containerd"


def socket(state_dir: Path) -> Path:
    return directory(state_dir) / "containerd.sock"


def missing_tools() -> list[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return [*missing, *([] if (CNI_BIN / "bridge").exists() else [f"{CNI_BIN}/bridge"])]


def config(state_dir: Path, pause_image: str) -> str:
    """containerd's config.toml (version 2, containerd 1.6)."""
    base = directory(state_dir)
    cri = '[plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{socket(state_dir)}"

[ttrpc]
  address = "{socket(state_dir)}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"

{cri}]
  sandbox_image = "{pause_image}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{base}/runc"

{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{cni_dir(state_dir)}"
  max_conf_num = 1
"""


def cni_dir(state_dir: Path) -> Path:
    return state_dir / "node" / "cni"


def cni_config(state_dir: Path) -> str:
    """The bridge network: pods on ``nodehost.SUBNET``, the node's address their gateway; no
    masquerading (pods reach the node's address, nothing beyond it)."""
    conflist = {
        "cniVersion": "1.0.0",
        "name": nodehost.NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": nodehost.BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": nodehost.SUBNET, "gateway": nodehost.NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(state_dir / "node" / "ipam"),
                },
            },
            {"type": "loopback"},
        ],
    }
    return json.dumps(conflist, indent=2)


def start(state_dir: Path, pause_image: str) -> int:
    """containerd of ``state_dir`` (started unless running); its pid."""
    running = procs.running(state_dir, "containerd")
    if running is not None:
        return running
    base = directory(state_dir)
    base.mkdir(parents=True, exist_ok=True)
    conf = base / "config.toml"
    conf.write_text(config(state_dir, pause_image))
    cni = cni_dir(state_dir)
    cni.mkdir(parents=True, exist_ok=True)
    (cni / "10-dpio-sandbox.conflist").write_text(cni_config(state_dir))
    pid = procs.start("containerd", ["containerd", f"--config={conf}"], state_dir)
    procs.wait_until(
        state_dir,
        "containerd",
        pid,
        timeout=30,
        what=str(socket(state_dir)),
        ready=lambda: ctr(state_dir, "version", check=False).returncode == 0,
    )
    broken = _broken_plugins(state_dir)
    if broken:
        log = procs.log_file(state_dir, "containerd")
        raise nodehost.NodeUnavailableError(
            f"containerd's {', '.join(broken)} plugin(s) did not load here (e.g. overlayfs on an "
            f"overlay root); see {log}"
        )
    return pid


def _broken_plugins(state_dir: Path) -> list[str]:
    """Of the plugins the node needs (overlayfs snapshots, the CRI), those not loaded ("ok")."""
    needed = {("io.containerd.snapshotter.v1", "overlayfs"), ("io.containerd.grpc.v1", "cri")}
    status = {}
    for line in ctr(state_dir, "plugins", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3:
            status[(fields[0], fields[1])] = fields[-1]
    return sorted(f"{kind.rsplit('.', 2)[-2]}/{name}" for kind, name in needed
                  if status.get((kind, name)) != "ok")  # fmt: skip


def stop(state_dir: Path) -> None:
    """Every container gone (tasks killed, containers deleted), then containerd stopped."""
    if procs.running(state_dir, "containerd") is not None:
        listed = ctr(state_dir, "containers", "ls", "-q", check=False).stdout.split()
        for container in listed:
            ctr(state_dir, "tasks", "delete", "--force", container, check=False)
            ctr(state_dir, "containers", "delete", container, check=False)
    procs.stop(state_dir, "containerd")


def ctr(state_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``ctr`` against the node's containerd, in the CRI's namespace."""
    argv = ["ctr", f"--address={socket(state_dir)}", f"--namespace={NAMESPACE}", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise nodehost.NodeUnavailableError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc


def import_image(state_dir: Path, ref: str) -> bool:
    """Import podman's ``ref`` into the node's containerd unless that very image is there
    already; False if podman has no such image."""
    if not podman.exists(ref):
        return False
    image_id = podman.run("image", "inspect", "--format", "{{.Id}}", ref).strip()
    marker = directory(state_dir) / "imported" / hashlib.sha256(ref.encode()).hexdigest()[:16]
    present = ref in ctr(state_dir, "images", "ls", "-q").stdout.split()
    if present and marker.exists() and marker.read_text() == image_id:
        return True
    with tempfile.TemporaryDirectory(prefix="dpio-image-") as tmp:
        archive = Path(tmp) / "image.tar"
        podman.run("save", "--format=docker-archive", "-o", str(archive), ref, timeout=600)
        ctr(state_dir, "images", "import", str(archive))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(image_id)
    return True


def pause_image() -> str:
    """``localhost/dpio-pause:<tag>``, built into podman's store unless there already."""
    source_dir = _kubernetes_source() / "build" / "pause"
    source = source_dir / "linux" / "pause.c"
    match = re.search(r"^TAG \?= (\S+)", (source_dir / "Makefile").read_text(), re.MULTILINE)
    tag = match.group(1) if match else "dev"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    ref = f"localhost/dpio-pause:{tag}-{digest}"
    if podman.exists(ref):
        return ref
    with tempfile.TemporaryDirectory(prefix="dpio-pause-", dir=_workdir()) as tmp:
        out = Path(tmp)
        flags = ["-Os", "-Wall", "-static", f"-DVERSION=v{tag}-dpio-sandbox"]
        compiled = subprocess.run(
            ["gcc", *flags, "-o", str(out / "pause"), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if compiled.returncode != 0:
            raise nodehost.NodeUnavailableError(f"gcc {source}: {compiled.stderr.strip()}")
        (out / "Containerfile").write_text(
            'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n'
        )
        podman.run("build", "--network=none", "-t", ref, str(out), timeout=300)
    return ref


def _workdir() -> Path:
    path = cache_root() / "node"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _kubernetes_source() -> Path:
    """k8s.io/kubernetes in the Go module cache, as sandbox/node requires it."""
    proc = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes"],
        cwd=NODE_MODULE,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise BuildError(f"go list -m k8s.io/kubernetes in {NODE_MODULE}: {proc.stderr.strip()}")
    return Path(proc.stdout.strip())
