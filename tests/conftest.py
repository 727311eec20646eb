"""Shared fixtures. The sandbox is started by the same code as ``make sandbox``, once per session,
in a state directory of its own, and stopped at the end; simulators for tests that change the
inventory are started per test from ``vcsim_factory``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dpio_sandbox import sandbox as sandbox_mod
from dpio_sandbox import vcsim

SimulatorFactory = Callable[..., vcsim.Simulator]


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sandbox_mod.Sandbox]:
    """Running kube-apiserver, etcd, kube-controller-manager and dpio-vcsim (default inventory)."""
    state_dir = tmp_path_factory.mktemp("sandbox")
    try:
        yield sandbox_mod.up(state_dir)
    finally:
        sandbox_mod.down(state_dir)


@pytest.fixture
def vcsim_factory(tmp_path: Path) -> Iterator[SimulatorFactory]:
    """Start simulators with their own inventory (a path or YAML text); stopped after the test."""
    started: list[str] = []

    def start(inventory: Path | str = vcsim.DEFAULT_INVENTORY, **kwargs: str) -> vcsim.Simulator:
        if isinstance(inventory, str):
            path = tmp_path / f"inventory-{len(started)}.yaml"
            path.write_text(inventory)
            inventory = path
        name = f"vcsim-{len(started)}"
        started.append(name)
        return vcsim.start(tmp_path, name=name, inventory=inventory, **kwargs)

    try:
        yield start
    finally:
        for name in started:
            vcsim.stop(tmp_path, name)
