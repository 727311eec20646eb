"""A catalogue of malformed manifests, each applied with `kubectl apply` to the real API server
with the CRDs from crds/, each refused with the message a user sees (issues #3 and #4, "Bad input").

tests/integration/kube/test_crds.py holds the table shared with the pydantic models
(tests/unit/api/samples.py); this catalogue adds what a user types by hand, as whole files one
can `kubectl apply -f` to see the message: `# expect:` near the top of each file is the text the
refusal must contain.
tests/integration/kube/catalogue/gaps/ holds what the schema still lets through; each is a strict
xfail, so closing a gap fails here until its file moves up into the catalogue.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dpio_sandbox import install
from dpio_sandbox.sandbox import Sandbox

pytestmark = pytest.mark.sandbox

CATALOGUE = Path(__file__).resolve().parent / "catalogue"
NAMESPACE = "catalogue"
CASES = sorted(CATALOGUE.glob("*.yaml"))
GAPS = sorted((CATALOGUE / "gaps").glob("*.yaml"))

GOOD = f"""
apiVersion: dpio.io/v1alpha1
kind: HostPassthroughPolicy
metadata: {{name: catalogue-good}}
spec:
  hosts: {{names: [esx01]}}
  devices:
    - {{address: "0000:3b:00.0"}}
    - {{vendorID: "10de", deviceID: "20b5", hardwareLabel: a100}}
---
apiVersion: dpio.io/v1alpha1
kind: VMDeviceAssignment
metadata: {{name: catalogue-good, namespace: {NAMESPACE}}}
spec:
  policyRef: {{name: gpu-hosts}}
  vm: {{name: ml-trainer-01}}
  devices: [{{name: gpu0, pci: {{address: "0000:3b:00.0"}}}}]
"""


@pytest.fixture(scope="module")
def box(sandbox: Sandbox) -> Sandbox:
    install.install(sandbox)
    try:
        install.kubectl(sandbox, "create", "namespace", NAMESPACE)
    except RuntimeError as err:
        if "AlreadyExists" not in str(err):
            raise
    return sandbox


def _apply(box: Sandbox, manifest: str) -> subprocess.CompletedProcess[str]:
    """`kubectl apply` as a user runs it (client-side strict field validation is kubectl's
    default), against the server, stored nowhere (--dry-run=server runs admission in full)."""
    command = [str(box.kubectl), f"--kubeconfig={box.kubeconfig}", "apply", "--dry-run=server"]
    return subprocess.run(
        [*command, "-f", "-"],
        input=manifest,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _expected(path: Path) -> str:
    lines = path.read_text().splitlines()
    marker = "# expect: "
    found = [line.removeprefix(marker) for line in lines[:3] if line.startswith(marker)]
    assert found, f"{path.name}: no '# expect:' line"
    return found[0]


def test_a_good_manifest_of_each_kind_is_admitted(box: Sandbox) -> None:
    """The control: the refusals below are about each file's one fault, not the setup."""
    done = _apply(box, GOOD)

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("created (server dry run)") == 2


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_malformed_manifest_is_refused_with_its_message(box: Sandbox, path: Path) -> None:
    done = _apply(box, path.read_text())

    assert done.returncode != 0, f"{path.name} was admitted: {done.stdout}"
    assert _expected(path) in " ".join(done.stderr.split()), done.stderr


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=p.read_text().splitlines()[0]))
        for p in GAPS
    ],
    ids=lambda p: p.stem,
)
def test_known_gap_is_still_admitted(box: Sandbox, path: Path) -> None:
    done = _apply(box, path.read_text())

    assert done.returncode != 0, f"{path.name} admitted: {done.stdout.strip()}"


def test_catalogue_covers_both_kinds_and_every_issue_list_item() -> None:
    """Issue #3/#4 bad-input lists, across this catalogue and tests/unit/api/samples.py."""
    names = {p.stem for p in CASES}

    assert sum(n.startswith("hpp-") for n in names) >= 10
    assert sum(n.startswith("vmda-") for n in names) >= 10
    assert {"vmda-vcenter-field", "vmda-secret-ref-field"} <= names
