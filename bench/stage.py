"""The pieces a scenario runs on, started through the sandbox's own code: a control plane of its
own (fresh etcd, so scenarios don't see each other's objects), simulators with generated
inventories, and the operator as a subprocess, run as `make run` runs it."""

from __future__ import annotations

import contextlib
import os
import pstats
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench import procstat, pyspy
from dpio.observability.alloc_trace import ENV as ALLOC_TRACE_ENV
from dpio.observability.memory_report import ENV as MEMORY_REPORT_ENV
from dpio_sandbox import controlplane, install, procs, vcsim
from dpio_sandbox.sandbox import Sandbox


@dataclass
class Operator:
    """The operator subprocess and its log."""

    proc: subprocess.Popen[bytes]
    log: Path
    profile: Path | None = None  # cProfile output, summarized to <profile>.txt on stop
    metrics_url: str = ""  # plain-HTTP /metrics of this process (DPIO_METRICS_PORT)
    #: py-spy sampling this process, and where its collapsed stacks go (summarized on stop).
    sampler: subprocess.Popen[bytes] | None = None
    samples: Path | None = None
    #: Seconds to wait for it to stop before it is killed (see `stop_timeout`).
    stop_seconds: float = 30.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stat(self) -> procstat.ProcStat:
        return procstat.read(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=self.stop_seconds)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.profile is not None and self.profile.exists():
            summary = self.profile.with_suffix(".txt")
            with summary.open("w") as out:
                stats = pstats.Stats(str(self.profile), stream=out)
                stats.sort_stats("cumulative").print_stats(40)
                stats.sort_stats("tottime").print_stats(40)
            print(f"   operator profile (event-loop thread): {summary}", file=sys.stderr)
        if self.sampler is not None and self.samples is not None:
            written = pyspy.finish(self.sampler, self.samples)
            self.sampler = None
            print(f"   operator py-spy profile (all threads): {written}", file=sys.stderr)


@dataclass(frozen=True)
class SimulatorCPU:
    """One `dpio-vcsim` process's own CPU (/proc/<pid>/stat), so a reader sees which side is
    slow: loading its inventory (start until ready) and the rest of its life (the scenario)."""

    name: str  # "<stage>/<simulator>", e.g. "hosts/vcsim-operator"
    load_seconds: float
    scenario_seconds: float | None  # None: the process was gone before it could be read
    peak_rss_mib: float | None


#: Every simulator a stage stopped, in order; `bench.__main__` reports each scenario's share.
simulator_cpu: list[SimulatorCPU] = []


def startup_timeout(env: dict[str, str]) -> float:
    """Seconds an operator may take to answer /healthz: tracing every allocation
    (DPIO_TRACEMALLOC_DIR) makes its imports and first reads several times slower, past the
    usual minute."""
    return 600.0 if env.get(ALLOC_TRACE_ENV) else 60.0


def stop_timeout(env: dict[str, str]) -> float:
    """Seconds an operator may take to stop: writing a memory report (DPIO_MEMORY_REPORT_DIR)
    walks every live object first, which at 5,000 objects of each kind takes a while."""
    return 600.0 if env.get(MEMORY_REPORT_ENV) or env.get(ALLOC_TRACE_ENV) else 30.0


