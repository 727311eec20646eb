"""The vSphere simulator (``dpio-vcsim``): built from ``sandbox/vcsim``, started with an inventory
file, a serving certificate signed by the sandbox CA, and fixed sandbox-only credentials."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from dpio_sandbox import build, certs, procs
from dpio_sandbox.paths import VCSIM_MODULE

USERNAME = "administrator@vsphere.local"
#: Sandbox only. Tests prove the operator refuses it when the CA does not match.
PASSWORD = "dpio-Sandbox-1!"
DEFAULT_INVENTORY = VCSIM_MODULE / "inventory" / "default.yaml"
#: Every SOAP method by which the operator changes vCenter, as the simulator's call counters
#: (`GET /counters`) name them: what "no write" and "no double write" checks look for.
WRITE_METHODS = frozenset(
    {
        "UpdatePassthruConfig",
        "RebootHost_Task",
        "EnterMaintenanceMode_Task",
        "ExitMaintenanceMode_Task",
        "ReconfigVM_Task",
        "UpgradeVM_Task",
        "PowerOnVM_Task",
        "PowerOffVM_Task",
        "ShutdownGuest",
        "ReconfigureComputeResource_Task",
    }
)


@dataclass(frozen=True)
class Simulator:
    """A running simulator: where to reach it and how to trust it."""

    name: str
    sdk_url: str
    admin_url: str
    username: str
    password: str
    ca_file: Path
    pid: int

    def admin(self, method: str, path: str, body: object | None = None) -> object:
        """Call the admin endpoint (counters, latency, outage, ...) and return its JSON."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.admin_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None


def binary() -> Path:
    """The simulator binary, rebuilt when any of its sources changes."""
    bin_dir = build.build_go(
        "dpio-vcsim", VCSIM_MODULE, {"dpio-vcsim": "dpio.io/sandbox/vcsim"}, "-s -w", "dev"
    )
    return bin_dir / "dpio-vcsim"


def start(
    state_dir: Path,
    *,
    name: str = "vcsim",
    inventory: Path = DEFAULT_INVENTORY,
    reboot_delay: str = "2s",
    address: str = "127.0.0.1",
) -> Simulator:
    """Start simulator ``name`` unless it already runs (at ``address``); return how to reach
    it. ``address``: where its SDK listens (the node's bridge address, for pods), named in its
    certificate; the admin API stays on loopback."""
    current = read(state_dir, name)
    if current is not None and urllib.parse.urlsplit(current.sdk_url).hostname == address:
        return current
    if current is not None:
        stop(state_dir, name)
    pki = state_dir / "pki"
    extra = [] if address == "127.0.0.1" else [address]
    serving = certs.issue_serving_cert(certs.ensure_ca(pki), name, pki, ips=extra)
    ready = _ready_file(state_dir, name)
    ready.unlink(missing_ok=True)
    argv = [
        str(binary()),
        f"--inventory={inventory}",
        f"--listen={address}:0",
        "--admin-listen=127.0.0.1:0",
        f"--tls-cert={serving.cert}",
        f"--tls-key={serving.key}",
        f"--username={USERNAME}",
        f"--password={PASSWORD}",
        f"--reboot-delay={reboot_delay}",
        f"--ready-file={ready}",
        f"--state-dir={state_dir / name}",
    ]
    (state_dir / name).mkdir(parents=True, exist_ok=True)
    pid = procs.start(name, argv, state_dir)
    procs.wait_until(
        state_dir,
        name,
        pid,
        timeout=60,
        what=str(ready),
        ready=lambda: ready.exists() and bool(ready.read_text()),
    )
    info = json.loads(ready.read_text())
    sim = Simulator(
        name=name,
        sdk_url=info["sdk_url"],
        admin_url=info["admin_url"],
        username=USERNAME,
        password=PASSWORD,
        ca_file=certs.ensure_ca(pki).cert,
        pid=pid,
    )
    _info_file(state_dir, name).write_text(json.dumps(asdict(sim), default=str))
    return sim


def read(state_dir: Path, name: str = "vcsim") -> Simulator | None:
    """The simulator ``name`` if it is running and healthy, else None."""
    pid = procs.running(state_dir, name)
    path = _info_file(state_dir, name)
    if pid is None or not path.exists():
        return None
    raw = json.loads(path.read_text())
    sim = Simulator(**{**raw, "ca_file": Path(raw["ca_file"])})
    try:
        sim.admin("GET", "/healthz")
    except OSError:
        return None
    return sim


def stop(state_dir: Path, name: str = "vcsim") -> None:
    """Stop simulator ``name``; no process or port is left behind."""
    procs.stop(state_dir, name)
    _info_file(state_dir, name).unlink(missing_ok=True)


def _ready_file(state_dir: Path, name: str) -> Path:
    return state_dir / name / "ready.json"


def _info_file(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.json"
