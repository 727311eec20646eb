"""The operator image run against a sandbox as the chart's Deployment runs it: its arguments, its
environment, its securityContext (``image.Security``); only the ports change to free loopback
ones, since the container shares the host's network to reach the sandbox on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dpio_sandbox import helm, install, podman, procs
from dpio_sandbox import sandbox as sandbox_mod
from dpio_sandbox.image import Security, run_argv
from dpio_sandbox.paths import REPO_ROOT, default_state_dir

CHART = REPO_ROOT / "charts" / "dpio-operator"


@dataclass(frozen=True)
class Container:
    """What ``podman run`` needs from the rendered Deployment, ports already made free."""

    args: tuple[str, ...]
    env: dict[str, str]
    security: Security
    health_url: str


def render(namespace: str, *sets: str) -> list[dict[str, Any]]:
    """The chart's objects, as ``helm template`` renders them into ``namespace``."""
    extra = [arg for value in sets for arg in ("--set", value)]
    out = helm.run("template", "dpio", str(CHART), "--namespace", namespace, *extra).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def container(objects: list[dict[str, Any]]) -> Container:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (spec,) = deployment["spec"]["template"]["spec"]["containers"]
    port = procs.free_port()
    args = [a.replace("0.0.0.0:8080", f"127.0.0.1:{port}") for a in spec["args"]]
    env = {e["name"]: str(e["value"]) for e in spec["env"]}
    if env.get("DPIO_METRICS_PORT", "0") != "0":
        env["DPIO_METRICS_PORT"] = str(procs.free_port())
    return Container(
        tuple(args),
        env,
        Security.from_deployment(deployment),
        f"http://127.0.0.1:{port}/healthz",
    )


@contextlib.contextmanager
def running(
    image: str, spec: Container, kubeconfig: Path, log: Path, *, timeout: float = 120.0
) -> Iterator[str]:
    """The image running detached; yields the container's name once its liveness endpoint
    answers. On exit: stopped (SIGTERM, then SIGKILL after 30 s), its output saved to ``log``,
    removed."""
    name = f"dpio-operator-{spec.health_url.rsplit(':', 1)[1].split('/')[0]}"
    podman.run("rm", "--force", "--ignore", name)
    argv = run_argv(
        image,
        name=name,
        kubeconfig=kubeconfig,
        security=spec.security,
        args=spec.args,
        env=spec.env,
        detach=True,
    )
    podman.run(*argv[1:])
    try:
        _wait_healthy(name, spec.health_url, timeout)
        yield name
    finally:
        podman.run("stop", "--time=30", name, check=False)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(podman.run("logs", name, check=False, merged=True))
        podman.run("rm", "--force", name, check=False)


def logs(name: str) -> str:
    """Everything the container wrote, stdout and stderr interleaved."""
    return podman.run("logs", name, merged=True)


def state(name: str) -> dict[str, Any]:
    """``podman inspect`` of the container."""
    (found,) = json.loads(podman.run("inspect", name))
    return dict(found)


def foreground(image: str) -> int:
    """``make image-run``: the sandbox of ``make sandbox``, prepared as ``make run`` prepares it,
    and the image in the foreground with the chart's settings until Ctrl-C."""
    box = sandbox_mod.up(default_state_dir())
    install.install(box)
    spec = container(render(install.NAMESPACE, f"vcenter.secretName={install.SECRET}"))
    argv = run_argv(
        image,
        name="dpio-operator-image-run",
        kubeconfig=readable_copy(box.kubeconfig, box.state_dir / "image-run"),
        security=spec.security,
        args=spec.args,
        env=spec.env,
        detach=False,
    )
    print(f">> {' '.join(argv)}\n>> liveness: {spec.health_url}", file=sys.stderr, flush=True)
    try:
        return subprocess.call(argv, env=podman.env())
    except KeyboardInterrupt:
        podman.run("stop", "--time=30", "dpio-operator-image-run", check=False)
        return 0


def readable_copy(kubeconfig: Path, directory: Path) -> Path:
    """A copy of ``kubeconfig`` that the container's user (65532) can read: the sandbox writes
    it 0600 for its owner. World-readable, in a directory only the owner may enter (the
    container sees the file through its bind mount, not the directory)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    copy = directory / "kubeconfig"
    copy.write_bytes(kubeconfig.read_bytes())
    copy.chmod(0o644)
    return copy


def _wait_healthy(name: str, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=2) as resp,
        ):
            if resp.status == 200:
                return
        if state(name)["State"]["Status"] != "running" or time.monotonic() > deadline:
            tail = "\n".join(podman.run("logs", name, check=False, merged=True).splitlines()[-20:])
            raise podman.PodmanError(f"{name} not healthy at {url}; its last lines:\n{tail}")
        time.sleep(0.5)
