"""``make demo``: the sandbox, the operator and ``examples/``, with their status as it evolves.

Steps, each reusing what ``make sandbox`` and ``make run`` use: start (or reuse) the sandbox,
install the CRDs and the vCenter Secret, run the operator as a subprocess with ``make run``'s
command, apply ``examples/*.yaml`` in file-name order, then print a ``kubectl get hpp,vmda``
style table whenever a column changes. The table's columns are the CRDs' own printer columns
(read from the API server), without Age, which would change every second.

``--once`` (for tests and CI) returns as soon as every object is settled, or fails after
``--timeout``; without it the operator keeps running until Ctrl-C and the sandbox stays up.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from dpio_sandbox import install
from dpio_sandbox import operator as dpio_operator
from dpio_sandbox.paths import REPO_ROOT
from dpio_sandbox.sandbox import Sandbox

EXAMPLES = REPO_ROOT / "examples"
KINDS = (("hostpassthroughpolicies", "HOSTPASSTHROUGHPOLICY"), ("vmdeviceassignments", "VMDA"))
#: An assignment the operator never writes status for (a build without the VM reconciler) stops
#: counting as "not settled" this long after every policy settled.
UNHANDLED_GRACE_SECONDS = 20.0


@dataclass(frozen=True)
class Table:
    """One rendered `kubectl get` of a kind, and whether its objects are all settled."""

    kind: str
    text: str
    pending: int  # objects with a status that is not settled yet
    unhandled: int  # objects without any status yet

    @property
    def settled(self) -> bool:
        return self.pending == 0 and self.unhandled == 0


def operator(box: Sandbox, log: Path) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """The operator, started as ``make run`` starts it, stopped (SIGTERM, then SIGKILL) on exit."""
    return dpio_operator.running(box, log)


def example_files(directory: Path = EXAMPLES) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def apply_examples(box: Sandbox, directory: Path = EXAMPLES) -> None:
    """Apply each example file in name order (the namespace before what lives in it)."""
    for path in example_files(directory):
        install.kubectl(box, "apply", "-f", str(path))


def delete_examples(box: Sandbox, directory: Path = EXAMPLES) -> None:
    """Delete in reverse order; waits until finalizers are gone (the operator must be running)."""
    for path in reversed(example_files(directory)):
        install.kubectl(box, "delete", "--ignore-not-found", "--timeout=120s", "-f", str(path))


def columns(box: Sandbox, plural: str) -> list[tuple[str, str]]:
    """(NAME, jsonPath) of the CRD's printer columns, without Age."""
    crd = json.loads(install.kubectl(box, "get", "crd", f"{plural}.dpio.io", "-o", "json"))
    version = crd["spec"]["versions"][0]
    return [
        (c["name"].upper().replace(" ", "-"), c["jsonPath"])
        for c in version.get("additionalPrinterColumns", [])
        if c["type"] != "date" and c.get("priority", 0) == 0
    ]


def _settled(item: dict[str, Any]) -> bool:
    status = item.get("status") or {}
    if status.get("observedGeneration") != item["metadata"].get("generation"):
        return False
    reconciling = [c for c in status.get("conditions", []) if c["type"] == "Reconciling"]
    return bool(reconciling) and reconciling[0]["status"] == "False"


def table(box: Sandbox, plural: str, title: str, cols: Sequence[tuple[str, str]]) -> Table:
    spec = ",".join(f"{name}:{path}" for name, path in [("NAME", ".metadata.name"), *cols])
    namespaced = plural != "hostpassthroughpolicies"
    scope = ["-A"] if namespaced else []
    text = install.kubectl(box, "get", plural, *scope, "-o", f"custom-columns={spec}")
    items = json.loads(install.kubectl(box, "get", plural, *scope, "-o", "json"))["items"]
    if namespaced:  # custom-columns has no NAMESPACE column of its own
        text = "\n".join(_with_namespace(text.splitlines(), items))
    return Table(
        kind=title,
        text=text.rstrip(),
        pending=sum(1 for i in items if i.get("status") and not _settled(i)),
        unhandled=sum(1 for i in items if not i.get("status")),
    )


def _with_namespace(lines: list[str], items: list[dict[str, Any]]) -> Iterator[str]:
    width = max([len("NAMESPACE"), *(len(i["metadata"]["namespace"]) for i in items)]) + 3
    for index, line in enumerate(lines):
        namespace = "NAMESPACE" if index == 0 else items[index - 1]["metadata"]["namespace"]
        yield namespace.ljust(width) + line


def watch(
    box: Sandbox,
    *,
    seconds: float,
    once: bool,
    out: TextIO = sys.stdout,
    clock: Callable[[], float] = time.monotonic,
    interval: float = 1.0,
) -> bool:
    """Print the tables whenever they change, for `seconds`; True when everything settled.

    With `once`, return as soon as every policy is settled and every assignment is settled or,
    after UNHANDLED_GRACE_SECONDS, still has no status at all (the operator doesn't handle them).
    """
    heads = {plural: columns(box, plural) for plural, _ in KINDS}
    started, shown, policies_settled_at = clock(), "", None
    while True:
        policies, assignments = (table(box, p, t, heads[p]) for p, t in KINDS)
        text = f"{policies.text}\n\n{assignments.text}"
        if text != shown:
            print(f"--- after {clock() - started:.0f}s", file=out)
            print(text, file=out, flush=True)
            shown = text
        if policies.settled and policies_settled_at is None:
            policies_settled_at = clock()
        grace = policies_settled_at is not None and (
            clock() - policies_settled_at > UNHANDLED_GRACE_SECONDS
        )
        done = policies.settled and (assignments.settled or (grace and assignments.pending == 0))
        if once and done:
            return True
        if clock() - started > seconds:
            return done
        time.sleep(interval)


def run(box: Sandbox, *, once: bool, seconds: float, out: TextIO = sys.stdout) -> int:
    """The whole demo against a running sandbox `box`; the exit status of `make demo`."""
    install.install(box)
    print(f"CRDs, namespace {install.NAMESPACE} and Secret {install.SECRET} installed", file=out)
    log = box.state_dir / "demo" / "operator.log"
    # SIGTERM (e.g. from a CI timeout) ends the demo like Ctrl-C: the operator is stopped, not
    # orphaned.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with operator(box, log):
            print(f"operator running (log: {log})", file=out)
            apply_examples(box)
            names = ", ".join(p.name for p in example_files())
            print(f"applied {names}\n", file=out, flush=True)
            if not once:
                _explain(box, out)
            settled = watch(box, seconds=seconds, once=once, out=out)
            if once:
                print("all settled" if settled else f"not settled after {seconds:.0f}s", file=out)
                return 0 if settled else 1
            print(f"\nno more tables after {seconds:.0f}s; the operator keeps running", file=out)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("\noperator stopped; the sandbox keeps running (make sandbox-down)", file=out)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _explain(box: Sandbox, out: TextIO) -> None:
    print(
        f"""
Status tables follow, printed on every change. Ctrl-C stops the operator (`make sandbox-down`
then stops the sandbox). In another shell:
  export KUBECONFIG={box.kubeconfig}
  {box.kubectl} describe hpp gpu-cluster          # conditions, per-host devices, Events
  {box.kubectl} get vmda -A -o yaml               # assignments with their status
  . {box.state_dir / "env"}; curl -s $SIM_ADMIN_URL/counters   # vCenter calls by method
""",
        file=out,
        flush=True,
    )
