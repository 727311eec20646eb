"""DPIO_MEMORY_REPORT_DIR: what holds the operator's memory, written when it stops
(memory_report.py)."""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path

import pytest

from dpio.observability import memory, memory_report


class Part:
    def __init__(self, payload: object) -> None:
        self.payload = payload
        self.other = {"small": 1}


class Holder:
    def __init__(self, big: Part, small: Part) -> None:
        self.big = big
        self.small = small


def _blob(mib: int) -> list[bytes]:
    return [bytes(1024) for _ in range(mib * 1024)]


def test_nothing_is_reported_without_the_variable() -> None:
    assert memory_report.from_env({}) is None
    assert memory_report.from_env({memory_report.ENV: ""}) is None


def test_a_part_retains_what_only_it_reaches() -> None:
    blob = _blob(2)
    walk = memory_report.Walk.new()
    count, size = walk.retained(Part(blob))
    assert count >= 2 * 1024 + 2  # the part, its list and every bytes object
    assert size >= 2 * 2**20


def test_an_object_two_parts_reach_counts_for_the_first() -> None:
    shared = _blob(1)
    walk = memory_report.Walk.new()
    _, first = walk.retained(Part(shared))
    _, second = walk.retained(Part(shared))
    assert first >= 2**20
    assert second < 10_000  # the second part and its own small dict only


def test_modules_classes_and_their_globals_are_not_a_parts_data() -> None:
    walk = memory_report.Walk.new()
    count, size = walk.retained([sys.modules["json"], Part, memory_report.report])
    # The list and the function; not json's module dict nor what the function's globals hold.
    assert count <= 4
    assert size < 2_000


def test_a_way_into_everything_is_not_walked() -> None:
    loop = asyncio.new_event_loop()
    try:
        task_data = _blob(1)
        handle = loop.call_later(3600, task_data.clear)  # the loop holds a way to the blob
        walk = memory_report.Walk.new()
        _, size = walk.retained(Part((loop, lambda: task_data)))
        assert size < 100_000
        handle.cancel()
    finally:
        loop.close()


def test_a_part_is_broken_down_by_its_attributes() -> None:
    holder = Holder(Part(_blob(1)), Part(None))
    named = dict(memory_report.parts("runtime.x", holder))
    assert named["runtime.x.big"] is holder.big
    assert named["runtime.x.small"] is holder.small
    assert named["runtime.x"] is holder
    assert list(named)[-1] == "runtime.x"  # the rest of it, after its attributes


def test_a_bound_method_stands_for_its_object() -> None:
    part = Part(_blob(1))
    named = dict(memory_report.parts("runtime.run", part.__init__, depth=1))
    assert named["runtime.run.payload"] is part.payload
    assert named["runtime.run"] is part


_MODULE_CACHE = {"held": _blob(1)}


def test_module_globals_are_parts_of_their_package() -> None:
    roots = memory_report.module_roots()
    assert _MODULE_CACHE in roots[f"modules: {__name__.partition('.')[0]}"]  # type: ignore[operator]
    walk = memory_report.Walk.new()
    _, size = walk.retained(_MODULE_CACHE)
    assert size >= 2**20


def test_the_census_does_not_count_itself() -> None:
    rows = memory_report.census(limit=1000)
    ints = sum(size for kind, _, size in rows if kind == "int")
    held = [10**30 + i for i in range(50_000)]  # 50,000 ints a container holds
    rows = memory_report.census(limit=1000)
    more = sum(size for kind, _, size in rows if kind == "int") - ints
    # The list's ints; not the census's own set of ids (as many ints as every object).
    assert 50_000 * 28 <= more < 2 * 50_000 * 36
    assert len(held) == 50_000


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_garbage_in_reference_cycles_is_counted_by_type_and_freed() -> None:
    gc.collect()
    for _ in range(10):
        _Cycle()
    found = memory_report.uncollected()
    assert found["_Cycle"] == 10
    assert gc.garbage == []
    assert memory_report.uncollected()["_Cycle"] == 0


def test_pymalloc_figures_are_read_from_its_statistics() -> None:
    text = (
        "Small block threshold = 512, in 32 size classes.\n"
        "# arenas allocated current     =                 12\n"
        "# bytes in allocated blocks    =          9,437,184\n"
        "# bytes in available blocks    =            262,144\n"
        "Total                          =         12,582,912\n"
    )
    assert memory_report.parse_pymalloc(text) == {
        "arenas": 12,
        "allocated": 9_437_184,
        "available": 262_144,
        "total": 12_582_912,
    }


def test_pymalloc_figures_come_from_this_interpreter() -> None:
    if not hasattr(sys, "_debugmallocstats"):
        pytest.skip("this interpreter has no pymalloc statistics")
    figures = memory_report.pymalloc_bytes()
    assert figures["allocated"] > 0
    assert figures["total"] >= figures["allocated"]


def test_the_report_names_the_part_that_holds_the_memory(tmp_path: Path) -> None:
    holder = Holder(Part(_blob(3)), Part(None))
    reporting = memory_report.from_env({memory_report.ENV: str(tmp_path / "out")})
    assert reporting is not None
    path = reporting.dump({"runtime.holder": holder, "other": [1, 2, 3]})
    assert path is not None
    assert path.parent == tmp_path / "out"
    text = path.read_text()
    retained = text.split("## retained by part")[1].split("##")[0].strip().splitlines()
    big = next(line for line in retained if line.endswith("runtime.holder.big.payload"))
    assert float(big.split()[0]) >= 3.0
    assert not any(line.endswith("runtime.holder.small") for line in retained)  # < 0.1 MiB
    by_type = text.split("## live objects by type")[1]
    assert " bytes" in by_type
    if memory.available():
        assert "uordblks" in text.split("## glibc mallinfo2")[1].split("##")[0]
        assert "VmRSS" in text.split("## process")[1].split("##")[0]


def test_an_unwritable_directory_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    reporting = memory_report.Reporting(blocker / "out")
    assert reporting.dump({"x": [1]}) is None
