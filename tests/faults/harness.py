"""The fault suite's harness (no tests here): the operator as a process we own (start, SIGKILL,
restart), kubectl helpers, the simulator's admin API, and waiting with a deadline.

The operator is started exactly as `make run` and tests/e2e/conftest.py start it
(`python -m dpio.handlers.main --standalone`), but by the test itself, so the test decides when
it dies. Its output goes to one log file per run; `secrets_in` greps them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dpio_sandbox import install, manifests, procs
from dpio_sandbox.sandbox import Sandbox
from dpio_sandbox.vcsim import Simulator

T = TypeVar("T")
A100 = {"vendorID": "10de", "deviceID": "20b5"}  # the device selector of the fault suite's GPUs


@dataclass
class OperatorProcess:
    """One operator replica at a time; every run (after a kill) writes its own log file."""

    box: Sandbox
    log_dir: Path
    secret: str = install.SECRET
    verbose: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0
    port: int = 0

    def start(self) -> None:
        assert not self.alive, "one replica at a time: kill or stop it first"
        self.runs += 1
        self.port = procs.free_port()
        env = {
            **os.environ,
            **self.box.env(),
            "DPIO_NAMESPACE": install.NAMESPACE,
            "DPIO_VCENTER_SECRET": self.secret,
            "DPIO_METRICS_PORT": "0",  # several operators share this machine: no fixed port
            **self.extra_env,
        }
        argv = [
            sys.executable,
            "-m",
            "dpio.handlers.main",
            "--standalone",
            f"--liveness=http://127.0.0.1:{self.port}/healthz",
        ]
        if self.verbose:
            argv.append("--verbose")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        procs.wait_for_url(
            self.log_dir, f"operator-{self.runs}", self.proc.pid, self.healthz, timeout=60
        )

    @property
    def log(self) -> Path:
        return self.log_dir / "logs" / f"operator-{self.runs}.log"

    @property
    def healthz(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    def kill(self) -> None:
        """SIGKILL: no finalizer, no logout, no flush; what a node failure or OOM kill does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        return "\n".join(
            (self.log_dir / "logs" / f"operator-{n}.log").read_text(errors="replace")
            for n in range(1, self.runs + 1)
        )


def kubectl(box: Sandbox, *args: str, stdin: str | None = None) -> str:
    return install.kubectl(box, *args, stdin=stdin)


def apply(box: Sandbox, manifest: dict[str, Any]) -> None:
    kubectl(box, "apply", "-f", "-", stdin=json.dumps(manifest))


def get_json(box: Sandbox, *args: str) -> Any:
    return json.loads(kubectl(box, "get", *args, "-o", "json"))


def vcenter_secret(box: Sandbox, sim: Simulator, name: str, **overrides: str) -> None:
    """A Secret in the operator's namespace for `sim` (keys: docs/design.md, "vCenter access")."""
    data = {
        "server": sim.sdk_url,
        "username": sim.username,
        "password": sim.password,
        "caBundle": Path(sim.ca_file).read_text(),
        **overrides,
    }
    apply(
        box,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": install.NAMESPACE},
            "stringData": data,
        },
    )


def hpp(name: str, hosts: list[str] | dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A policy for A100s (10de:20b5) on `hosts` (names, or a whole HostSelector), on the
    operator's default vCenter Secret; `spec` adds fields, or replaces the devices."""
    spec.setdefault("devices", [A100])
    return manifests.policy(name, hosts=hosts, **spec)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_]
    return found[0] if found else {}


def ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status", {})
    return (
        condition(obj, "Ready").get("status") == "True"
        and status.get("observedGeneration") == obj["metadata"]["generation"]
    )


def counters(sim: Simulator) -> dict[str, int]:
    answer: Any = sim.admin("GET", "/counters")
    return dict(answer["counts"])


def reset_counters(sim: Simulator) -> None:
    sim.admin("POST", "/counters/reset")


def secrets_in(texts: Iterable[tuple[str, str]], secrets: Iterable[str]) -> list[str]:
    """Where any of `secrets` shows up, as "where: secret[:3]..." (never the whole value)."""
    return [f"{where}: {s[:3]}..." for where, text in texts for s in secrets if s and s in text]


SUMMARIES: list[str] = []


def summary(test: str, **figures: object) -> None:
    """One line per test, read by people and by the issue note: faults, converged, violations.

    Printed, and repeated at the end of the run by tests/faults/conftest.py (captured output of
    passing tests is not shown otherwise)."""
    line = "FAULTS " + test + " " + " ".join(f"{k}={v}" for k, v in figures.items())
    SUMMARIES.append(line)
    print("\n" + line)


def healthy(operator: OperatorProcess) -> bool:
    """The operator's liveness probe answers 200 within 5 s."""
    try:
        with urllib.request.urlopen(operator.healthz, timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def hang(sim: Simulator, hung: bool) -> dict[str, Any]:
    """The simulator's SDK accepts connections and reads requests but answers none (True), or
    answers again (False); the answer also says how many requests wait (sandbox/vcsim/README.md)."""
    answer: Any = sim.admin("POST", "/hang", {"hung": hung})
    return dict(answer)


def hang_state(sim: Simulator) -> dict[str, Any]:
    answer: Any = sim.admin("GET", "/hang")
    return dict(answer)


def hold_tasks(sim: Simulator, method: str, count: int = 1) -> None:
    """The next `count` calls of `method` (ReconfigVM_Task, EnterMaintenanceMode_Task) start a
    task that stays running, doing nothing, until `release_tasks`."""
    sim.admin("POST", "/tasks/hold", {"method": method, "count": count})


def held_tasks(sim: Simulator) -> list[dict[str, Any]]:
    """Every task held so far: method, task (moref), entity, entityName, released."""
    answer: Any = sim.admin("GET", "/tasks/held")
    return list(answer["tasks"])


def release_tasks(sim: Simulator, method: str = "") -> int:
    """Let the held tasks (of `method`, or all) run; drop holds not used yet."""
    answer: Any = sim.admin("POST", "/tasks/release", {"method": method})
    return int(answer["released"])
