"""The vCenter side: the simulator's call counters, and raw pyVmomi for out-of-band changes
(what an administrator does by hand in the vSphere Client), kept apart from the operator's code."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from dpio_sandbox import vcsim
from dpio_sandbox.vcsim import Simulator

_PC: Any = vmodl.query.PropertyCollector


#: vCenter methods that change something (docs/design.md, "Performance targets"): a steady
#: state and a restart over converged objects make none of them.
WRITE_METHODS = vcsim.WRITE_METHODS


def counters(sim: Simulator) -> dict[str, int]:
    raw: Any = sim.admin("GET", "/counters")
    return {str(k): int(v) for k, v in raw["counts"].items()}


def reset(sim: Simulator) -> None:
    sim.admin("POST", "/counters/reset")


def total(counts: dict[str, int], *, skip: tuple[str, ...] = ()) -> int:
    return sum(n for method, n in counts.items() if method not in skip)


@contextmanager
def connect(sim: Simulator) -> Iterator[Any]:
    url = urlparse(sim.sdk_url)
    ctx = ssl.create_default_context(cafile=str(sim.ca_file))
    si = SmartConnect(  # type: ignore[no-untyped-call]
        host=url.hostname, port=url.port, user=sim.username, pwd=sim.password, sslContext=ctx
    )
    try:
        yield si
    finally:
        Disconnect(si)  # type: ignore[no-untyped-call]


def find_host(si: Any, name: str) -> Any:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        for host in view.view:
            if host.name == name:
                return host
    finally:
        view.Destroy()
    raise LookupError(f"host {name} not found")


def set_passthru(host: Any, address: str, enabled: bool) -> None:
    """What the vSphere Client's "Toggle passthrough" does: one UpdatePassthruConfig."""
    config = vim.host.PciPassthruConfig(  # type: ignore[no-untyped-call]
        id=address, passthruEnabled=enabled
    )
    host.configManager.pciPassthruSystem.UpdatePassthruConfig([config])


def passthru_enabled(si: Any, host: Any, address: str) -> bool:
    """`config.pciPassthruInfo[address].passthruEnabled`, read in one RetrievePropertiesEx."""
    collector = si.RetrieveContent().propertyCollector
    spec = _PC.FilterSpec(
        objectSet=[_PC.ObjectSpec(obj=host, skip=False)],
        propSet=[_PC.PropertySpec(type=vim.HostSystem, pathSet=["config.pciPassthruInfo"])],
    )
    result = collector.RetrievePropertiesEx([spec], _PC.RetrieveOptions())
    for prop in result.objects[0].propSet:
        for info in prop.val:
            if info.id == address:
                return bool(info.passthruEnabled)
    raise LookupError(f"{address} not in pciPassthruInfo")
