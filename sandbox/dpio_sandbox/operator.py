"""The operator as a subprocess, started as `make run` starts it: the demo and the end-to-end
tests share this one way of running it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from dpio_sandbox import install, procs
from dpio_sandbox.sandbox import Sandbox


@contextmanager
def running(
    box: Sandbox, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The operator against `box` (its namespace and default Secret from `install`), `env` on
    top; returns once its liveness endpoint answers, stopped (SIGTERM, then SIGKILL) on exit."""
    port = procs.free_port()
    full_env = {
        **os.environ,
        **box.env(),
        "DPIO_NAMESPACE": install.NAMESPACE,
        "DPIO_VCENTER_SECRET": install.SECRET,
        **(env or {}),
    }
    argv = [
        sys.executable,
        "-m",
        "dpio.handlers.main",
        "--standalone",
        f"--liveness=http://127.0.0.1:{port}/healthz",
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        procs.wait_for_url(log.parent, "operator", proc.pid, f"http://127.0.0.1:{port}/healthz")
        yield proc
    finally:
        procs.terminate(proc)
