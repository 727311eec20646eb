"""A scale curve drawn as an SVG next to the JSON: time to converge, vCenter calls per object and
the operator's peak RSS against the object count, each beside the linear extrapolation from the
smallest size, so a reader sees at once where a curve bends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("svg")  # no display here; chosen before pyplot is imported

import matplotlib.pyplot as plt

plt.rcParams["svg.fonttype"] = "none"  # text stays text: smaller files, searchable labels

#: (figure key, axis label, whether a linear curve is the reference)
PANELS = (
    ("seconds", "create → all converged (s)", True),
    ("calls_per_object", "vCenter calls per object", False),
    ("peak_rss_mib", "operator peak RSS (MiB)", False),
)


def curve(title: str, runs: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Draw ``runs`` (scale figures, one per size); None when no size finished."""
    done = [r for r in runs if r.get("seconds") is not None]
    if not done:
        return None
    objects = [int(r["objects"]) for r in done]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.4))
    for ax, (key, label, linear) in zip(axes, PANELS, strict=True):
        values = [float(r[key]) for r in done]
        ax.plot(objects, values, marker="o", label="measured")
        if linear and len(done) > 1:
            base = values[0] / objects[0]
            ax.plot(objects, [base * n for n in objects], linestyle="--", label="linear")
            ax.legend(fontsize="small")
        ax.set_ylim(bottom=0)  # a change of 0.3 MiB must not look like a cliff
        ax.set_xscale("log")
        ax.set_xlabel("objects")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Date": None})  # no timestamp: reruns differ only by figures
    plt.close(fig)
    return path
