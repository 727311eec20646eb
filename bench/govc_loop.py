"""The VM job done without the operator, as an administrator would script it: a shell loop that,
for each VM, runs `govc device.pci.add` with its GPU, then `govc vm.change` with the full memory
reservation passthrough needs (and the 64-bit MMIO settings when the GPU's BAR needs them,
docs/mmio.md). govc is built from govmomi's modules at the simulator's version
(`dpio_sandbox.govc`), so both sides speak to the same simulator code.

The loop runs one VM after the other, as `for vm in ...; do ...; done` does: that is the peer an
administrator has, not a tuned parallel tool."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import stage
from dpio_sandbox import govc
from dpio_sandbox.vcsim import Simulator

#: One device whose BAR is larger than this needs 64-bit MMIO (docs/mmio.md); each VM here gets
#: one device, so the sum rule (more than 32 GB together) never applies.
LARGE_BAR_GB = 16


@dataclass(frozen=True)
class Job:
    """One VM's part of the job: its inventory path, the GPU's host address, the memory to
    reserve and the GPU's BAR size (0 when small)."""

    vm_path: str
    address: str
    memory_mb: int
    mmio_gb: int


def script(jobs: Sequence[Job]) -> str:
    """The bash script: two govc commands per VM, stopping at the first failure."""
    lines = ["#!/usr/bin/env bash", "set -euo pipefail"]
    for job in jobs:
        vm = shlex.quote(job.vm_path)
        lines.append(f"govc device.pci.add -vm {vm} {shlex.quote(job.address)}")
        change = f"govc vm.change -vm {vm} -mem.reservation {job.memory_mb}"
        if job.mmio_gb > LARGE_BAR_GB:
            size = mmio_size(job.mmio_gb)
            change += f" -e pciPassthru.use64bitMMIO=TRUE -e pciPassthru.64bitMMIOSizeGB={size}"
        lines.append(change)
    return "\n".join(lines) + "\n"


def mmio_size(gb: int) -> int:
    """The smallest power of two that holds ``gb`` (what the VMware guidance asks for)."""
    size = 1
    while size < gb:
        size *= 2
    return size


def run(sim: Simulator, work: Path, text: str) -> stage.PeerRun:
    """Run the script with govc on PATH, pointed at ``sim``; session cache under ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "loop.sh"
    path.write_text(text)
    log = work / "govc.log"
    env = govc.env(sim)
    env["PATH"] = f"{govc.binary().parent}:{env['PATH']}"
    env["HOME"] = str(work / "home")  # govc keeps its session cache here, as on a workstation
    return stage.run_peer(["bash", str(path)], env, work, log)


def available() -> str | None:
    """None when govc can be built here, else why not (the comparison is then reported missing)."""
    try:
        govc.binary()
    except (OSError, subprocess.CalledProcessError, govc.GovcError) as err:
        return str(err)
    if not os.access(govc.binary(), os.X_OK):
        return f"{govc.binary()} is not executable"
    return None
