"""govc, built from govmomi's Go modules at the simulator's govmomi version (cached, file-locked,
progress shown, like the other sandbox binaries).

``binary()`` returns the path of ``govc``, building it on first use; ``run(sim, *args)`` runs it
against a simulator, trusting the sandbox CA. The conformance suite
(tests/integration/vsphere/conformance) uses it to read and change the simulator as an
administrator would.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from dpio_sandbox.build import build_go, module_release
from dpio_sandbox.paths import REPO_ROOT, VCSIM_MODULE
from dpio_sandbox.vcsim import Simulator

#: The Go wrapper module: go.mod/go.sum pinning govmomi and main.go registering govc's commands.
GOVC_MODULE = REPO_ROOT / "sandbox" / "govc"
_GOVMOMI = "github.com/vmware/govmomi"


class GovcError(RuntimeError):
    """``govc`` exited non-zero; the message carries its output."""


@functools.cache
def binary() -> Path:
    """Path of ``govc``, built once per go.mod/go.sum/main.go (cached in the binary cache).

    Refuses to build when the wrapper's govmomi is not the simulator's: the suite must judge the
    simulator with the client of the same release.
    """
    version, _ = module_release(GOVC_MODULE, _GOVMOMI)
    simulator_version, _ = module_release(VCSIM_MODULE, _GOVMOMI)
    if version != simulator_version:
        raise GovcError(
            f"sandbox/govc pins govmomi {version}, the simulator {simulator_version}: "
            "update sandbox/govc/go.mod (go get, go mod tidy) to the simulator's version"
        )
    bin_dir = build_go("govc", GOVC_MODULE, {"govc": "dpio.io/sandbox/govc"}, "-s -w", version)
    return bin_dir / "govc"


def env(sim: Simulator) -> dict[str, str]:
    """The environment that points govc at ``sim`` (TLS verified against the sandbox CA)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/"),
        "GOVC_URL": sim.sdk_url,
        "GOVC_USERNAME": sim.username,
        "GOVC_PASSWORD": sim.password,
        "GOVC_TLS_CA_CERTS": str(sim.ca_file),
    }


def run(sim: Simulator, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``govc args...`` against ``sim``; raise GovcError with its output when ``check`` and
    it fails."""
    proc = subprocess.run(
        [str(binary()), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env(sim),
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise GovcError(
            f"govc {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    return proc
