"""The Dockerfile's base image, or a stand-in built here where it cannot be pulled.

The default base (``ARG PYTHON_IMAGE`` in the Dockerfile, the official python slim image) is
used when it is in local storage or can be pulled. Where no registry is reachable, a stand-in
with the same interface is built from Debian's packages: mmdebstrap of the same Debian release
with python3, pip, venv and CA certificates, ``python``/``pip`` on /usr/local/bin (the official
image's paths) and no ``EXTERNALLY-MANAGED`` marker (the official image has none: pip may
install into the system interpreter, which the Dockerfile's builder stage does for uv). The
rootfs tarball is cached in ``~/.cache/dpio-sandbox/image``; the image is imported from it.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time

from dpio_sandbox import podman
from dpio_sandbox.paths import REPO_ROOT, cache_root

SUITE = "bookworm"  # the Debian release of the default base (python:*-slim-bookworm)
PACKAGES = ("python3", "python3-pip", "python3-venv", "ca-certificates")
_HOOKS = (
    'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
    'ln -sf /usr/bin/python3 "$1"/usr/local/bin/python',
    'ln -sf /usr/bin/pip3 "$1"/usr/local/bin/pip',
)
_SLIM = (  # what the official slim images leave out too
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
)
_CHANGES = (
    "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)


def default() -> str:
    """The Dockerfile's ``ARG PYTHON_IMAGE`` default."""
    text = (REPO_ROOT / "Dockerfile").read_text()
    found = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M)
    if found is None:
        raise RuntimeError("Dockerfile: no ARG PYTHON_IMAGE default")
    return found.group(1)


def resolve(image: str | None = None) -> str:
    """``image`` (default: the Dockerfile's) if local or pullable, else the stand-in's name."""
    image = image or default()
    if podman.exists(image):
        return image
    _say(f">> pulling {image}")
    try:
        podman.run("pull", "--quiet", _qualified(image), timeout=120)
        return image
    except (podman.PodmanError, subprocess.TimeoutExpired) as err:
        reason = str(err).splitlines()[-1][:200]
        _say(f">> {image} cannot be pulled ({reason}); using a stand-in built from Debian")
    return standin()


def standin() -> str:
    """The stand-in base, built (mmdebstrap) and imported on first use; its image name."""
    key = cache_key()
    name = f"localhost/dpio-python-base:{SUITE}-{key}"
    if podman.exists(name):
        return name
    tarball = cache_root() / "image" / f"python-base-{SUITE}-{key}.tar"
    if not tarball.exists():
        _mmdebstrap(tarball)
    _say(f">> importing {tarball.name} as {name}")
    changes = [arg for change in _CHANGES for arg in ("--change", change)]
    podman.run("import", *changes, str(tarball), name)
    return name


def cache_key() -> str:
    """Changes whenever what goes into the stand-in does."""
    text = repr((SUITE, PACKAGES, _HOOKS, _SLIM, _CHANGES))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _mmdebstrap(tarball: os.PathLike[str]) -> None:
    missing = podman.missing_tools(["mmdebstrap"])
    if missing:
        raise RuntimeError("mmdebstrap is not installed (sandbox/image/install-tools.sh)")
    _say(f">> building the stand-in base (mmdebstrap {SUITE}: {', '.join(PACKAGES)}; ~1 min)")
    partial = f"{os.fspath(tarball)}.partial"
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        f"--mode={'root' if os.geteuid() == 0 else 'unshare'}",
        "--format=tar",
        f"--include={','.join(PACKAGES)}",
        '--aptopt=APT::Install-Recommends "false"',
        *(f"--dpkgopt={option}" for option in _SLIM),
        *(f"--customize-hook={hook}" for hook in _HOOKS),
        SUITE,
        partial,
    ]
    started = time.monotonic()
    os.makedirs(os.path.dirname(partial), exist_ok=True)
    # mmdebstrap's own lines ("I: ...") are its progress; apt fetches over the machine's
    # configuration (proxies, CA bundle), as apt-get on the host does.
    podman.stream(argv, cache_root() / "image" / "mmdebstrap.log", prefixes=("I: ",))
    os.replace(partial, tarball)
    _say(f">> stand-in base built in {time.monotonic() - started:.0f}s")


def _qualified(image: str) -> str:
    """Docker Hub's spelling of a short name (podman may have no search registries set up)."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
