"""Giving freed memory back: the rate limit, and the real glibc calls where there is glibc."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from dpio.observability import memory


def test_trimmer_releases_at_most_once_per_interval() -> None:
    now = [100.0]
    released: list[float] = []

    def release() -> bool:
        released.append(now[0])
        return True

    trimmer = memory.Trimmer(min_interval=5.0, monotonic=lambda: now[0], release=release)
    for t in (100.0, 101.0, 104.9, 105.0, 109.0, 111.0):
        now[0] = t
        trimmer()
    assert released == [100.0, 105.0, 111.0]
    assert trimmer.calls == 3


glibc = pytest.mark.skipif(not memory.available(), reason="the C library is not glibc")


@glibc
def test_tune_fixes_the_thresholds_and_trim_returns_a_freed_heap() -> None:
    assert memory.tune()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    # 64 MiB in blocks under the (now fixed) mmap threshold: they come from the heap.
    blocks = [libc.malloc(64 * 1024) for _ in range(1024)]
    for block in blocks:
        ctypes.memset(block, 1, 64 * 1024)  # touched, so resident
    for block in blocks[:-1]:  # the last one pins the heap's top: only trim can give back
        libc.free(block)
    before = _rss_kib()
    assert memory.trim()
    assert before - _rss_kib() > 32 * 1024  # most of the freed 64 MiB went back
    libc.free(blocks[-1])


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")
