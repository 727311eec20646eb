"""What holds the operator's memory, for benchmarks: `DPIO_MEMORY_REPORT_DIR=<dir>` writes
`<dir>/memory-<pid>.txt` when the operator stops, while its caches still hold a converged
fleet. Unlike `alloc_trace` nothing is traced while the operator runs: the report is taken at
the end, in a few seconds, so a 5,000-object run costs what an untraced one does.

It answers, in this order (docs/benchmarks.md, "Memory"):
- the process: resident memory by kind (`/proc/self/smaps_rollup`, `status`), then again after
  `gc.collect()` and after `malloc_trim(0)`: garbage not yet collected, and memory freed but
  kept by the C allocator;
- the allocators: glibc's `mallinfo2` (heap in use, free, mapped) and CPython's small-object
  allocator (pymalloc's arenas, `sys._debugmallocstats`);
- the live Python objects: by type, and retained by each of the operator's parts (the roots
  the caller names, in order: an object reachable from two roots counts for the first), then
  by every module's globals, by top-level package (library caches and registries). Modules,
  classes, code, functions, event loops and threads are not walked, so a part's figure is its
  own data; what only a closure holds is in the census but in no part.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import gc
import logging
import os
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FunctionType, MethodType, ModuleType
from typing import Any

from dpio.observability import memory

_log = logging.getLogger(__name__)

ENV = "DPIO_MEMORY_REPORT_DIR"
TOP = 40
_MIB = 2**20
_PROC_KEYS = ("Rss", "Pss", "Anonymous", "Private_Dirty", "Shared_Clean", "Swap")
_STATUS_KEYS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


def _kib_table(path: str, keys: Iterable[str]) -> dict[str, int]:
    """`key: N kB` lines of a /proc file, in KiB; empty where there is no such file."""
    wanted, found = set(keys), {}
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if key in wanted and len(parts) == 2 and parts[1] == "kB":
                    found[key] = int(parts[0])
    except OSError:
        return {}
    return found


def process_kib() -> dict[str, int]:
    """This process's resident memory by kind, in KiB (Linux; empty elsewhere)."""
    return {
        **_kib_table("/proc/self/status", _STATUS_KEYS),
        **_kib_table("/proc/self/smaps_rollup", _PROC_KEYS),
    }


#: `struct mallinfo2` of <malloc.h>, every field a size_t.
_MALLINFO2 = (
    "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
    "fsmblks", "uordblks", "fordblks", "keepcost",
)  # fmt: skip


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2]


def mallinfo() -> dict[str, int]:
    """glibc's `mallinfo2()` in bytes: `arena` (heap obtained with brk), `hblkhd` (mmapped
    blocks), `uordblks` (in use), `fordblks` (free but kept); empty where there is none."""
    libc = memory.libc()
    fn = getattr(libc, "mallinfo2", None) if libc is not None else None
    if fn is None:
        return {}
    fn.restype = _MallInfo2
    info = fn()
    return {name: int(getattr(info, name)) for name in _MALLINFO2}


def pymalloc_bytes(stats: Callable[[], object] | None = None) -> dict[str, int]:
    """pymalloc's arenas (blocks of 512 bytes or less live there): parsed from
    `sys._debugmallocstats()`, which writes to the C stderr, so file descriptor 2 is pointed at
    a temporary file while it runs. Empty if the interpreter has no such statistics."""
    stats = stats or getattr(sys, "_debugmallocstats", None)
    if stats is None:
        return {}
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            stats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        return parse_pymalloc(out.read().decode("utf-8", "replace"))


def parse_pymalloc(text: str) -> dict[str, int]:
    """The figures of `sys._debugmallocstats()` that say how pymalloc's memory is used."""
    wanted = {
        "# arenas allocated current": "arenas",
        "# bytes in allocated blocks": "allocated",
        "# bytes in available blocks": "available",
        "# bytes lost to pool headers": "pool_headers",
        "# bytes lost to quantization": "quantization",
        "# bytes lost to arena alignment": "alignment",
        "Total": "total",
    }
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        name = wanted.get(key.strip())
        if sep and name and name not in found:
            with contextlib.suppress(ValueError):
                found[name] = int(value.strip().replace(",", ""))
    return found


#: Not walked, not counted: shared by the whole interpreter (modules, classes, code), or a way
#: into everything (an event loop reaches every task, a task or future its callbacks and the
#: context it was made in, a thread every frame, a function's closure whatever it was made
#: with) rather than a part's own data.
_BOUNDARIES = (
    ModuleType, type, CodeType, FunctionType, asyncio.AbstractEventLoop, asyncio.Future,
    contextvars.Context, threading.Thread,
)  # fmt: skip


def _is_boundary(obj: object, module_dicts: set[int]) -> bool:
    return isinstance(obj, _BOUNDARIES) or id(obj) in module_dicts


@dataclass
class Walk:
    """Live objects reachable from named roots, each counted once (for the first root that
    reaches it), with `sys.getsizeof` sizes."""

    seen: set[int]
    module_dicts: set[int]

    @classmethod
    def new(cls) -> Walk:
        dicts = {id(vars(m)) for m in list(sys.modules.values()) if isinstance(m, ModuleType)}
        return cls(set(), dicts)

    def retained(self, root: object) -> tuple[int, int]:
        """(objects, bytes) reachable from `root` and not reached before."""
        count = size = 0
        stack = [root]
        while stack:
            obj = stack.pop()
            if id(obj) in self.seen or _is_boundary(obj, self.module_dicts):
                continue
            self.seen.add(id(obj))
            count += 1
            size += _sizeof(obj)
            stack.extend(gc.get_referents(obj))
        return count, size