@dataclass
class Stage:
    """A running control plane and the simulators started on it."""

    state_dir: Path
    plane: controlplane.ControlPlane
    sims: dict[str, vcsim.Simulator] = field(default_factory=dict)
    profile: bool = False
    #: Sample the operator with py-spy (every thread), written next to its log.
    py_spy: bool = False
    #: Each simulator's /proc figures when it became ready (before the scenario used it).
    sim_start: dict[str, procstat.ProcStat] = field(default_factory=dict)

    def simulator(
        self, name: str, inventory: Path, *, latency_ms: int = 0, reboot_delay: str = "2s"
    ) -> vcsim.Simulator:
        """Start simulator ``name`` on ``inventory`` with ``latency_ms`` per SOAP request."""
        started = time.monotonic()
        sim = vcsim.start(self.state_dir, name=name, inventory=inventory, reboot_delay=reboot_delay)
        print(f"   simulator {name} up in {time.monotonic() - started:.1f}s", file=sys.stderr)
        sim.admin("PUT", "/latency", {"ms": latency_ms})
        self.sims[name] = sim
        self.sim_start[name] = procstat.read(sim.pid)
        return sim

    def record_simulator_cpu(self) -> None:
        """Append each simulator's CPU since it became ready to `simulator_cpu` (before stop)."""
        for name, sim in self.sims.items():
            start = self.sim_start.get(name)
            if start is None:
                continue
            label = f"{self.state_dir.name}/{name}"
            try:
                now = procstat.read(sim.pid)
            except OSError:
                simulator_cpu.append(SimulatorCPU(label, start.cpu_seconds, None, None))
                continue
            simulator_cpu.append(
                SimulatorCPU(label, start.cpu_seconds, now.cpu_since(start), now.peak_rss_mib)
            )

    def sandbox(self, sim_name: str) -> Sandbox:
        """The `Sandbox` view (kubeconfig + kubectl + one simulator) the sandbox helpers take."""
        return Sandbox(
            self.state_dir, self.plane.kubeconfig, self.plane.kubectl, self.sims[sim_name]
        )

    def install(self, sim_name: str) -> None:
        """CRDs, the operator's namespace and its default vCenter Secret for ``sim_name``."""
        install.install(self.sandbox(sim_name))

    def start_operator(self, sim_name: str, *, workers: int | None = None) -> Operator:
        box = self.sandbox(sim_name)
        port, metrics_port = procs.free_port(), procs.free_port()
        env = {
            **os.environ,
            **box.env(),
            "DPIO_NAMESPACE": install.NAMESPACE,
            "DPIO_VCENTER_SECRET": install.SECRET,
            # A port of its own: the default (9090) may be held by another operator on the machine.
            "DPIO_METRICS_PORT": str(metrics_port),
        }
        if workers is not None:
            env["DPIO_WORKERS"] = str(workers)
        log = self.state_dir / "logs" / "operator.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            "-m",
            "dpio.handlers.main",
            "--standalone",
            f"--liveness=http://127.0.0.1:{port}/healthz",
        ]
        profile = self.state_dir / f"operator-{sim_name}.prof" if self.profile else None
        if profile is not None:
            # Only the main thread (kopf's event loop: planner, status); pyVmomi runs in threads.
            argv = ["-m", "cProfile", "-o", str(profile), *argv]
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, *argv],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        operator = Operator(proc, log, profile, f"http://127.0.0.1:{metrics_port}/metrics")
        operator.stop_seconds = stop_timeout(env)
        try:
            procs.wait_for_url(
                self.state_dir,
                "operator",
                proc.pid,
                f"http://127.0.0.1:{port}/healthz",
                timeout=startup_timeout(env),
            )
        except BaseException:
            operator.stop()
            raise
        if self.py_spy:
            runs = len(list(self.state_dir.glob(f"py-spy-{sim_name}-*.raw")))
            operator.samples = self.state_dir / f"py-spy-{sim_name}-{runs + 1}.raw"
            operator.sampler = pyspy.attach(proc.pid, operator.samples)
        return operator


@contextlib.contextmanager
def stage(state_dir: Path, *, profile: bool = False, py_spy: bool = False) -> Iterator[Stage]:
    """A fresh control plane in ``state_dir`` (wiped first); everything stopped on exit."""
    state_dir = state_dir.resolve()
    if state_dir.exists():
        controlplane.stop(state_dir)
        _wipe(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    plane = controlplane.start(state_dir)
    print(f"   control plane up in {time.monotonic() - started:.1f}s", file=sys.stderr)
    current = Stage(state_dir, plane, profile=profile, py_spy=py_spy)
    try:
        yield current
    finally:
        current.record_simulator_cpu()
        for name in list(current.sims):
            vcsim.stop(state_dir, name)
        controlplane.stop(state_dir)


@contextlib.contextmanager
def running(operator: Operator) -> Iterator[Operator]:
    try:
        yield operator
    finally:
        operator.stop()


@dataclass(frozen=True)
class PeerRun:
    """A peer's run (Ansible, a govc loop): wall time, exit code, and its output's file."""

    seconds: float
    returncode: int
    log: Path


def run_peer(argv: list[str], env: dict[str, str], work: Path, log: Path) -> PeerRun:
    """Run a peer's command in ``work``, its output into ``log``, timed by the wall clock."""
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=work,
            check=False,
        )
    return PeerRun(time.monotonic() - started, proc.returncode, log)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wipe(path: Path) -> None:
    # Old etcd data, logs and simulator state; the binaries live in the cache, not here.
    shutil.rmtree(path, ignore_errors=True)
