"""The host side of the sandbox's node: its bridge, and everything a node leaves on the machine
removed after it (``make sandbox-down``).

One node per machine: its bridge (``dpio0``, 10.213.77.1/24) and the cgroups under ``/kubepods``
exist once. The bridge's alias names the state directory that owns it, so that a second sandbox
is refused while the first one's node runs, and cleans up after it if it died.

What a node leaves, each removed by ``cleanup``: processes (containerd's shims and the
containers, found by the node's containerd socket and by cgroup), mounts under the state
directory (the kubelet's pod volumes, the containers' root filesystems, the CNI network
namespaces, which containerd keeps under its state directory), the bridge and its veths, the
``kubepods`` cgroups, and the kubelet's links in ``/var/log/containers``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from dpio_sandbox import procs

BRIDGE = "dpio0"
#: The CNI network's name (containerd.cni_config).
NETWORK = "dpio-sandbox"
#: The node's address: the bridge's, the pods' gateway; the kubelet's InternalIP.
NODE_IP = "10.213.77.1"
SUBNET = "10.213.77.0/24"
_PREFIX = 24
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_POD_CGROUP = "kubepods"
_LOG_LINKS = Path("/var/log/containers")
_SHIM_DIRS = (Path("/run/containerd/s"), Path("/run/containerd"))
_DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
_CNI_RESULTS = Path("/var/lib/cni/results")  # libcni's cache, not configurable in containerd 1.6
_FIXED_DIRS = (_DEVICE_PLUGINS, _DEVICE_PLUGINS.parent, _CNI_RESULTS, _CNI_RESULTS.parent)
#: The processes of a node, stopped in this order by ``node.stop``.
PROCESSES = ("kubelet", "kube-scheduler", "containerd")


class NodeUnavailableError(RuntimeError):
    """The node cannot run on this machine; the message says why."""


def bridge_owner() -> Path | None:
    """The state directory whose node made the bridge, None if there is no bridge."""
    proc = _ip("-j", "link", "show", BRIDGE, check=False)
    if proc.returncode != 0:
        return None
    (link,) = json.loads(proc.stdout)
    return Path(link.get("ifalias") or "/")


def bridge_up(state_dir: Path) -> None:
    """The bridge with the node's address, for ``state_dir``; a dead node's leftovers of another
    state directory are cleaned first, a running one is refused."""
    owner = bridge_owner()
    if owner is not None and owner != state_dir:
        alive = [name for name in PROCESSES if procs.running(owner, name)]
        if alive:
            raise NodeUnavailableError(
                f"the node of {owner} runs ({', '.join(alive)}); only one node per machine: "
                f"stop that sandbox first (make sandbox-down there)"
            )
        cleanup(owner)
        owner = None
    if owner is None:
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("link", "set", BRIDGE, "alias", str(state_dir))
        _ip("addr", "add", f"{NODE_IP}/{_PREFIX}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


def cleanup(state_dir: Path, containerd_socket: Path | None = None) -> list[str]:
    """Remove what a stopped node of ``state_dir`` left on the machine; what was found, for the
    caller to report (empty when nothing was left)."""
    owner = bridge_owner()
    # The pods' cgroups exist once per machine: another state directory's running node has them.
    ours = owner is None or owner == state_dir
    found = _kill_leftovers(state_dir, containerd_socket, by_cgroup=ours)
    found += _unmount_under(state_dir)
    if owner == state_dir:
        _ip("link", "del", BRIDGE, check=False)
        found.append(f"bridge {BRIDGE}")
    if ours:
        found += _remove_cgroups()
        # The kubelet's device plugin socket: a fixed path, whatever its root directory.
        with contextlib.suppress(OSError):
            (_DEVICE_PLUGINS / "kubelet.sock").unlink()
            found.append("the kubelet's device plugin socket")
        found += _remove_cni_results()
    found += _remove_log_links(state_dir)
    # Made by the shims (their sockets: containerd 1.6 has them there whatever its state
    # directory), the kubelet and libcni; removed only if empty, as the machine's own may be in
    # use.
    for made in (*_SHIM_DIRS, _LOG_LINKS, *_FIXED_DIRS):
        with contextlib.suppress(OSError):
            made.rmdir()
    return found


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below ``directory``, deepest last (as /proc/self/mountinfo lists)."""
    prefix = str(directory).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if point == prefix[:-1] or point.startswith(prefix):
            points.append(point)
    return points


def pod_cgroup_pids() -> set[int]:
    """Every process in the ``kubepods`` cgroups (any hierarchy)."""
    pids: set[int] = set()
    for hierarchy in _hierarchies():
        for procs_file in (hierarchy / _POD_CGROUP).rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in procs_file.read_text().split())
    return pids


def _kill_leftovers(state_dir: Path, socket: Path | None, *, by_cgroup: bool) -> list[str]:
    """SIGKILL the containers (by cgroup) and containerd's shims (by the node's socket)."""
    marker = str(socket or state_dir)
    pids = pod_cgroup_pids() if by_cgroup else set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if argv[0].endswith(b"containerd-shim-runc-v2") and marker.encode() in b" ".join(
                    argv
                ):
                    pids.add(int(entry.name))
    pids.discard(os.getpid())
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [f"{len(pids)} processes"] if pids else []


def _unmount_under(state_dir: Path) -> list[str]:
    points = mounts_under(state_dir)
    for point in reversed(points):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    left = mounts_under(state_dir)
    if left:
        raise NodeUnavailableError(f"still mounted after umount: {left}")
    return [f"{len(points)} mounts"] if points else []


def _remove_cgroups() -> list[str]:
    removed = 0
    for hierarchy in _hierarchies():
        top = hierarchy / _POD_CGROUP
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for directory in [*dirs, top]:
            for _ in range(50):  # a killed process leaves its cgroup a moment later
                try:
                    directory.rmdir()
                    removed += 1
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
    return [f"{removed} cgroups"] if removed else []


def _remove_log_links(state_dir: Path) -> list[str]:
    removed = 0
    with contextlib.suppress(OSError):
        for link in _LOG_LINKS.iterdir():
            if link.is_symlink() and os.readlink(link).startswith(str(state_dir) + "/"):
                link.unlink()
                removed += 1
    return [f"{removed} log links"] if removed else []


def _remove_cni_results() -> list[str]:
    """libcni's cached results of the node's pods, which a CNI DEL would have removed: those of
    its network (one node per machine), and the loopback ones of the same pods."""
    try:
        cached = list(_CNI_RESULTS.iterdir())
    except OSError:
        return []
    prefix = f"{NETWORK}-"
    pods = {p.name[len(prefix) :].rsplit("-", 1)[0] for p in cached if p.name.startswith(prefix)}
    removed = 0
    for result in cached:
        name = result.name
        if name.startswith(prefix) or (
            name.startswith("cni-loopback-") and name[13:].rsplit("-", 1)[0] in pods
        ):
            with contextlib.suppress(OSError):
                result.unlink()
                removed += 1
    return [f"{removed} cached CNI results"] if removed else []


def _hierarchies() -> list[Path]:
    """cgroup v1 hierarchies (one dir each), or the unified one."""
    if (_CGROUP_ROOT / "cgroup.controllers").exists():
        return [_CGROUP_ROOT]
    with contextlib.suppress(OSError):
        return [p for p in _CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink()]
    return []


def _unescape(field: str) -> str:
    """/proc/self/mountinfo escapes space, tab, newline and backslash as octal."""
    for code in ("040", "011", "012", "134"):
        field = field.replace("\\" + code, chr(int(code, 8)))
    return field


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NodeUnavailableError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc
