"""Raw pyVmomi helpers for the sandbox's own tests (the operator has its own adapter)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlparse

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from dpio_sandbox.vcsim import Simulator

T = TypeVar("T")


@contextmanager
def connect(sim: Simulator, context: ssl.SSLContext | None = None) -> Iterator[Any]:
    """A pyVmomi ServiceInstance that verifies the simulator against the sandbox CA."""
    url = urlparse(sim.sdk_url)
    ctx = context or ssl.create_default_context(cafile=str(sim.ca_file))
    si = SmartConnect(
        host=url.hostname, port=url.port, user=sim.username, pwd=sim.password, sslContext=ctx
    )
    try:
        yield si
    finally:
        Disconnect(si)


def find(si: Any, kind: type, name: str) -> Any:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    try:
        for obj in view.view:
            if obj.name == name:
                return obj
    finally:
        view.Destroy()
    raise LookupError(f"{kind.__name__} {name} not found")


def host_properties(si: Any, paths: list[str]) -> dict[str, dict[str, Any]]:
    """Every host's ``paths`` in one RetrievePropertiesEx, by host name."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[
            vmodl.query.PropertyCollector.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[
                    vmodl.query.PropertyCollector.TraversalSpec(
                        name="view", path="view", skip=False, type=vim.view.ContainerView
                    )
                ],
            )
        ],
        propSet=[
            vmodl.query.PropertyCollector.PropertySpec(
                type=vim.HostSystem, pathSet=["name", *paths]
            )
        ],
    )
    result = content.propertyCollector.RetrievePropertiesEx(
        [spec], vmodl.query.PropertyCollector.RetrieveOptions()
    )
    view.Destroy()
    hosts: dict[str, dict[str, Any]] = {}
    for obj in result.objects:
        props = {p.name: p.val for p in obj.propSet}
        hosts[props["name"]] = props
    return hosts


def wait_task(task: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while task.info.state in ("queued", "running"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task} still {task.info.state}")
        time.sleep(0.1)
    if task.info.state == "error":
        raise task.info.error
    return task.info.result


def eventually(check: Callable[[], T], timeout: float = 30, interval: float = 0.2) -> T:
    """Call ``check`` until it returns something truthy; fail with the last value at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        time.sleep(interval)
