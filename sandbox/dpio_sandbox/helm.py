"""helm v3, built from Go modules like the control plane (cached, file-locked, progress shown).

``binary()`` returns the path of ``helm``, building it on first use; ``run(*args)`` runs it.
The chart tests use it for ``helm lint --strict``, ``helm template`` (whose output they apply
with kubectl, to see exactly what the API server accepts) and one install/upgrade/uninstall
against the sandbox API server.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Mapping
from pathlib import Path

from dpio_sandbox.build import build_go, module_release
from dpio_sandbox.paths import REPO_ROOT

#: The Go wrapper module pinning helm (go.mod/go.sum only).
HELM_MODULE = REPO_ROOT / "sandbox" / "helm"
_HELM = "helm.sh/helm/v3"


class HelmError(RuntimeError):
    """``helm`` exited non-zero; the message carries its output."""


@functools.cache
def binary() -> Path:
    """Path of the ``helm`` binary, built once per go.mod/go.sum (cached in the binary cache)."""
    version, _ = module_release(HELM_MODULE, _HELM)
    client_go, _ = module_release(HELM_MODULE, "k8s.io/client-go")
    ldflags = " ".join(f"-X {var}={value}" for var, value in _stamp(version, client_go).items())
    bin_dir = build_go(
        "helm", HELM_MODULE, {"helm": f"{_HELM}/cmd/helm"}, f"-s -w {ldflags}", version
    )
    return bin_dir / "helm"


def run(
    *args: str, check: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``helm args...`` (``env`` replaces the environment); raise HelmError with its output
    when ``check`` and it fails."""
    proc = subprocess.run(
        [str(binary()), *args],
        capture_output=True,
        text=True,
        check=False,
        env=None if env is None else dict(env),
    )
    if check and proc.returncode != 0:
        raise HelmError(f"helm {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc


def _stamp(version: str, client_go: str) -> dict[str, str]:
    """What helm's Makefile stamps (``LDFLAGS``): its version, and the Kubernetes version it
    assumes offline (``.Capabilities.KubeVersion`` in ``helm template``, deprecation checks in
    ``helm lint``), derived from client-go v0.X.Y -> Kubernetes 1.X."""
    minor = client_go.lstrip("v").split(".")[1]
    return {
        f"{_HELM}/internal/version.version": version,
        f"{_HELM}/internal/version.gitTreeState": "clean",
        f"{_HELM}/pkg/lint/rules.k8sVersionMajor": "1",
        f"{_HELM}/pkg/lint/rules.k8sVersionMinor": minor,
        f"{_HELM}/pkg/chartutil.k8sVersionMajor": "1",
        f"{_HELM}/pkg/chartutil.k8sVersionMinor": minor,
    }
