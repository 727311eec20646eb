"""The conformance suite's simulators (default and generated inventory, one each per session)
and its report: properties read, govc commands run, failures, printed at the end of the run."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.vsphere.conformance.reading import Report

from dpio_sandbox import vcsim

#: The generated inventory: small, so the suite stays within a few minutes on 2 busy cores.
GENERATE = [
    "--hosts",
    "4",
    "--devices-per-host",
    "2",
    "--vms",
    "6",
    "--clusters",
    "2",
    "--folders",
    "2",
]

REPORT = Report()


@dataclass
class Target:
    """A running simulator and the inventory it was loaded from (parsed YAML)."""

    name: str
    sim: vcsim.Simulator
    inventory: dict[str, Any]


@pytest.fixture(scope="session")
def report() -> Report:
    return REPORT


@pytest.fixture(scope="session", params=["default", "generated"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    state = tmp_path_factory.mktemp(f"conformance-{request.param}")
    if request.param == "default":
        path = vcsim.DEFAULT_INVENTORY
    else:
        path = state / "generated.yaml"
        out = subprocess.run(
            [str(vcsim.binary()), "generate", *GENERATE], capture_output=True, text=True, check=True
        )
        path.write_text(out.stdout)
    sim = vcsim.start(state, name="conformance", inventory=path)
    try:
        yield Target(request.param, sim, yaml.safe_load(Path(path).read_text()))
    finally:
        vcsim.stop(state, "conformance")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT.properties_read or REPORT.govc_commands:
        terminalreporter.write_line(REPORT.summary())
