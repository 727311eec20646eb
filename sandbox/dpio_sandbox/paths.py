"""Where the sandbox keeps built binaries (a cache outside git) and its runtime state."""

from __future__ import annotations

import os
from pathlib import Path

#: Root of the git repository (sandbox/dpio_sandbox/paths.py -> three levels up).
REPO_ROOT = Path(__file__).resolve().parents[2]

#: Go wrapper modules, one per thing we build.
CONTROLPLANE_MODULE = REPO_ROOT / "sandbox" / "controlplane"
ETCD_MODULE = REPO_ROOT / "sandbox" / "etcd"
NODE_MODULE = REPO_ROOT / "sandbox" / "node"
VCSIM_MODULE = REPO_ROOT / "sandbox" / "vcsim"


def cache_root() -> Path:
    """Binary cache: ``$DPIO_SANDBOX_CACHE`` or ``~/.cache/dpio-sandbox``.

    Outside the repository so that a fresh clone or ``git clean`` does not cost a 10-minute rebuild.
    """
    override = os.environ.get("DPIO_SANDBOX_CACHE")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "dpio-sandbox"


def default_state_dir() -> Path:
    """Runtime state (certs, kubeconfig, etcd data, logs, pidfiles): ``<repo>/.sandbox``."""
    return REPO_ROOT / ".sandbox"
