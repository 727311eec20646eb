"""Keep the process's resident memory close to what it really uses (target: ≤ 200 MiB RSS,
docs/design.md, "Performance targets").

CPython hands every block over 512 bytes (SOAP response bodies, parsed inventories, JSON of
watch events) to the C allocator, and glibc's keeps what is freed. Two habits of glibc keep RSS
at the high-water mark of the last burst, measured in docs/benchmarks.md ("Memory"):

- the *dynamic mmap threshold*: once a large block has been freed, glibc raises the size above
  which blocks get their own mapping, so the next large blocks come from the heap and stay
  there. Fixing `M_MMAP_THRESHOLD` (what `MALLOC_MMAP_THRESHOLD_` does) keeps them mapped, and
  given back to the system when freed;
- free space in the middle of the heap is only given back by `malloc_trim`.

`tune()` fixes the thresholds once at start and `trim()` gives back what importing left behind
(~50 MiB of the 133 MiB that importing the operator takes); `trimmer` runs after every
reconcile and calls `malloc_trim(0)` at most once per `min_interval`, so while reconciles run
what they freed goes back, and in a steady state (no reconciles) it costs nothing. Both do nothing
where the C library is not glibc (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable
from typing import Any

_log = logging.getLogger(__name__)
# mallopt(3) parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: glibc's default starting threshold; fixed, it no longer grows with the blocks freed.
MMAP_THRESHOLD_BYTES = 128 * 1024


def _glibc() -> Any | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


_LIBC = _glibc()


def libc() -> Any | None:
    """glibc, loaded with ctypes; None where the C library is not glibc."""
    return _LIBC


def available() -> bool:
    """Is the C library glibc (has `malloc_trim` and `mallopt`)?"""
    return _LIBC is not None


def tune() -> bool:
    """Fix glibc's mmap and trim thresholds; False where there is nothing to tune."""
    if _LIBC is None:
        return False
    ok = bool(_LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    ok = bool(_LIBC.mallopt(M_TRIM_THRESHOLD, MMAP_THRESHOLD_BYTES)) and ok
    if not ok:
        _log.warning("mallopt refused the allocator thresholds; memory is not tuned")
    return ok


def trim() -> bool:
    """Give the free parts of the heap back to the system; True when some were given back."""
    return _LIBC is not None and bool(_LIBC.malloc_trim(0))


class Trimmer:
    """`trim()` on demand, at most once per `min_interval` seconds (a few ms per call)."""

    def __init__(
        self,
        min_interval: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        release: Callable[[], bool] = trim,
    ) -> None:
        self.min_interval = min_interval
        self._monotonic = monotonic
        self._release = release
        self._last: float | None = None
        self.calls = 0

    def __call__(self) -> None:
        now = self._monotonic()
        if self._last is not None and now - self._last < self.min_interval:
            return
        self._last = now
        self.calls += 1
        self._release()


#: One per process: both work queues share it.
trimmer = Trimmer()
