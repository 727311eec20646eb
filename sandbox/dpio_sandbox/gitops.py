"""dpio-gitops-health: Argo CD's and kstatus' own health code, run over objects.

Built from sandbox/gitops (argo-cd v3.6 ``util/lua`` + ``util/settings`` with gitops-engine
``health.GetResourceHealth``, and sigs.k8s.io/cli-utils ``kstatus/status.Compute``) through the Go
module proxy like the control plane: cached under ``~/.cache/dpio-sandbox/bin``, file-locked,
progress shown. argo-cd v3.6 needs Go 1.27, so the build lets the go command fetch that toolchain
(GOTOOLCHAIN=auto) when the machine's Go is older.

``evaluate(objects)`` runs every object through one process and returns, per object,
``{"argo": {"status", "message"[, "error"]}, "kstatus": {"status", "message"[, "error"]}}``.
"""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dpio_sandbox.build import build_go, module_release
from dpio_sandbox.paths import REPO_ROOT

#: The Go module of the helper (main.go, go.mod, go.sum).
GITOPS_MODULE = REPO_ROOT / "sandbox" / "gitops"
#: The argocd-cm customization the project ships: what Argo CD is configured with.
ARGOCD_CM = REPO_ROOT / "deploy" / "argocd" / "argocd-cm-patch.yaml"
_ARGO_CD = "github.com/argoproj/argo-cd/v3"

Verdicts = dict[str, dict[str, str]]


class HealthError(RuntimeError):
    """The helper exited non-zero; the message carries its stderr."""


@functools.cache
def binary() -> Path:
    """Path of ``dpio-gitops-health``, built once per source and go.mod/go.sum (cached)."""
    version, _ = module_release(GITOPS_MODULE, _ARGO_CD, toolchain="auto")
    bin_dir = build_go(
        "dpio-gitops-health",
        GITOPS_MODULE,
        {"dpio-gitops-health": "dpio.io/sandbox/gitops"},
        "-s -w",
        f"argo-cd-{version}",
        toolchain="auto",
    )
    return bin_dir / "dpio-gitops-health"


def versions() -> Mapping[str, str]:
    """The versions of the engines' modules the helper is built from."""
    modules = (_ARGO_CD, "github.com/argoproj/argo-cd/gitops-engine/v3", "sigs.k8s.io/cli-utils")
    return {m: module_release(GITOPS_MODULE, m, toolchain="auto")[0] for m in modules}


def evaluate(objects: Iterable[Mapping[str, Any]], argocd_cm: Path = ARGOCD_CM) -> list[Verdicts]:
    """Argo CD health (with ``argocd_cm``'s resource customizations) and kstatus of each object."""
    payload = "".join(json.dumps(obj) + "\n" for obj in objects)
    proc = subprocess.run(
        [str(binary()), "-argocd-cm", str(argocd_cm)],
        input=payload,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise HealthError(f"dpio-gitops-health failed ({proc.returncode}):\n{proc.stderr}")
    results: list[Verdicts] = [json.loads(line) for line in proc.stdout.splitlines()]
    if len(results) != payload.count("\n"):
        raise HealthError(f"{len(results)} answers for {payload.count(chr(10))} objects")
    return results
