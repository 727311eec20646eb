"""The py-spy summary: shares of all samples, by own frame and by every frame a sample is under."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench import pyspy

RAW = [
    "process 1:main (/v/runpy.py:198);_run (/app/dpio/reconcile/queue.py:120);"
    "derive (/app/dpio/reconcile/assignment/others.py:80) 30",
    "process 1:main (/v/runpy.py:198);_run (/app/dpio/reconcile/queue.py:120);"
    "derive (/app/dpio/reconcile/assignment/others.py:91) 10",
    "thread 0x7f (/v/threading.py:1);read (/v/pyVmomi/SoapAdapter.py:10) 60",
    "not a stack line",
]


def test_summary_counts_own_and_inclusive_samples_per_function() -> None:
    text = pyspy.summarize(RAW)
    assert text.startswith("100 samples at 50/s (2.0 s holding the GIL)")
    own, inclusive = text.split("top 40 by inclusive samples:")
    # one line per function, whatever line of it a sample was on
    assert "40.0%       40  derive (assignment/others.py)" in own
    assert "60.0%       60  read (pyVmomi/SoapAdapter.py)" in own
    assert "_run (reconcile/queue.py)" not in own.split("derive")[0]
    assert "40.0%       40  _run (reconcile/queue.py)" in inclusive


def test_no_samples_says_so() -> None:
    assert pyspy.summarize([]) == "no samples\n"


def test_a_raw_file_with_bytes_that_are_not_utf8_is_still_summarized(tmp_path: Path) -> None:
    """py-spy wrote such a frame name in a 5,000-assignment run, and the run's figures were
    lost with the exception."""
    raw = tmp_path / "py-spy-vcsim-1.raw"
    raw.write_bytes("\n".join(RAW).encode() + b"\nprocess 1:bad\xf9name (/v/x.py:1) 5\n")
    done = subprocess.Popen(["true"])
    done.wait()
    summary = pyspy.finish(done, raw)
    assert summary is not None
    assert summary.read_text().startswith("105 samples at 50/s")
