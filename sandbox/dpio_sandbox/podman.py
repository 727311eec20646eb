"""podman as ``make image`` drives it: a containers.conf and storage.conf of its own, written into
the binary cache and named by ``CONTAINERS_CONF``/``CONTAINERS_STORAGE_CONF`` (the machine's own
configuration is left alone), and thin wrappers around the command.

What the configuration settles, each found on the machines this project is developed on:

- ``runtime = "runc"``: crun refuses a host whose cgroup v1 hierarchies sit next to a cgroup v2
  mount (the "mixed" layout); runc runs there.
- ``cgroup_manager = "cgroupfs"`` and ``events_logger = "file"`` where systemd is not PID 1.
- ``default_ulimits`` within the caller's hard limits: rootful podman otherwise asks for
  nofile/nproc of 1048576/4194304, which needs CAP_SYS_RESOURCE. nproc above kernel.pid_max was
  refused as well (found by bisection; no more processes than pids can exist anyway).
- ``driver = "overlay"`` for the root store (no vfs copies of every layer).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from dpio_sandbox.paths import cache_root

TOOLS = ("podman", "runc")


class PodmanError(RuntimeError):
    """podman exited non-zero; the message carries its output."""


def missing_tools(tools: Sequence[str] = TOOLS) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def conf_dir() -> Path:
    return cache_root() / "image" / "containers"


def containers_conf() -> str:
    nofile = _hard(resource.RLIMIT_NOFILE, 1 << 20)
    nproc = min(_hard(resource.RLIMIT_NPROC, 1 << 22), _pid_max())
    lines = [
        "[containers]",
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]',
        "[engine]",
        'runtime = "runc"',
    ]
    if not Path("/run/systemd/system").is_dir():  # sd_booted(3)
        lines += ['cgroup_manager = "cgroupfs"', 'events_logger = "file"']
    return "\n".join(lines) + "\n"


def storage_conf() -> str | None:
    """The root store with the overlay driver; rootless podman keeps its own defaults."""
    if os.geteuid() != 0:
        return None
    return (
        '[storage]\ndriver = "overlay"\nrunroot = "/run/containers/storage"\n'
        'graphroot = "/var/lib/containers/storage"\n'
    )


def env() -> dict[str, str]:
    """The environment podman runs with: the caller's, pointed at this module's configuration."""
    directory = conf_dir()
    directory.mkdir(parents=True, exist_ok=True)
    result = dict(os.environ)
    result["CONTAINERS_CONF"] = str(_write(directory / "containers.conf", containers_conf()))
    storage = storage_conf()
    if storage is not None:
        result["CONTAINERS_STORAGE_CONF"] = str(_write(directory / "storage.conf", storage))
    return result


def run(*args: str, timeout: float | None = None, check: bool = True, merged: bool = False) -> str:
    """``podman ARGS``; its stdout (with ``merged``, stdout and stderr interleaved, as for
    ``podman logs``). Raises PodmanError (with stderr) if it fails and ``check``."""
    proc = subprocess.run(
        ["podman", *args],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        check=False,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise PodmanError(f"podman {' '.join(args)}: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def stream(argv: Sequence[str], log: Path, *, prefixes: Sequence[str] = ("STEP",)) -> None:
    """Run ``argv`` (podman's env), its output into ``log``; lines starting with one of
    ``prefixes`` (after a ``[n/m]`` stage marker) echoed to stderr as progress."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with (
        log.open("w") as out,
        subprocess.Popen(
            list(argv), env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if line.split("] ", 1)[-1].startswith(tuple(prefixes)):
                print(f"   {line.rstrip()[:110]}", file=sys.stderr, flush=True)
        code = proc.wait()
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise PodmanError(f"{argv[0]} {argv[1]} failed ({code}); last lines of {log}:\n{tail}")


def exists(ref: str) -> bool:
    return (
        subprocess.run(["podman", "image", "exists", ref], env=env(), check=False).returncode == 0
    )


def size(ref: str) -> int:
    """The image's size in bytes, as ``podman images`` counts it (all layers, uncompressed)."""
    return int(run("image", "inspect", "--format", "{{.Size}}", ref).strip())


def _hard(limit: int, fallback: int) -> int:
    hard = resource.getrlimit(limit)[1]
    return fallback if hard == resource.RLIM_INFINITY else hard


def _pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return 1 << 22


def _write(path: Path, text: str) -> Path:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path