def _sizeof(obj: object) -> int:
    try:
        return sys.getsizeof(obj)
    except TypeError:  # some extension objects have no size
        return 0


def parts(name: str, obj: object, depth: int = 4) -> Iterator[tuple[str, object]]:
    """`obj`'s attributes as named parts (`name.attr`), broken down `depth` levels, each level
    followed by its object itself for the rest. A bound method stands for its object."""
    if isinstance(obj, MethodType):
        obj = obj.__self__
    if depth > 0:
        for attr, value in _attributes(obj).items():
            if not isinstance(value, int | float | str | bool | type(None)):
                yield from parts(f"{name}.{attr}", value, depth - 1)
    yield name, obj


def _attributes(obj: object) -> dict[str, Any]:
    if _is_boundary(obj, set()):
        return {}
    attrs: dict[str, Any] = {}
    with contextlib.suppress(TypeError):
        attrs.update(vars(obj))
    for klass in type(obj).__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if slot not in attrs and hasattr(obj, slot):
                attrs[slot] = getattr(obj, slot)
    return attrs


def module_roots() -> dict[str, object]:
    """Every module's globals by top-level package (`modules: kopf`): what is held outside the
    operator's parts, in caches and registries of libraries and of modules of our own."""
    roots: dict[str, list[object]] = {}
    for module_name, module in list(sys.modules.items()):
        if isinstance(module, ModuleType):
            package = module_name.partition(".")[0]
            roots.setdefault(f"modules: {package}", []).extend(vars(module).values())
    return dict(roots)


def uncollected() -> Counter[str]:
    """A full collection, and what it freed by type: garbage in reference cycles, which
    reference counting alone never frees."""
    flags = gc.get_debug()
    gc.set_debug(flags | gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = Counter(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.garbage.clear()
        gc.set_debug(flags)
    gc.collect()  # now freed for real
    return found


def census(limit: int = TOP) -> list[tuple[str, int, int]]:
    """Objects the garbage collector tracks (containers) and the strings, bytes and numbers
    they hold directly, by type: (type, count, bytes), largest first."""
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    seen: set[int] = set()
    objects = gc.get_objects()
    seen.update((id(seen), id(objects), id(counts), id(sizes)))  # not the census's own
    for obj in objects:
        if id(obj) in seen:
            continue
        for item in (obj, *(r for r in gc.get_referents(obj) if not gc.is_tracked(r))):
            if id(item) in seen:
                continue
            seen.add(id(item))
            kind = type(item).__qualname__
            counts[kind] += 1
            sizes[kind] += _sizeof(item)
    return [(kind, counts[kind], size) for kind, size in sizes.most_common(limit)]


def report(roots: Mapping[str, object]) -> str:
    before = process_kib()
    lines = ["# memory report", "", "## process (KiB)", _fmt(before)]
    garbage = uncollected()
    collected = sum(garbage.values())
    after_gc = process_kib()
    trimmed = memory.trim()
    after_trim = process_kib()
    lines += [
        f"after gc.collect() ({collected} unreachable): {_fmt(after_gc)}",
        f"after malloc_trim(0) (gave back: {trimmed}): {_fmt(after_trim)}",
        "",
        "## what only the garbage collector could free (reference cycles), by type (top 15)",
        _fmt(dict(garbage.most_common(15))),
        "",
        "## glibc mallinfo2 (MiB)",
        _fmt({k: round(v / _MIB, 1) for k, v in mallinfo().items()}),
        "",
        "## pymalloc (MiB)",
        _fmt({k: round(v / _MIB, 1) for k, v in pymalloc_bytes().items()}),
        "",
        "## retained by part (first root wins; sys.getsizeof, MiB)",
    ]
    walk = Walk.new()
    total = 0
    for name, root in {**roots, **module_roots()}.items():
        for part, obj in parts(name, root):
            count, size = walk.retained(obj)
            total += size
            if size >= _MIB // 10:
                lines.append(f"{size / _MIB:9.2f} MiB {count:9d} objects  {part}")
    lines.append(f"{total / _MIB:9.2f} MiB in all parts")
    del walk  # its set of every object's id would top the census below
    lines += ["", f"## live objects by type (top {TOP}; sys.getsizeof, MiB)"]
    rows = census()
    lines += [f"{size / _MIB:9.2f} MiB {count:9d}  {kind}" for kind, count, size in rows]
    return "\n".join(lines) + "\n"


def _fmt(values: Mapping[str, object]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items()) or "(not available here)"


@dataclass(frozen=True)
class Reporting:
    directory: Path

    def dump(self, roots: Mapping[str, object]) -> Path | None:
        """Write the report; None (and a warning) when it cannot be written."""
        path = self.directory / f"memory-{os.getpid()}.txt"
        try:
            text = report(roots)
            self.directory.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except (OSError, ValueError) as err:
            _log.warning("Could not write the memory report", extra={"error": str(err)})
            return None
        _log.info("Wrote the memory report", extra={"path": str(path)})
        return path


def from_env(environ: Mapping[str, str] = os.environ) -> Reporting | None:
    directory = environ.get(ENV, "")
    return Reporting(Path(directory)) if directory else None
