"""Paged reads (properties.retrieve_flat): every page read, each passed through `keep` as it
arrives, and what a page parsed into let go before the next page is asked for."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from pyVmomi import vim, vmodl

from dpio.vsphere import properties
from dpio.vsphere.properties import ObjectProps

V: Any = vim
PC: Any = vmodl.query.PropertyCollector


def _content(name: str) -> Any:
    return PC.ObjectContent(
        obj=V.VirtualMachine(f"vm-{name}"),
        propSet=[vmodl.DynamicProperty(name="name", val=name)],
    )


class _Collector:
    """Answers in pages of `size`, with a token while more are left; remembers each page's
    objects weakly, to see which are still held when the next page is asked for."""

    def __init__(self, names: list[str], size: int) -> None:
        self.pages = [names[i : i + size] for i in range(0, len(names), size)]
        self.calls: list[str] = []
        self.alive_when_asked: list[int] = []
        self._refs: list[weakref.ref[Any]] = []

    def _answer(self, index: int) -> Any:
        gc.collect()
        self.alive_when_asked.append(sum(ref() is not None for ref in self._refs))
        contents = [_content(n) for n in self.pages[index]]
        self._refs = [weakref.ref(c) for c in contents]
        token = str(index + 1) if index + 1 < len(self.pages) else None
        return PC.RetrieveResult(objects=contents, token=token)

    def RetrievePropertiesEx(self, specs: list[Any], options: Any) -> Any:
        self.calls.append(f"RetrievePropertiesEx(maxObjects={options.maxObjects})")
        return self._answer(0)

    def ContinueRetrievePropertiesEx(self, token: str) -> Any:
        self.calls.append(f"ContinueRetrievePropertiesEx({token})")
        return self._answer(int(token))


def test_every_page_is_read_and_kept_as_keep_says() -> None:
    collector = _Collector([f"n{i}" for i in range(5)], size=2)

    def keep(obj: ObjectProps) -> ObjectProps:
        return ObjectProps(obj.kind, obj.moref, {"name": obj.get("name").upper()})

    found = properties.retrieve_flat(collector, spec=None, page_size=2, keep=keep)

    assert [o.get("name") for o in found] == ["N0", "N1", "N2", "N3", "N4"]
    assert collector.calls == [
        "RetrievePropertiesEx(maxObjects=2)",
        "ContinueRetrievePropertiesEx(1)",
        "ContinueRetrievePropertiesEx(2)",
    ]
    # What a page parsed into is gone (keep held none of it) before the next page comes.
    assert collector.alive_when_asked == [0, 0, 0]


def test_without_keep_the_objects_are_flattened_as_read() -> None:
    collector = _Collector(["a", "b"], size=10)
    found = properties.retrieve_flat(collector, spec=None)
    assert [(o.kind, o.moref, o.get("name")) for o in found] == [
        ("VirtualMachine", "vm-a", "a"),
        ("VirtualMachine", "vm-b", "b"),
    ]
    assert collector.calls == ["RetrievePropertiesEx(maxObjects=None)"]
