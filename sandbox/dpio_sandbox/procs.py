"""Long-running sandbox processes: detached start, pidfiles, readiness waits, clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

# Children started by this Python process: kept so they are reaped by pid (no zombies, no
# ResourceWarning from a collected Popen), while other processes find them through pidfiles.
_children: dict[int, subprocess.Popen[bytes]] = {}


class ProcessError(RuntimeError):
    """A sandbox process did not start or stop; the message carries its log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_file(state_dir: Path, name: str) -> Path:
    return state_dir / "logs" / f"{name}.log"


def start(
    name: str, argv: Sequence[str], state_dir: Path, env: Mapping[str, str] | None = None
) -> int:
    """Start ``argv`` detached in its own session, output to ``logs/<name>.log``; return its pid.

    Its own session so that it outlives the caller (``make sandbox`` returns) and so that stop
    can signal the whole process group.
    """
    log = log_file(state_dir, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            start_new_session=True,
            cwd=state_dir,
        )
    _children[proc.pid] = proc
    # The start time makes the pidfile safe against pid reuse after a reboot or crash.
    _pidfile(state_dir, name).write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
    return proc.pid


def terminate(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM a child we started, SIGKILL it if it has not ended within `timeout`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def running(state_dir: Path, name: str) -> int | None:
    """Pid of ``name`` from its pidfile if that very process is still alive."""
    try:
        pid_text, started = _pidfile(state_dir, name).read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_text)
    return pid if _alive(pid) and _start_time(pid) == started else None


def stop(state_dir: Path, name: str, timeout: float = 10.0) -> None:
    """SIGTERM the process group of ``name``, SIGKILL it after ``timeout``, drop the pidfile."""
    pid = running(state_dir, name)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            if not _wait_gone(pid, 5.0):
                raise ProcessError(f"{name} (pid {pid}) survived SIGKILL")
    _pidfile(state_dir, name).unlink(missing_ok=True)


def wait_for_port(
    state_dir: Path, name: str, pid: int, port: int, *, timeout: float = 30.0
) -> None:
    """Wait until 127.0.0.1:``port`` accepts connections, failing fast if ``pid`` dies."""
    wait_until(
        state_dir,
        name,
        pid,
        timeout=timeout,
        what=f"port {port}",
        ready=lambda: not port_closed(port),
    )


def wait_for_url(
    state_dir: Path,
    name: str,
    pid: int,
    url: str,
    *,
    timeout: float = 60.0,
    context: ssl.SSLContext | None = None,
) -> None:
    """Wait until ``url`` answers 200 (e.g. ``/readyz``), failing fast if ``pid`` dies."""

    def ok() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    wait_until(state_dir, name, pid, timeout=timeout, what=url, ready=ok)


def port_closed(port: int) -> bool:
    """True if nothing accepts connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait_closed(ports: Sequence[int], timeout: float = 5.0) -> None:
    """Wait until nothing listens on ``ports`` any more; raise naming those still open."""
    deadline = time.monotonic() + timeout
    while still_open := [p for p in ports if not port_closed(p)]:
        if time.monotonic() > deadline:
            raise ProcessError(f"ports still listening after stop: {still_open}")
        time.sleep(0.1)


def log_tail(state_dir: Path, name: str, lines: int = 20) -> str:
    try:
        text = log_file(state_dir, name).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    state_dir: Path, name: str, pid: int, *, timeout: float, what: str, ready: Callable[[], bool]
) -> None:
    """Wait until ``ready()``, failing fast (with the log's tail) if ``pid`` dies or at timeout."""
    deadline = time.monotonic() + timeout
    while not ready():
        if not _alive(pid):
            problem = f"{name} exited before {what} was ready"
        elif time.monotonic() > deadline:
            problem = f"{name} not ready at {what} after {timeout:.0f}s"
        else:
            time.sleep(0.2)
            continue
        log = log_file(state_dir, name)
        raise ProcessError(f"{problem}; last lines of {log}:\n{log_tail(state_dir, name)}")


def _pidfile(state_dir: Path, name: str) -> Path:
    path = state_dir / "pids" / f"{name}.pid"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _start_time(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat: start time in clock ticks since boot ("" if gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:  # poll() reaps our own exited child
        del _children[pid]
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie is dead: someone else's child that its parent has yet to reap.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()  # already exited: this only reaps it
    return True
