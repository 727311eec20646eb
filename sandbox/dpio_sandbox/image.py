"""``make image`` and ``make image-run``: the repository's Dockerfile built with podman, and the
image run against the sandbox with the chart's own security settings.

``python -m dpio_sandbox.image build`` builds ``localhost/dpio-operator:<version>`` on the
Dockerfile's base, or on a stand-in built from Debian where that base cannot be pulled
(``baseimage``). Where PyPI is reached through a TLS-intercepting proxy, the machine's CA bundle
is bind-mounted read-only over the base's own bundle for the RUN steps and named in build
arguments of the builder stage: it is never copied into a layer.

``python -m dpio_sandbox.image run`` starts (or reuses) the sandbox, installs the CRDs and the
vCenter Secret as ``make run`` does, and runs the image in the foreground the way the chart's
Deployment runs it (``Security.from_deployment``), with the sandbox's kubeconfig mounted
read-only; network host, so that it reaches the API server and the simulator on loopback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpio_sandbox import baseimage, podman
from dpio_sandbox.paths import REPO_ROOT, cache_root

VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"localhost/dpio-operator:{VERSION}"
#: Where the kubeconfig is mounted in the container (read-only).
KUBECONFIG = "/etc/dpio/kubeconfig"
#: Where the build's RUN steps see the machine's CA bundle: over the base's own (Debian's path,
#: also the official python image's), so that no new path appears in any layer.
BUILD_CA = "/etc/ssl/certs/ca-certificates.crt"


class ImageUnavailableError(RuntimeError):
    """This machine cannot build or run the image; the message says why."""


@dataclass(frozen=True)
class Built:
    image: str
    base: str
    seconds: float
    size: int


def unavailable() -> str | None:
    """Why the image cannot be built here (None: it can)."""
    missing = podman.missing_tools()
    if missing:
        return f"{', '.join(missing)} not installed (make image installs them with apt-get)"
    try:
        podman.run("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60)
    except podman.PodmanError as err:
        return f"podman does not work here: {err}"
    return None


def ca_bundle() -> Path | None:
    """The CA bundle this machine's TLS clients use (SSL_CERT_FILE, PIP_CERT, Debian's path)."""
    for candidate in (
        os.environ.get("SSL_CERT_FILE"),
        os.environ.get("PIP_CERT"),
        os.environ.get("REQUESTS_CA_BUNDLE"),
        BUILD_CA,
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def build_argv(image: str, base: str, ca: Path | None) -> list[str]:
    argv = ["podman", "build", "--network=host", "--layers", "-t", image, "-f", "Dockerfile"]
    if base != baseimage.default():
        argv += ["--build-arg", f"PYTHON_IMAGE={base}"]
    pip_index = os.environ.get("PIP_INDEX_URL")
    if pip_index:
        argv += ["--build-arg", f"PIP_INDEX_URL={pip_index}"]
    if ca is not None:
        argv += ["--volume", f"{ca.resolve()}:{BUILD_CA}:ro"]
        argv += ["--build-arg", f"SSL_CERT_FILE={BUILD_CA}", "--build-arg", f"PIP_CERT={BUILD_CA}"]
    return [*argv, str(REPO_ROOT)]


def build(image: str = IMAGE) -> Built:
    """Build ``image`` from the Dockerfile (podman caches the layers); ImageUnavailableError
    says why it cannot be built here."""
    reason = unavailable()
    if reason is not None:
        raise ImageUnavailableError(reason)
    started = time.monotonic()
    # What fails before the Dockerfile's first step is this machine's, not the Dockerfile's:
    # no base image to be had, or no container that podman can start.
    try:
        base = baseimage.resolve()
        podman.run("run", "--rm", "--network=none", "--entrypoint=true", base, timeout=300)
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        raise ImageUnavailableError(str(err)) from err
    ca = ca_bundle()
    _say(f">> building {image} on {base}" + (f" (build steps trust {ca})" if ca else ""))
    log = cache_root() / "image" / "build.log"
    podman.stream(build_argv(image, base, ca), log)
    return Built(image, base, time.monotonic() - started, podman.size(image))


@dataclass(frozen=True)
class Security:
    """The pod and container securityContext of the chart's Deployment, as podman flags."""

    user: int
    group: int
    read_only: bool
    drop_all: bool
    no_new_privileges: bool
    tmpfs: tuple[str, ...]

    @classmethod
    def from_deployment(cls, deployment: dict[str, Any]) -> Security:
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        return cls(
            user=int(context["runAsUser"]),
            group=int(context.get("runAsGroup", context["runAsUser"])),
            read_only=bool(context.get("readOnlyRootFilesystem")),
            drop_all="ALL" in context.get("capabilities", {}).get("drop", []),
            no_new_privileges=context.get("allowPrivilegeEscalation") is False,
            tmpfs=tuple(
                m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in empty_dirs
            ),
        )

    def flags(self) -> list[str]:
        flags = [f"--user={self.user}:{self.group}"]
        if self.read_only:
            # Only the Deployment's own emptyDirs are writable, not podman's default tmpfs set.
            flags += ["--read-only", "--read-only-tmpfs=false"]
        if self.drop_all:
            flags.append("--cap-drop=ALL")
        if self.no_new_privileges:
            flags.append("--security-opt=no-new-privileges")
        # Pod Security "restricted" wants seccomp RuntimeDefault: podman's default profile.
        flags += [f"--tmpfs={path}:rw,size=16m,mode=1777" for path in self.tmpfs]
        return flags


def run_argv(
    image: str,
    *,
    name: str,
    kubeconfig: Path,
    security: Security,
    args: Sequence[str],
    env: dict[str, str],
    detach: bool,
) -> list[str]:
    """``podman run`` of ``image`` as the Deployment runs it, reaching the sandbox on loopback."""
    argv = ["podman", "run", f"--name={name}", "--network=host", "--pull=never"]
    # Detached, the container stays after it stops, for its logs; the caller removes it.
    argv += ["--detach"] if detach else ["--rm", "--sig-proxy=true"]
    argv += security.flags()
    argv += [f"--volume={kubeconfig.resolve()}:{KUBECONFIG}:ro", f"--env=KUBECONFIG={KUBECONFIG}"]
    argv += [f"--env={key}={value}" for key, value in sorted(env.items())]
    return [*argv, image, *args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dpio_sandbox.image", description=__doc__)
    parser.add_argument("command", choices=["build", "run"])
    parser.add_argument("--image", default=IMAGE)
    args = parser.parse_args(argv)
    if args.command == "build":
        try:
            built = build(args.image)
        except ImageUnavailableError as err:
            print(f"cannot build the image here: {err}", file=sys.stderr)
            return 1
        print(
            f"{built.image} built in {built.seconds:.0f}s on {built.base}; "
            f"{built.size / 1e6:.0f} MB (podman images)"
        )
        return 0
    from dpio_sandbox import imagerun  # noqa: PLC0415 - helm and the sandbox only for `run`

    return imagerun.foreground(args.image)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
