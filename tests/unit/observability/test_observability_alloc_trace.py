"""DPIO_TRACEMALLOC_DIR: the allocation trace a benchmark asks for (alloc_trace.py)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from dpio.observability import alloc_trace


@pytest.fixture
def untraced() -> Iterator[None]:
    was = tracemalloc.is_tracing()
    yield
    if not was:
        tracemalloc.stop()


def test_nothing_is_traced_without_the_variable() -> None:
    assert alloc_trace.from_env({}) is None
    assert alloc_trace.from_env({alloc_trace.ENV: ""}) is None


def _hold() -> list[bytes]:
    return [bytes(4096) for _ in range(512)]  # 2 MiB, allocated on one line


def test_the_trace_names_the_line_that_holds_the_memory(tmp_path: Path, untraced: None) -> None:
    tracing = alloc_trace.from_env({alloc_trace.ENV: str(tmp_path / "out")})
    assert tracing is not None
    assert tracemalloc.is_tracing()
    held = _hold()
    path = tracing.dump()
    assert path is not None
    assert path.parent == tmp_path / "out"
    text = path.read_text()
    assert text.startswith("traced now ")
    by_line = text.split("## top 30 by lineno")[1].split("##")[0]
    top = by_line.strip().splitlines()[0]
    assert "test_observability_alloc_trace.py" in top  # the 2 MiB of `_hold` come first
    assert float(top.split()[0]) >= 2.0
    assert "## top 15 call paths" in text
    assert len(held) == 512


def test_an_unwritable_directory_is_a_warning_not_a_crash(tmp_path: Path, untraced: None) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    tracing = alloc_trace.from_env({alloc_trace.ENV: str(blocker / "sub")})
    assert tracing is not None
    assert tracing.dump() is None
