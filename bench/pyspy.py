"""A py-spy sampling profile of the operator's Python CPU time (whichever thread holds the GIL:
kopf's event loop or a pyVmomi worker thread), for `python -m bench --py-spy`.

py-spy (pinned in the dev dependencies) attaches to the running operator by pid and writes
collapsed stacks ("frame;frame;frame count" per line) when the operator exits; `summarize` turns
them into the two tables a reader wants: where the samples are (self) and which calls they are
under (inclusive), as shares of all samples.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

#: Samples per second: enough for a minutes-long run, light on a 2-core machine.
RATE = 50


def executable() -> str | None:
    """py-spy next to this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def attach(pid: int, raw: Path) -> subprocess.Popen[bytes] | None:
    """Start sampling `pid` into `raw` (collapsed stacks); None, said on stderr, without py-spy."""
    exe = executable()
    if exe is None:
        print("   py-spy not found: `make venv` installs it (dev dependencies)", file=sys.stderr)
        return None
    argv = [exe, "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw"]
    # --gil: only the thread holding the GIL, i.e. Python's CPU time, not threads blocked on a
    # socket or a queue (which py-spy does not always tell from running ones).
    argv += ["--gil", "--nonblocking", "--output", str(raw)]
    log = raw.with_suffix(".log").open("wb")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def finish(sampler: subprocess.Popen[bytes], raw: Path) -> Path | None:
    """Once the operator has exited: wait for py-spy to write, then summarize next to `raw`."""
    try:
        sampler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        sampler.terminate()
        sampler.wait()
    if not raw.exists():
        return None
    summary = raw.with_suffix(".txt")
    # py-spy may write a frame name it read half-way (a thread changing under it) as bytes that
    # are not UTF-8: such a frame is kept, replaced, rather than losing the run's figures (a
    # 5,000-assignment run was lost so).
    summary.write_text(summarize(raw.read_text(errors="replace").splitlines()))
    return summary


def summarize(lines: list[str], top: int = 40) -> str:
    """Top frames by self and by inclusive samples, with their share of all samples."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            under[frame] += count
    if total == 0:
        return "no samples\n"
    out = [f"{total} samples at {RATE}/s ({total / RATE:.1f} s holding the GIL)", ""]
    for title, counts in (("self", own), ("inclusive", under)):
        out.append(f"top {top} by {title} samples:")
        for frame, count in counts.most_common(top):
            out.append(f"  {100 * count / total:5.1f}%  {count:7d}  {frame}")
        out.append("")
    return "\n".join(out)


def _short(frame: str) -> str:
    """`func (path/to/module.py:123)` -> `func (module.py)`: lines split one function's samples.
    A thread's root frame ("process 12:..." / "thread 0x..") is kept as it is."""
    name, sep, where = frame.partition(" (")
    if not sep:
        return frame
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    return f"{name} ({'/'.join(parts[-2:])})"
